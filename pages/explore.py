"""Explore: scrub the timestep and watch the test images' features in a 2D/3D projection."""

import uuid
from dataclasses import replace

import streamlit as st

from genclf import data, explore
from genclf.app import figures, views
from pages import common, denoise_panel

ss = st.session_state
c = common.ctx()
st.title("Explore")
st.caption(
    "Each dot is one test image, placed by a projection of its features from the chosen backbone; colours are the true "
    "classes. The same images are shown at every timestep, and each layout is aligned to its neighbours, so you can "
    "scrub t and watch classes separate or merge. Click a point for its image and nearest neighbours; in 2D, pick the "
    "lasso or box tool in the chart's toolbar to list many images in a table."
)
ss.setdefault("explore_t", 50)
ss.setdefault("explore_n", views.DEFAULT_N)
ss.setdefault("explore_dim", "2D")
ss.setdefault("explore_method", explore.default_method().upper())
ss.setdefault("explore_mode", "Single view")
ss.setdefault("explore_owner", uuid.uuid4().hex[:8])  # names this session's requests to the background service

a, b, m, d = st.columns([1, 1, 2, 2])
a.segmented_control("View", ["2D", "3D"], key="explore_dim", help="Selection works in 2D; plotly has no lasso in 3D.")
b.segmented_control("Projection", ["UMAP", "PCA"], key="explore_method")
n_test = len(data.load(c.dataset).y_test)
if n_test > views.N_RANGE[0]:
    ss.explore_n = min(ss.explore_n, n_test)
    m.slider(
        "Images (stratified sample of the test split)",
        views.N_RANGE[0],
        min(n_test, views.N_RANGE[1]),
        step=500,
        key="explore_n",
    )
else:
    m.caption(f"All {n_test:,} test images are shown (this dataset is small).")
d.selectbox(
    "Compare",
    ["Single view", "Two timesteps", "Two backbones"],
    key="explore_mode",
    help="Two projections side by side; a selection in one is highlighted in the other.",
)


def base_view() -> explore.View:
    method, dim = (ss.explore_method or "UMAP").lower(), 3 if ss.explore_dim == "3D" else 2
    return explore.View(c.dataset, c.backbone, None, c.blocks, int(ss.explore_n), c.seed, method, dim)


@st.fragment(run_every="3s")
def background():
    """Grid progress; reruns the page once a UMAP that is shown as a PCA preview is ready."""
    with common.guard():
        _background()


def _background():
    v = base_view()
    if not ss.get("explore_started"):
        return
    svc = explore.service()
    before = ss.get("explore_waiting")  # [(view, progress)] of the charts on screen that are not final
    now = [(w, views.progress_of(w)) for w, _ in before or []]
    if now != (before or []):
        ss.explore_waiting = [(w, p) for w, p in now if p != "ready"]
        st.rerun(scope="app")  # features or UMAP of a chart on screen just became ready: redraw
    if svc.warm == "warming" and v.method == "umap":
        st.caption(":material/hourglass_top: warming up UMAP (one-time numba compilation, about a minute)")
    if c.has_t:
        done = set(explore.ready_grid(v))
        badges = " ".join(f":{'green' if t in done else 'gray'}-badge[{t}]" for t in explore.grid(True))
        st.markdown(f"Ready timesteps ({v.method.upper()}, {min(v.n, n_test):,} images): {badges}")
    if before is None or before:
        return  # the charts on screen come first; the timestep grid is queued once they are ready
    ready, total = svc.ensure_grid(v)
    if ready < total:
        st.progress(ready / total, text=f"Precomputing the timestep grid in the background: {ready}/{total} "
                    "(shared by all sessions, cached on disk)")  # fmt: skip


@st.fragment
def explorer():
    with common.guard():
        _explorer()


def _explorer():
    v0 = base_view()
    if c.has_t:
        st.slider("Timestep t (0 = clean image, 999 = pure noise)", 0, 999, key="explore_t")
    panels = [v0.at(ss.explore_t if c.has_t else None)]
    if ss.explore_mode == "Two timesteps" and c.has_t:
        ss.setdefault("explore_t2", 300)
        st.slider("Second timestep", 0, 999, key="explore_t2")
        panels.append(v0.at(ss.explore_t2))
    elif ss.explore_mode == "Two backbones":
        bbs = views.backbone_choices(c.dataset)
        other = st.selectbox("Second backbone", list(bbs), key="explore_bb2")
        _, _, has_t2 = views.block_choices(c.dataset, bbs[other])
        panels.append(replace(panels[0], backbone=bbs[other], blocks=None, t=ss.explore_t if has_t2 else None))
    if not ss.get("explore_started"):
        if all(explore.layout(v) is None and explore.layout(replace(v, method="pca")) is None for v in panels):
            st.info(
                f"Nothing is computed for this view yet. Projecting extracts features for {v0.n:,} test images "
                "(ddpm: about 5 ms per image on a CPU) and then computes the rest of the timestep grid in the background."
            )
            st.button(
                "Project the images",
                type="primary",
                icon=":material/play_arrow:",
                on_click=lambda: ss.update(explore_started=True),
            )
            return
        ss.explore_started = True
    # linked selection: the chart whose selection changed last wins and every chart highlights it
    if ss.get("explore_sel_on") != (c.dataset, v0.n):  # positions index the sample of (dataset, n)
        ss.explore_sel_on, ss.explore_sel, ss.explore_seen = (c.dataset, v0.n), [], []
    events = [views.selected_positions(ss.get(f"explore_chart_{i}")) for i in range(len(panels))]
    ss.explore_sel, ss.explore_seen = views.linked_selection(events, ss.get("explore_seen", []), ss.get("explore_sel", []))
    sel = ss.explore_sel
    cols = st.columns([3, 1] if len(panels) == 1 else [1, 1])
    waiting, drawn = [], []
    for i, (col, v) in enumerate(zip(cols, panels)):
        with col:
            shown = views.explore_layout(v, common.progress(f"features t={v.t}"), owner=f"{ss.explore_owner}-{i}")
            pts = views.points(v)
            fig = figures.scatter(shown.xy, pts, sel, views.view_title(v, shown), uirevision=f"{v.dataset}{v.dim}{i}")
            st.plotly_chart(fig, key=f"explore_chart_{i}", on_select="rerun", selection_mode=("points", "box", "lasso"),
                            config={"displaylogo": False, "scrollZoom": True})  # fmt: skip
            if shown.error:
                st.error(shown.error)
            st.caption(f"**{len(pts.idx):,} of {n_test:,}** test images shown (stratified by class){views.note(v, shown)}")
            if shown.status != "ready":
                waiting.append((v, views.progress_of(v)))
            drawn.append(v.at(shown.t))
    ss.explore_waiting = waiting
    v = drawn[0]  # neighbours and table use the features on screen (on disk), never a pending t
    pts = views.points(v)
    if len(panels) == 1:
        with cols[1]:
            if len(sel) >= 1:
                imgs, caps = views.neighbour_strip(v, pts, sel[0])
                st.image(views.big(imgs[0]), caption=caps[0], width=168)
                st.caption("Nearest neighbours in feature space")
                st.image([views.big(x, 56) for x in imgs[1:]], caption=caps[1:], width=56)
                denoise_panel.panel(c, int(pts.idx[sel[0]]), ss.explore_t if c.has_t else None)  # issue 15: x0|x_t|x̂0
            else:
                st.info("Click a point to see its image and its nearest neighbours.", icon=":material/touch_app:")
    if sel and st.button("Clear selection", icon=":material/deselect:"):
        ss.explore_sel = []
        st.rerun(scope="fragment")
    if len(sel) > 1:
        pred, source = common.predictions_for(c, v.t)
        st.subheader(f"{len(sel):,} selected" + (f" · predictions from few-shot {source}" if source else ""))
        if len(sel) > views.TABLE_ROWS:
            st.caption(f"The table lists the first {views.TABLE_ROWS} of them.")
        df = views.selection_table(v, pts, sel, pred)
        common.table(df, key=f"explore_table_{len(sel)}_{sel[0]}", image_cols=("image",), height=420)
        denoise_panel.class_error_chart(c, pts.idx[sel], ss.explore_t if c.has_t else None)  # issue 15


background()
explorer()
