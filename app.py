"""genclf dashboard: `make app` (streamlit run app.py). The frame only: pages, sidebar, session defaults.

Env: GENCLF_DATASET / GENCLF_BACKBONE (defaults of the pickers), GENCLF_PROJECTION=umap|pca,
GENCLF_PRECOMPUTE=process|thread|inline, GENCLF_NO_WARMUP=1 (skip the UMAP JIT warm-up), GENCLF_GRID (timesteps
precomputed), plus genclf's GENCLF_CACHE_DIR / GENCLF_RUNS_DIR / GENCLF_DATA_DIR / GENCLF_RESULTS_DIR.
"""

import streamlit as st

from genclf import explore
from pages import common

st.set_page_config(page_title="genclf · generative few-shot", page_icon=":material/scatter_plot:", layout="wide")

# UMAP's numba JIT costs 20-60 s once per process: pay it in the background worker now, not on a user's
# first scrub. Idempotent (a module-level service guards it); disabled in tests by GENCLF_NO_WARMUP=1.
explore.warm_up()

pages = [
    st.Page("pages/explore.py", title="Explore", icon=":material/scatter_plot:", default=True),
    st.Page("pages/fewshot.py", title="Few-shot", icon=":material/model_training:", url_path="few-shot"),
    st.Page("pages/timestep.py", title="Timestep", icon=":material/timeline:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/leaderboard:"),
    st.Page("pages/models.py", title="Models", icon=":material/neurology:"),
    st.Page("pages/datasets.py", title="Data", icon=":material/photo_library:", url_path="data"),
]
nav = st.navigation(pages)
common.keep_state()
st.session_state["_ctx"] = common.sidebar()
st.session_state["_framed"] = True  # pages check that this run came through the frame
nav.run()
