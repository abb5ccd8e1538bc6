"""Shared Streamlit pieces for the pages: the sidebar context, error display, progress, tables, cached runs.

Not a page itself (app.py lists the pages explicitly). Everything heavy lives in genclf/.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from genclf.app import views
from genclf.errors import GenclfError

log = logging.getLogger("genclf.app")
DEFAULT_DATASET = os.environ.get("GENCLF_DATASET", "fashion-mnist")
DEFAULT_BACKBONE = os.environ.get("GENCLF_BACKBONE")  # else the first of ddpm, vae, vqvae, gan, pixels
# page widgets whose value must survive switching pages (Streamlit drops state of unrendered widgets)
KEEP = ("explore_t", "explore_t2", "explore_n", "explore_dim", "explore_method", "explore_mode", "explore_bb2", "fs_t")


@dataclass(frozen=True)
class Ctx:
    dataset: str
    backbone: str  # what genclf calls take (a name, or a folder)
    label: str  # what the picker shows
    blocks: tuple[str, ...] | None
    seed: int
    has_t: bool


def keep_state() -> None:
    for k in KEEP:
        if k in st.session_state:
            st.session_state[k] = st.session_state[k]


def pretty_dataset(name: str) -> str:
    return f"{name.split('/')[-1]} (upload)" if name.startswith("folder:") else name


def sidebar() -> Ctx | None:
    """Dataset, backbone, blocks and seed; shared by every page through st.session_state."""
    ss = st.session_state
    with st.sidebar:
        choices = views.dataset_choices()
        if not choices:
            st.error(
                "No dataset is on this machine. Run `sudo apt-get install -y dataset-fashion-mnist`, "
                "or upload one on the Data page."
            )
            return None
        if ss.get("dataset") not in choices:
            ss.dataset = DEFAULT_DATASET if DEFAULT_DATASET in choices else choices[0]
        ds = st.selectbox("Dataset", choices, key="dataset", format_func=pretty_dataset)
        try:
            bbs = views.backbone_choices(ds)
        except GenclfError as e:
            st.error(str(e))
            return None
        if ss.get("backbone_label") not in bbs:
            ss.backbone_label = DEFAULT_BACKBONE if DEFAULT_BACKBONE in bbs else next(iter(bbs))
        label = st.selectbox(
            "Backbone",
            list(bbs),
            key="backbone_label",
            help="Trained backbones for this dataset; train more on the Models page. `pixels` is the raw-pixel baseline.",
        )
        try:
            blocks, default, has_t = views.block_choices(ds, bbs[label])
        except GenclfError as e:
            st.error(str(e))
            return None
        chosen = st.multiselect(
            "Blocks",
            blocks,
            default=default,
            key=f"blocks::{ds}::{label}",
            help="Which activations are pooled into the feature vector.",
        )
        seed = st.number_input("Seed", 0, 10_000, 0, key="seed", help="Seeds the noise draw (ddpm) and the k-shot sample.")
        st.caption(
            "Few-shot classification with generative features · [about](https://github.com/kzGarifullin/GenerativeClassification)"
        )
    return Ctx(ds, bbs[label], label, tuple(chosen) if chosen else None, int(seed), has_t)


def ctx() -> Ctx:
    """The sidebar's choices, set by app.py on this very run."""
    if not st.session_state.pop("_framed", False):
        # Streamlit's legacy pages/ auto-discovery can run a page without app.py on a server's first
        # request (e.g. a bookmarked /explore); going through the frame fixes navigation for good.
        st.switch_page("app.py")
    c = st.session_state.get("_ctx")
    if c is None:
        st.info("Pick a dataset in the sidebar to begin.")
        st.stop()
    return c


@contextlib.contextmanager
def guard():
    """Show failures as st.error with the remedy, never a traceback."""
    try:
        yield
    except GenclfError as e:
        st.error(str(e), icon=":material/error:")
    except Exception as e:  # a bug: keep the traceback in the server log, not on the page
        log.exception("page failed")
        st.error(
            f"Unexpected error ({type(e).__name__}: {e}). Try other settings or reload; the server log has details.",
            icon=":material/bug_report:",
        )


def progress(text: str):
    """A `genclf` progress callback drawing an st.progress bar; removed when done."""
    bar = st.empty()

    def cb(done: int, total: int, info: dict) -> None:
        frac = min(1.0, done / max(total, 1))
        if frac >= 1.0:
            bar.empty()
        else:
            bar.progress(frac, text=f"{text} {done:,}/{total:,}")

    return cb


_THUMB = None


def table(df: pd.DataFrame, key: str, image_cols: tuple[str, ...] = (), height: int = 360, row_height: int | None = None):
    """An st-aggrid table; `image_cols` hold PNG data URIs and render as thumbnails."""
    from st_aggrid import AgGrid, GridOptionsBuilder, JsCode

    gb = GridOptionsBuilder.from_dataframe(df)
    gb.configure_default_column(resizable=True, sortable=True, filter=True)
    renderer = JsCode(
        "class ImgRenderer { init(p) { this.e = document.createElement('img'); this.e.src = p.value || '';"
        " this.e.style.height = '52px'; this.e.style.imageRendering = 'pixelated'; }"
        " getGui() { return this.e; } }"
    )
    for c in image_cols:
        gb.configure_column(c, cellRenderer=renderer, width=76, filter=False, sortable=False)
    opts = gb.build()
    if image_cols or row_height:
        opts["rowHeight"] = row_height or 58
    return AgGrid(
        df,
        gridOptions=opts,
        height=height,
        key=key,
        allow_unsafe_jscode=True,
        theme="streamlit",
        update_on=[],
        show_download_button=True,
    )


def few_shot(params: tuple, progress=None) -> dict:
    """experiments.few_shot, memoised per parameter set (features are also cached on disk)."""
    from genclf import experiments

    p = {k: list(v) if isinstance(v, tuple) else v for k, v in params}
    return views.remember("few_shot", params, lambda: experiments.few_shot(**p, progress=progress))


def predictions_for(c: Ctx, t: int | None) -> tuple[dict[int, int] | None, str]:
    """Test-index -> predicted class from this session's latest few-shot run on the same features."""
    for run in reversed(st.session_state.get("fewshot_runs", [])):
        p = dict(run["params"])
        if (p["dataset"], p["backbone"], p["t"], p["blocks"]) == (c.dataset, c.backbone, t, c.blocks):
            with contextlib.suppress(Exception):
                r = few_shot(run["params"])
                return {
                    int(i): int(y) for i, y in zip(r["test_idx"], r["pred"])
                }, f"run #{run['n']} ({p['head']}, {p['shots']} shots)"
    return None, ""
