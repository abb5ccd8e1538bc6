"""What the dashboard's pages call: view models (`views`), plotly figures (`figures`), tables (`tables`)
and background training jobs (`jobs`). Pure Python over genclf's compute: never imports streamlit.

The top layer with `genclf.cli`: may import everything below it, and nothing imports it.
"""
