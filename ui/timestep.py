"""Timestep: which noise level t gives the best features, chosen on validation data (never on test).

Sweeps run as background tasks (genclf.app.tasks): they continue across page switches and reloads, show
done/total with an ETA, can be cancelled, and their results are cached on disk. The default sweep is
computed ahead by `genclf prepare`, so it shows at once.
"""

import streamlit as st

from genclf import experiments, heads
from genclf.app import figures, labels, prepare, tables, tasks
from ui import common, denoise_panel

ss = st.session_state
c = common.ctx()
st.title("Timestep")
st.caption(
    "A diffusion model sees an image noised to timestep t (0 = clean, 999 = pure noise); features depend strongly on t. "
    "Here a head is trained on k labeled images per class at each t and scored on the validation split, averaged over "
    "seeds. The best t is marked; the test split is never used to choose it. Fusing several t concatenates their features."
)

if not c.has_t:
    st.info(
        f"{labels.backbone(c.label)} has no timestep. Pick the diffusion backbone (DDPM) in the sidebar to sweep t.",
        icon=":material/info:",
    )
    st.stop()

default = prepare.sweep_params(c.dataset, c.backbone, blocks=list(c.blocks) if c.blocks else None)
with st.form("sweep"):
    a, b, d = st.columns(3)
    head = a.selectbox("Head", heads.HEADS, index=heads.HEADS.index(default["head"]))
    shots = b.number_input("Labeled images per class", 1, 100, default["shots"])
    seeds = d.number_input("Seeds", 1, 10, default["seeds"])
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
    ss.sweep_params = {**default, "head": head, "shots": int(shots), "seeds": int(seeds), "grid": cands}
    with common.guard():
        if prepare.sweep_cached(ss.sweep_params) is None:
            tasks.start("sweep", ss.sweep_params)

params = ss.get("sweep_params")
if not params or (params["dataset"], params["backbone"]) != (c.dataset, c.backbone):
    running = [t for t in tasks.running("sweep") if (t.spec["dataset"], t.spec["backbone"]) == (c.dataset, c.backbone)]
    params = ss.sweep_params = running[0].spec if running else default  # a reload finds its running sweep again


@st.fragment(run_every="2s")
def progress():
    task = tasks.find("sweep", params)
    if task is not None and task.state == "running":
        common.task_status(task, "Sweep running in the background (it continues if you leave this page)")
    elif prepare.sweep_cached(params) is not None or (task is not None and task.state != "running"):
        st.rerun(scope="app")


with common.guard():
    res = prepare.sweep_cached(params)
    if res is None:
        task = tasks.find("sweep", params)
        if task is not None and task.state == "running":
            progress()
        else:
            if task is not None and task.state in ("failed", "cancelled"):
                common.task_status(task, "The last sweep")
            st.info(
                "Choose the head and the timesteps, then **Run the sweep**. It runs in the background; features for "
                "each t are cached on disk, so a second sweep over the same t is quick. (`genclf prepare` computes "
                "the default one ahead.)",
                icon=":material/info:",
            )
        st.stop()
    single, fused = tables.sweep_table(res)
    best = int(single.loc[single["accuracy"].idxmax(), "t"])
    st.caption(f"{params['head']} · {params['shots']} per class · {params['seeds']} seeds · validation split")
    st.plotly_chart(figures.t_curve_figure(single, std="std"), key="t_curve")
    denoise_panel.strip(c, single["t"].tolist())  # issue 15: x_t and x̂0 of one image at every swept t
    a, b, d = st.columns([1, 1, 2])
    a.metric("Best t (validation)", best, help="Chosen on the validation split")
    b.metric("Validation accuracy at best t", f"{single['accuracy'].max():.1f}%")
    if res.get("best_t_cv") is not None and not isinstance(res["best_t_cv"], list):
        d.caption(
            f"Picking t by cross-validation inside the {params['shots']} shots alone (no validation labels) gives "
            f"t={res['best_t_cv']}."
        )
    if d.button(f"Use t={best} in Explore and Few-shot", type="primary", icon=":material/arrow_forward:"):
        common.put("t", best)
        st.switch_page("ui/explore.py")
    if len(fused):
        f = fused.iloc[0]
        gain = f["accuracy"] - single["accuracy"].max()
        st.metric(f"Fusion t = {f['t']}", f"{f['accuracy']:.1f}%", f"{gain:+.1f} pts vs the best single t")
    st.dataframe(single.round(2), hide_index=True)
