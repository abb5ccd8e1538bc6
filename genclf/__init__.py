"""genclf: few-shot classification with generative features.

Pipeline, one package per stage: data -> backbones -> features -> heads / explore -> experiments -> app, cli.
Everything heavy is cached on disk (genclf.cache). Nothing here imports streamlit.
"""

__version__ = "0.1.0"
