"""The floor under issue 10's ten-browser-sessions row: the least a Streamlit page with one Plotly chart costs.

A bare page (a title and one 2,000-point WebGL scatter of 10 classes, with per-point customdata and hover text, as
on Explore) that imports nothing of genclf. bench/dashboard.py's load rows open ten browser sessions on it at once,
with the same harness as on the dashboard: whatever the dashboard's figure exceeds this by is genclf's own cost, and
what this takes is the stack's (Streamlit, Plotly and one chromium drawing ten pages on this machine).

    .venv/bin/python -m streamlit run bench/floor_app.py      # by hand; bench/dashboard.py --only load runs it

With GENCLF_FLOOR_FIGURE=explore it draws instead Explore's own default figure (the shipped DDPM at its default t,
2D UMAP, 2,000 images, built by genclf.app.views as the page builds it) on the same bare page: what the chart alone
costs, apart from the rest of the dashboard's page.
"""

import os
import sys
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

N, CLASSES = 2000, 10


@st.cache_resource
def explore_figure():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from genclf.app import live, views

    v = live.default_view("fashion-mnist", views.backbone_choices("fashion-mnist")["ddpm"])
    return views.scatter(v, views.explore_layout(v), views.points(v), [], uirevision="floor")


st.title("Floor")
if os.environ.get("GENCLF_FLOOR_FIGURE") == "explore":
    st.plotly_chart(explore_figure(), key="floor", on_select="rerun", selection_mode=("points", "box", "lasso"))
    st.stop()
rng = np.random.default_rng(0)
xy = rng.normal(size=(N, 2)) + np.repeat(rng.normal(scale=4, size=(CLASSES, 2)), N // CLASSES, axis=0)
y = np.repeat(np.arange(CLASSES), N // CLASSES)
fig = go.Figure(
    [
        go.Scattergl(
            x=xy[y == c, 0],
            y=xy[y == c, 1],
            mode="markers",
            name=f"class {c}",
            customdata=np.stack([np.flatnonzero(y == c), np.flatnonzero(y == c)], axis=1),
            hovertemplate="test image %{customdata[1]}<extra>class " + str(c) + "</extra>",
        )
        for c in range(CLASSES)
    ]
)
fig.update_layout(height=620, title="2,000 points")
st.plotly_chart(fig, key="floor", on_select="rerun", selection_mode=("points", "box", "lasso"))
