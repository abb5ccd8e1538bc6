"""Shared Streamlit pieces for the pages: the view state (and its URL), the sidebar context, background tasks,
error display, progress, tables, cached runs.

Not a page itself (app.py lists the pages explicitly). Everything heavy lives in genclf/.

The view state (dataset, backbone, blocks, seed, t, 2D/3D, UMAP/PCA, sample size, compare mode...) lives in
`st.session_state["_v"]`, a plain dict of strings that Streamlit never drops, and is mirrored in the URL's
query string: a page switch, a reload or a shared link reproduces the view. Widgets are bound to it with
`bind(...)`: they start from it and write back to it when the user changes them.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from genclf.app import labels, live, views
from genclf.errors import GenclfError

log = logging.getLogger("genclf.app")
DEFAULT_DATASET = os.environ.get("GENCLF_DATASET", "fashion-mnist")
DEFAULT_BACKBONE = os.environ.get("GENCLF_BACKBONE")  # else the first of ddpm, vae, vqvae, gan, pixels
# page widgets whose value must survive switching pages (Streamlit drops state of unrendered widgets); widgets
# bound to the view state with bind() need not be listed
KEEP: tuple[str, ...] = ()
URL_KEYS = ("dataset", "backbone", "blocks", "seed", "t", "dim", "proj", "n", "mode", "t2", "bb2")


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


# ------------------------------------------------------------------ view state <-> URL


def load_url() -> None:
    """On a session's first run, the view state comes from the URL's query string (a bookmark, a reload)."""
    if "_v" not in st.session_state:
        st.session_state["_v"] = {k: v for k, v in st.query_params.to_dict().items() if k in URL_KEYS}


def get(name: str, default=None, parse=str):
    """A value of the view state, parsed; `default` when absent or unparsable."""
    raw = st.session_state.setdefault("_v", {}).get(name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except (TypeError, ValueError):
        return default


def put(name: str, value) -> None:
    v = st.session_state.setdefault("_v", {})
    if value is None:
        v.pop(name, None)
    else:
        v[name] = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def sync_url() -> None:
    """Write the view state into the URL (only when it changed, so the browser history stays quiet)."""
    want = {k: v for k, v in st.session_state.get("_v", {}).items() if v not in (None, "")}
    if st.query_params.to_dict() != want:
        st.query_params.from_dict(want)


def _save(key: str, name: str, fmt) -> None:
    if st.session_state[key] is None:  # a segmented control clicked off: keep the view, bind() reselects it
        return
    put(name, fmt(st.session_state[key]))
    sync_url()


def bind(key: str, name: str, default, parse=str, valid=None, fmt=lambda v: v) -> dict:
    """Widget kwargs: widget `key` starts from view-state `name` (URL, other pages) and writes back on change.

    A value outside `valid` (a container or a predicate) falls back to `default`."""
    ss = st.session_state
    val = get(name, default, parse)
    ok = valid is None or (valid(val) if callable(valid) else val in valid)
    if not ok:
        val = default
    if ss.get(key) != val:
        ss[key] = val
    if get(name) is None or not ok:
        put(name, fmt(val))
    return {"key": key, "on_change": _save, "args": (key, name, fmt)}


def pretty_dataset(name: str) -> str:
    """A dataset's display name: 'Fashion-MNIST', 'shoes (upload)' (never `folder:data/uploads/...`)."""
    return labels.dataset(name)


def sidebar() -> Ctx | None:
    """Dataset, backbone, blocks and seed; shared by every page through the view state (and the URL)."""
    with st.sidebar:
        choices = views.dataset_choices()
        if not choices:
            st.error(
                "No dataset is on this machine. Run `sudo apt-get install -y dataset-fashion-mnist`, "
                "or upload one on the Data page."
            )
            return None
        first = DEFAULT_DATASET if DEFAULT_DATASET in choices else choices[0]
        tech = ", ".join(f"{pretty_dataset(n)} = `{n}`" for n in choices)
        ds = st.selectbox(
            "Dataset",
            choices,
            format_func=pretty_dataset,
            help=f"Technical names: {tech}.",
            **bind("dataset", "dataset", first, valid=choices),
        )
        try:
            bbs = views.backbone_choices(ds)
        except GenclfError as e:
            st.error(str(e))
            return None
        label = st.selectbox(
            "Backbone",
            list(bbs),
            format_func=labels.backbone,
            help="Models trained on this dataset's unlabeled images; train more on the Models page. Raw pixels is the "
            "baseline to beat. Technical names: " + ", ".join(f"{labels.backbone(b)} = `{b}`" for b in bbs),
            **bind("backbone_label", "backbone", DEFAULT_BACKBONE if DEFAULT_BACKBONE in bbs else next(iter(bbs)), valid=bbs),
        )
        try:
            blocks, default, has_t = views.block_choices(ds, bbs[label])
        except GenclfError as e:
            st.error(str(e))
            return None
        chosen = st.multiselect(
            "Blocks",
            blocks,
            format_func=labels.block,
            help="Which layers' activations are pooled into the feature vector. Technical names: "
            + labels.blocks_help(blocks),
            **bind(
                f"blocks::{ds}::{label}",
                "blocks",
                list(default),
                parse=lambda s: [b for b in s.split(",") if b],
                valid=lambda bs: bool(bs) and all(b in blocks for b in bs),
            ),
        )
        seed = st.number_input(
            "Seed",
            0,
            10_000,
            help="Seeds the noise the DDPM's features are taken under (Explore, the denoising panel) and training on "
            "the Models page, and is the Few-shot form's starting seed; the Few-shot form's own Seed picks the labeled "
            "images of a run.",
            **bind("seed", "seed", 0, int),
        )
        tasks_panel(ds)
        st.caption(
            "Few-shot classification with generative features · [about](https://github.com/kzGarifullin/GenerativeClassification)"
        )
    return Ctx(ds, bbs[label], label, tuple(chosen) if chosen else None, int(seed), has_t)


# ------------------------------------------------------------------ the timestep slider


def _on_t(key: str, name: str, view_of, owner: str) -> None:
    """A grid t was picked: show it when ready, else snap to the nearest ready t and compute the pick first."""
    from dataclasses import replace

    from genclf import explore

    v = view_of()
    t, ready = st.session_state[key], live.grid_marks(v)[1]
    got = live.snap(t, ready)
    put(name, got)
    st.session_state[f"{key}_wanted"] = t if got != t else None
    if got != t:
        explore.service().request([replace(v, t=t, method="pca"), v.at(t)], owner=f"{owner}-{key}")
    sync_url()


def t_slider(label: str, key: str, name: str, default: int, view_of, owner: str) -> int:
    """A slider over the timestep grid, ready t marked ✓, bound to view-state `name`; returns the t to show (which
    may be a custom t off the grid). `view_of()` gives the view whose readiness the marks show."""
    ss = st.session_state
    ts, ready = live.grid_marks(view_of())
    want = get(name, default, int)
    put(name, want)
    custom = want not in ts  # a custom t (the popover, or the URL) sits on the slider where it is, not snapped
    ts = sorted({*ts, want})
    ss[key] = want
    st.select_slider(f"{label} · ✓ = ready", ts, format_func=lambda t: f"{t}✓" if t in ready else str(t), key=key,
                     on_change=_on_t, args=(key, name, view_of, owner), help="0 = clean image, 999 = pure noise.")  # fmt: skip
    if custom:
        st.caption(f"t={want} is a custom t, off the grid; moving the slider goes back to the grid's t.")
    if ss.get(f"{key}_wanted") is not None:
        st.caption(f"t={ss[f'{key}_wanted']} is not ready yet: it is computed first and shown when ready.")
    elif len(ready) < len(ts):
        st.caption("Not ready yet (computed in the background): " + ", ".join(f"t={t}" for t in ts if t not in ready))
    return want


# ------------------------------------------------------------------ background tasks (preparation, sweeps)


def timing_start() -> float:
    import time

    return time.time()


def timing_end(start: float, nav) -> None:
    """GENCLF_TIMING_LOG=path: one line per script run (session, page, start, end), for bench/dashboard.py."""
    path = os.environ.get("GENCLF_TIMING_LOG")
    if path:
        import time

        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        with open(path, "a") as f:
            f.write(f"{ctx.session_id if ctx else '-'} {nav.url_path or 'explore'} {start:.3f} {time.time():.3f}\n")


def preload() -> None:
    """At server start (the `python app.py` launcher): load what the first page needs (the default backbone: with the
    ddpm, diffusers too), then start the UMAP worker's warm-up and the background preparation, then build the default
    charts and Few-shot run: the first visitor waits for none of it. The background processes start only after the
    backbone is loaded: started first, they take the CPU the first page waits on. (The warm-ups do not wait for a
    first page: deferred, they met the burst of sessions that often follows it, and stalled the server for seconds.)"""
    from genclf import data, explore

    bb = None
    try:
        bb = views.backbone_choices(DEFAULT_DATASET)[DEFAULT_BACKBONE or "ddpm"]
        views.block_choices(DEFAULT_DATASET, bb)
        data.load(DEFAULT_DATASET)
    except Exception as e:  # a missing dataset is reported by the page itself; the rest is only a head start lost
        log.warning("preload could not load the default view: %s: %s", type(e).__name__, e)
    import gc

    gc.freeze()  # what is loaded so far lives as long as the server: keep it out of every collection from now on
    explore.warm_up()
    autoprepare()
    try:
        if bb is not None:
            live.warm_explore(DEFAULT_DATASET, bb)
            live.warm_fewshot(DEFAULT_DATASET, bb)
    except Exception as e:
        log.warning("preload stopped early: %s: %s", type(e).__name__, e)
    gc.freeze()  # and so do the charts and the Few-shot run built since


def autoprepare() -> None:
    """Once per server: prepare the default dataset's backbones in the background (shared by all sessions)."""
    if os.environ.get("GENCLF_AUTOPREPARE", "1") == "0":
        return
    with contextlib.suppress(GenclfError):
        live.autoprepare(DEFAULT_DATASET)


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "estimating the time left"
    left = f"{s:.0f} s" if s < 90 else f"{s / 60:.0f} min" if s < 5400 else f"{s / 3600:.1f} h"
    return f"about {left} left"


def task_status(task, label: str) -> None:
    """One running background task: done/total, ETA, the current step and a Cancel button."""
    from genclf.app import tasks

    if task.state == "running":
        st.progress(task.fraction, text=f"{label}: {task.fraction:.0%} · {_fmt_s(task.eta)}")
        st.caption(labels.step(task.step))
        if st.button("Cancel", key=f"cancel_{task.id}", icon=":material/stop:"):
            tasks.cancel(task.id)
            st.rerun()
    elif task.state == "failed":
        st.error(f"{label} failed: {task.message}")
    elif task.state == "cancelled":
        st.caption(f"{label}: {task.message}")


def tasks_panel(shown: str = "") -> None:
    """The sidebar's view of background tasks; polls only while one runs. `shown`: the dataset on screen."""
    from genclf.app import tasks

    if tasks.running():
        _tasks_live(shown)


@st.fragment(run_every="3s")
def _tasks_live(shown: str = ""):
    from genclf.app import tasks

    # (no st.rerun(scope="app") from here when a task ends: a whole-app rerun requested by a timer fragment can
    # leave a page half drawn under load; the pages poll what they wait for themselves)
    for task in tasks.running():
        what = {"prepare": "Preparing", "features": "Extracting the test split of"}.get(task.kind, "Timestep sweep on")
        ds = task.spec.get("dataset", "")
        other = " (not the dataset shown)" if shown and ds and ds != shown else ""
        task_status(task, f"{what} {pretty_dataset(ds)}{other} in the background")


def ctx() -> Ctx:
    """The sidebar's choices, set by app.py on this very run."""
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
    return live.few_shot(params, progress)


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
