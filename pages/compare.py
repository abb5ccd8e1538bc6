"""Compare: label-efficiency curves (test accuracy against labeled images per class) for every backbone."""

import streamlit as st

from genclf import experiments, heads
from genclf.app import figures, tables, views
from pages import common

ss = st.session_state
c = common.ctx()


def compute(params: tuple, progress=None):
    p = {k: list(v) if isinstance(v, tuple) else v for k, v in params}
    return views.remember("compare", params, lambda: tables.compare_rows(**p, progress=progress), 16)


present = st.toggle("Presentation view", key="compare_present", help="Just the chart and the table, large.")
if present:
    st.markdown(
        "<style>[data-testid='stSidebar'],[data-testid='stSidebarCollapsedControl']{display:none}</style>",
        unsafe_allow_html=True,
    )
else:
    st.title("Compare")
    st.caption(
        "How accuracy grows with the number of labeled images per class, for each backbone, next to logistic "
        "regression on raw pixels trained on the same images. Lines are the mean over seeds, bands ± one standard "
        "deviation. Results come from `genclf report` (results/<dataset>/) or are computed here."
    )

with common.guard():
    saved = tables.results_rows(c.dataset)
    src = "saved" if len(saved) else "compute"
    if not present:
        src = st.radio(
            "Source",
            ["saved", "compute"],
            index=0 if len(saved) else 1,
            horizontal=True,
            format_func={"saved": f"results/{c.dataset}/ ({len(saved):,} runs)", "compute": "compute now"}.get,
        )
    rows = saved
    if src == "compute":
        if not present:
            with st.form("compare"):
                bbs = views.backbone_choices(c.dataset)
                a, b = st.columns([2, 1])
                pick = a.multiselect("Backbones", list(bbs), default=list(bbs))
                head = b.selectbox("Head", heads.HEADS)
                a, b, d, e = st.columns(4)
                shots = a.multiselect("Shots per class", experiments.SHOTS, default=[1, 5, 10, 20])
                seeds = b.number_input("Seeds", 1, 10, 3)
                limit = d.number_input(
                    "Test images (0 = all)",
                    0,
                    100_000,
                    2000,
                    step=500,
                    help="A fixed stratified subset scores faster; 0 scores the full test split.",
                )
                strategy = e.selectbox("Shots", experiments.STRATEGIES)
                if st.form_submit_button("Compute curves", type="primary", icon=":material/play_arrow:"):
                    ss.compare_params = (
                        ("dataset", c.dataset),
                        ("backbones", tuple(bbs[p] for p in pick)),
                        ("head", head),
                        ("shots", tuple(sorted(shots))),
                        ("seeds", int(seeds)),
                        ("strategy", strategy),
                        ("t", ss.get("fs_t", 50)),
                        ("test_limit", int(limit) or None),
                    )
        params = ss.get("compare_params")
        if not params or dict(params)["dataset"] != c.dataset:
            st.info(
                "Pick backbones and shots, then **Compute curves**. Features are cached, so later runs are quick.",
                icon=":material/info:",
            )
            st.stop()
        p = dict(params)
        with st.spinner("Training heads for every backbone, shot count and seed (features are cached)…"):
            rows = compute(params, progress=common.progress("runs")) if p["backbones"] else saved
        if not p["backbones"]:
            st.error("Pick at least one backbone.")
            st.stop()
    table = tables.curves_table(rows)
    title = f"{c.dataset}: test accuracy vs labeled images per class"
    st.plotly_chart(figures.curves_figure(table, title, height=640 if present else 520), key="curves")
    wide = table.pivot(index="method", columns="shots", values="mean").round(1)
    st.dataframe(wide, width="stretch")
    if not present:
        a, b, d = st.columns(3)
        a.download_button(
            "Curves CSV (mean, std)",
            table.to_csv(index=False),
            f"{c.dataset}-curves.csv",
            "text/csv",
            icon=":material/download:",
        )
        b.download_button(
            "All runs CSV", rows.to_csv(index=False), f"{c.dataset}-runs.csv", "text/csv", icon=":material/download:"
        )
        d.download_button(
            "Chart PNG", figures.curves_png(table, title), f"{c.dataset}-curves.png", "image/png", icon=":material/image:"
        )
