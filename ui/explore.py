"""Explore: scrub the timestep and watch the test images' features in a 2D/3D projection (cache-first: it only reads)."""

import uuid
from dataclasses import replace

import streamlit as st

from genclf import data, explore
from genclf.app import animation, live, views
from ui import common, denoise_panel, explore_controls

ss = st.session_state
c = common.ctx()
st.title("Explore")
st.caption(
    "Each dot is one test image, placed by a projection of its features from the chosen backbone; colours are the "
    "true classes unless you colour by a Few-shot run's predictions. The same images are shown at every timestep, "
    "and each layout is aligned to its neighbours, so you can scrub t and watch classes separate or merge. Click a "
    "point for its image and nearest neighbours; in 2D, pick the lasso or box tool in the chart's toolbar to list "
    "many images in a table."
)
ss.setdefault("explore_owner", uuid.uuid4().hex[:8])  # names this session's requests to the background service
n_test = len(data.load(c.dataset).y_test)
MODES = {"single": "Single view", "timesteps": "Two timesteps", "backbones": "Two backbones"}
T0 = live.default_t(c.dataset, c.backbone) if c.has_t else None

a, b, m, d = st.columns([1, 1, 2, 2])
a.segmented_control("View", ["2D", "3D"], help="Selection works in 2D; plotly has no lasso in 3D.",
                    **common.bind("explore_dim", "dim", "2D", str.upper, ("2D", "3D"), lambda v: v or "2D"))  # fmt: skip
b.segmented_control("Projection", ["UMAP", "PCA"], **common.bind("explore_method", "proj", explore.default_method().upper(),
                    str.upper, ("UMAP", "PCA"), lambda v: (v or "UMAP").lower()))  # fmt: skip
top = min(n_test, views.N_RANGE[1])
if n_test > views.N_RANGE[0]:
    in_range = lambda n: views.N_RANGE[0] <= n <= top
    m.slider("Images (stratified sample of the test split)", views.N_RANGE[0], top, step=500,
             **common.bind("explore_n", "n", min(views.DEFAULT_N, top), int, in_range))  # fmt: skip
else:
    m.caption(f"All {n_test:,} test images are shown (this dataset is small).")
d.selectbox("Compare", list(MODES), format_func=MODES.get, help="Two projections side by side; a selection in one is "
            "highlighted in the other.", **common.bind("explore_mode", "mode", "single", valid=MODES))  # fmt: skip


def base_view() -> explore.View:
    method, dim = (ss.explore_method or "UMAP").lower(), 3 if ss.explore_dim == "3D" else 2
    n = int(ss.get("explore_n", views.DEFAULT_N))
    return explore.View(c.dataset, c.backbone, None, c.blocks, n, c.seed, method, dim)


def needs_polling() -> bool:
    """Whether something this page shows waits for the background: only then does it poll (idle sessions cost nothing)."""
    wanted = any(ss.get(k) is not None for k in ("explore_t_wanted", "explore_t2_wanted", "explore_feats_wanted"))
    grid = c.has_t and len(live.grid_marks(base_view())[1]) < len(explore.grid(True))
    return bool(ss.get("explore_waiting")) or wanted or grid


@st.fragment(run_every="2s")
def polling():
    background()


@st.fragment
def idle():
    background()


def background():
    with common.guard():
        v = base_view()
        before = ss.get("explore_waiting") or []  # [(view, progress)] of the charts on screen that are not final
        now = [(w, views.progress_of(w)) for w, _ in before]
        jump = False
        for key, name in (("explore_t", "t"), ("explore_t2", "t2")):
            want = ss.get(f"{key}_wanted")  # a t picked before it was ready: shown as soon as it is
            if want is not None and views.progress_of(v.at(want)) == "ready":
                ss[f"{key}_wanted"], jump = None, True
                common.put(name, want)
        feats = ss.get("explore_feats_wanted")  # neighbours wait for a view's features
        if feats is not None and explore.features_ready(feats):
            ss.explore_feats_wanted, jump = None, True
        if jump or now != before:
            ss.explore_waiting = [(w, p) for w, p in now if p != "ready"]
            st.rerun(scope="app")  # a chart on screen just became ready: redraw it
        if explore.service().warm == "warming" and v.method == "umap" and before:
            st.caption(":material/hourglass_top: warming up UMAP (one-time compilation, about 10 s)")
        if c.has_t and not before and not live.preparing(c.dataset, c.backbone):
            ready, total = explore.service().ensure_grid(v)  # this view's grid, behind any user request
            if ready < total:
                st.progress(ready / total, text=f"Computing this view's timestep grid in the background: {ready}/{total}")


@st.fragment
def explorer():
    with common.guard():
        _explorer()


def _explorer():
    full_run = ss.pop("_explore_full_run", False)
    _explore_view()
    if not full_run and not ss.get("explore_polling") and needs_polling():
        st.rerun(scope="app")  # this fragment rerun started a wait (a t not ready, features for neighbours): poll


def _explore_view():
    v0 = base_view()
    t = common.t_slider("Timestep t", "explore_t", "t", T0, base_view, ss.explore_owner) if c.has_t else None
    if c.has_t:
        with st.popover("Custom t", icon=":material/edit:"):
            st.number_input("Any timestep 0-999, computed on request", 0, 999, t, key="explore_custom")
            st.button("Show this t", key="explore_custom_go", on_click=lambda: common.put("t", int(ss.explore_custom)))
    panels = [v0.at(t)]
    mode = ss.explore_mode
    if mode == "timesteps" and c.has_t:
        panels.append(v0.at(common.t_slider("Second timestep", "explore_t2", "t2", 300, base_view, ss.explore_owner)))
    elif mode == "backbones":
        bbs = views.backbone_choices(c.dataset)
        second = next((k for k, n in bbs.items() if n != c.backbone), next(iter(bbs)))  # start with a different one
        other = st.selectbox("Second backbone", list(bbs), **common.bind("explore_bb2", "bb2", second, valid=bbs))
        has_t2 = views.block_choices(c.dataset, bbs[other])[2]
        panels.append(replace(panels[0], backbone=bbs[other], blocks=None, t=t if has_t2 else None))
    common.sync_url()
    if c.has_t and len(panels) == 1 and st.toggle("Play through the ready timesteps", key="explore_play"):
        ready = live.grid_marks(v0)[1]
        if len(ready) > 1:
            frames = lambda: {r: explore.aligned_layout(v0.at(r)) for r in sorted(ready)}
            make = lambda: animation.animated(frames(), views.points(v0), views.view_title(v0, None), start=t)
            fig = views.remember("animate", (v0, tuple(sorted(ready)), t), make, 8)  # opens at the t shown
            st.plotly_chart(fig, key="explore_anim", config={"displaylogo": False})
            return
        st.info("Playing needs at least two ready timesteps for this view; they are being computed.")
    if ss.get("explore_sel_on") != (c.dataset, v0.n):  # positions index the sample of (dataset, n)
        ss.explore_sel_on, ss.explore_sel, ss.explore_seen = (c.dataset, v0.n), [], []
    # linked selection: the chart whose selection changed last wins and every chart highlights it
    events = [views.selected_positions(ss.get(f"explore_chart_{i}")) for i in range(len(panels))]
    ss.explore_sel, ss.explore_seen = views.linked_selection(events, ss.get("explore_seen", []), ss.get("explore_sel", []))
    sel = ss.explore_sel
    preds = explore_controls.predictions(*common.predictions_for(c, panels[0].t))
    tools = explore_controls.controls(views.points(panels[0]), preds, n_test)  # issue 11: colour by, search, images
    cols = st.columns([3, 1] if len(panels) == 1 else [1, 1])
    waiting, drawn = [], []
    for i, (col, v) in enumerate(zip(cols, panels)):
        with col:
            shown = views.explore_layout(v, owner=f"{ss.explore_owner}-{i}")
            pts = views.points(v)
            if shown.status == "pending":
                got = views.pending_progress(v)
                st.info(f"Computing this view in the background ({views.view_title(v, shown)}); it appears here when ready.")
                if got:
                    st.progress(got[0] / max(got[1], 1), text=f"features {got[0]:,}/{got[1]:,} images")
            else:
                last = i == len(panels) - 1  # one legend for both charts: the colours are the same on each side
                fig, note = explore_controls.scatter(v, shown, pts, sel, f"{v.dataset}{v.dim}{i}", tools, last)
                st.plotly_chart(fig, key=f"explore_chart_{i}", on_select="rerun", selection_mode=("points", "box", "lasso"),
                                config={"displaylogo": False, "scrollZoom": False})  # fmt: skip
                if note:
                    st.caption(note)
            if shown.error:
                st.error(shown.error)
            st.caption(f"**{len(pts.idx):,} of {n_test:,}** test images shown (stratified by class){views.note(v, shown)}")
            if shown.status != "ready":
                waiting.append((v, views.progress_of(v)))
            drawn.append(v.at(shown.t))
    ss.explore_waiting = waiting
    details(drawn[0], sel, cols[1] if len(panels) == 1 else None, preds, t)


def details(v: explore.View, sel: list[int], side, preds=None, t_want=None) -> None:
    """Neighbours of a clicked point and the table of a selection: they read the features on screen (on disk)."""
    if sel and not explore.features_ready(v):
        explore.service().request([replace(v, method="pca")], owner=f"{ss.explore_owner}-feats")
        ss.explore_feats_wanted = v
        st.info("Neighbours and the selection table need this view's features; they are being computed in the background.")
        return
    pts = views.points(v)
    if side is not None:
        with side:
            if len(sel) > 1:  # a box or lasso: no one image is "the clicked one"
                st.info(f"**{len(sel):,} points selected**: they are listed below. Click a single point for its image, "
                        "its nearest neighbours and what the model sees at t.", icon=":material/select_all:")  # fmt: skip
            elif sel:
                imgs, caps = views.neighbour_strip(v, pts, sel[0])
                st.image(views.big(imgs[0]), caption=caps[0], width=168)
                st.caption("Nearest neighbours in feature space")
                st.image([views.big(x, 56) for x in imgs[1:]], caption=caps[1:], width=56)
                denoise_panel.panel(c, int(pts.idx[sel[0]]), t_want)  # issue 15: x0|x_t|x̂0
            else:
                st.info("Click a point to see its image and its nearest neighbours.", icon=":material/touch_app:")
    if sel:
        st.button("Clear selection", icon=":material/deselect:", on_click=lambda: ss.update(explore_sel=[]))
        explore_controls.export(v, pts, sel, preds)  # issue 11: CSV and zip of the selection
    if len(sel) > 1:
        pred, source = common.predictions_for(c, v.t)
        st.subheader(f"{len(sel):,} selected" + (f" · predictions from few-shot {source}" if source else ""))
        if len(sel) > views.TABLE_ROWS:
            st.caption(f"The table lists the first {views.TABLE_ROWS} of them.")
        df = views.selection_table(v, pts, sel, pred)
        common.table(df, key=f"explore_table_{len(sel)}_{sel[0]}", image_cols=("image",), height=420)
        denoise_panel.class_error_chart(c, pts.idx[sel], t_want)  # issue 15


ss._explore_full_run = True
explorer()
ss.explore_polling = needs_polling()
(polling if ss.explore_polling else idle)()  # after the charts: a timer starts once the page is drawn
