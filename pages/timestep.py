"""Timestep: which noise level t gives the best features, chosen on validation data (never on test)."""

import streamlit as st

from genclf import experiments, heads
from genclf.app import figures, tables, views
from pages import common, denoise_panel

ss = st.session_state
c = common.ctx()
st.title("Timestep")
st.caption(
    "A diffusion model sees an image noised to timestep t (0 = clean, 999 = pure noise); features depend strongly on t. "
    "Here a head is trained on k labeled images per class at each t and scored on the validation split, averaged over "
    "seeds. The best t is marked; the test split is never used to choose it. Fusing several t concatenates their features."
)


def sweep(params: tuple, progress=None) -> dict:
    p = dict(params)
    p["grid"] = [list(g) if isinstance(g, tuple) else g for g in p["grid"]]
    p["blocks"] = list(p["blocks"]) if p["blocks"] else None
    return views.remember("sweep_t", params, lambda: experiments.sweep_t(**p, progress=progress), 16)


if not c.has_t:
    st.info(
        f"`{c.label}` has no timestep. Pick a diffusion backbone (ddpm) in the sidebar to sweep t.", icon=":material/info:"
    )
    st.stop()

with st.form("sweep"):
    a, b, d = st.columns(3)
    head = a.selectbox("Head", heads.HEADS)
    shots = b.number_input("Labeled images per class", 1, 100, 10)
    seeds = d.number_input("Seeds", 1, 10, 3)
    grid = st.multiselect("Timesteps", list(range(0, 1000)), default=list(experiments.T_GRID))
    fuse = st.multiselect(
        "Also try fusing these timesteps (features concatenated)",
        list(range(0, 1000)),
        default=[],
        help="e.g. 10 + 50 + 150; fusion often beats any single t (Mukhopadhyay et al. 2023).",
    )
    go = st.form_submit_button("Run the sweep", type="primary", icon=":material/play_arrow:")

if go:
    cands = [int(t) for t in sorted(grid)] + ([sorted(int(t) for t in fuse)] if len(fuse) > 1 else [])
    ss.sweep_params = (
        ("dataset", c.dataset),
        ("backbone", c.backbone),
        ("head", head),
        ("shots", int(shots)),
        ("seeds", int(seeds)),
        ("grid", tuple(tuple(x) if isinstance(x, list) else x for x in cands)),
        ("blocks", c.blocks),
    )

params = ss.get("sweep_params")
if not params or dict(params)["dataset"] != c.dataset or dict(params)["backbone"] != c.backbone:
    st.info(
        "Choose the head and the timesteps, then **Run the sweep**. Features for each t are cached on disk, so a "
        "second sweep over the same t is quick.",
        icon=":material/info:",
    )
    st.stop()

with common.guard():
    with st.spinner("Scoring each t on validation data (features are extracted once per t, then cached)…"):
        res = sweep(params, progress=common.progress("timesteps × seeds"))
    single, fused = tables.sweep_table(res)
    best = int(single.loc[single["accuracy"].idxmax(), "t"])
    p = dict(params)
    st.plotly_chart(figures.t_curve_figure(single, std="std"), key="t_curve")
    denoise_panel.strip(c, single["t"].tolist())  # issue 15: x_t and x̂0 of one image at every swept t
    a, b, d = st.columns([1, 1, 2])
    a.metric("Best t (validation)", best, help="Chosen on the validation split")
    b.metric("Validation accuracy at best t", f"{single['accuracy'].max():.1f}%")
    if res.get("best_t_cv") is not None and not isinstance(res["best_t_cv"], list):
        d.caption(
            f"Picking t by cross-validation inside the {p['shots']} shots alone (no validation labels) gives "
            f"t={res['best_t_cv']}."
        )
    if d.button(f"Use t={best} in Explore and Few-shot", type="primary", icon=":material/arrow_forward:"):
        ss.explore_t = ss.fs_t = best
        st.switch_page("pages/explore.py")
    if len(fused):
        f = fused.iloc[0]
        gain = f["accuracy"] - single["accuracy"].max()
        st.metric(f"Fusion t = {f['t']}", f"{f['accuracy']:.1f}%", f"{gain:+.1f} pts vs the best single t")
    st.dataframe(single.round(2), hide_index=True)
