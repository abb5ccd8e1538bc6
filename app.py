"""genclf dashboard: `make app` (= `python app.py`, or `streamlit run app.py`). The frame: pages, sidebar, view state.

`python app.py [streamlit options]` starts the server and, meanwhile, imports genclf (torch, diffusers: the bulk of
a first page's time), starts the UMAP worker and the background preparation: all before the first visitor.

Env: GENCLF_DATASET / GENCLF_BACKBONE (defaults of the pickers), GENCLF_PROJECTION=umap|pca,
GENCLF_PRECOMPUTE=process|thread|inline, GENCLF_NO_WARMUP=1 (skip the UMAP JIT warm-up), GENCLF_GRID (timesteps
of the slider), GENCLF_AUTOPREPARE=0 (do not prepare the default dataset in the background at start), plus genclf's
GENCLF_CACHE_DIR / GENCLF_RUNS_DIR / GENCLF_DATA_DIR / GENCLF_RESULTS_DIR.
"""

from pathlib import Path

import streamlit as st

if __name__ == "__main__" and not st.runtime.exists():  # `python app.py`: the launcher (Streamlit runs it again)
    import sys
    import threading

    from streamlit.web import cli

    def _preload() -> None:
        from ui import common

        common.preload()

    threading.Thread(target=_preload, name="genclf-preload", daemon=True).start()
    sys.argv = ["streamlit", "run", __file__, *sys.argv[1:]]
    raise SystemExit(cli.main())

from genclf import explore  # noqa: E402
from ui import common  # noqa: E402

ICON = str(Path(__file__).parent / "assets" / "icon.png")  # a local file: a material/emoji icon is fetched from a CDN

st.set_page_config(page_title="genclf · generative few-shot", page_icon=ICON, layout="wide")

# The pages live in ui/, not pages/: Streamlit auto-discovers a pages/ folder and, before st.navigation has run in
# the server, ran a first visit's page (a shared /fewshot link) without this frame, which then sent it to Explore.
# Each url_path is its file's name, so links stay short and the same as before.
pages = [
    st.Page("ui/explore.py", title="Explore", icon=":material/scatter_plot:", default=True),
    st.Page("ui/fewshot.py", title="Few-shot", icon=":material/model_training:"),
    st.Page("ui/timestep.py", title="Timestep", icon=":material/timeline:"),
    st.Page("ui/compare.py", title="Compare", icon=":material/leaderboard:"),
    st.Page("ui/models.py", title="Models", icon=":material/neurology:"),
    st.Page("ui/datasets.py", title="Data", icon=":material/photo_library:"),
]
nav = st.navigation(pages)
_start = common.timing_start()
common.load_url()
common.keep_state()
st.session_state["_ctx"] = common.sidebar()
# Once per server process, never blocking a page: UMAP's numba JIT (about 10 s) is paid in the on-demand worker,
# and whatever the default dataset's pages read that is not on disk yet is computed by a background task. After
# the sidebar, which loads the backbone: these processes compete for the CPU that loading waits on.
explore.warm_up()
common.autoprepare()
common.sync_url()
try:
    nav.run()
finally:
    common.timing_end(_start, nav)
