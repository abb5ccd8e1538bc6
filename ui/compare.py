"""Compare: label-efficiency curves, led by the best generative pipeline (chosen on validation) against pixels +
logistic regression on the same shots; a presentation view with PNG and one-page HTML and PDF exports."""

import time

import pandas as pd
import streamlit as st

from genclf import experiments, heads
from genclf.app import figures, labels, presentation, tables, views
from ui import common

ss = st.session_state
c = common.ctx()


def compute(params: tuple, progress=None):
    p = {k: list(v) if isinstance(v, tuple) else v for k, v in params}
    return views.remember("compare", params, lambda: tables.compare_rows(**p, progress=progress), 16)


present = st.toggle("Presentation view", key="compare_present", help="Headline, curve and numbers in large type.")
if present:
    st.markdown(
        "<style>[data-testid='stSidebar'],[data-testid='stSidebarCollapsedControl']{display:none}"
        ".stMainBlockContainer p, .stMainBlockContainer td, .stMainBlockContainer th{font-size:1.35rem}</style>",
        unsafe_allow_html=True,
    )
else:
    st.title("Compare")
    st.caption(
        "How test accuracy grows with the number of labeled images per class. The best generative pipeline is chosen "
        "on the validation split at each k and drawn against logistic regression on raw pixels trained on the very "
        "same images; a lead is the mean per-seed difference, ± its 95% interval. Add any other pipeline below."
    )

with common.guard():
    saved = tables.results_rows(c.dataset, split=None)
    src = "saved" if len(saved) else "compute"
    if not present:
        n_saved = int((saved["split"] == "test").sum()) if len(saved) else 0
        src = st.radio(
            "Source",
            ["saved", "compute"],
            index=0 if len(saved) else 1,
            horizontal=True,
            format_func={"saved": f"saved results ({n_saved:,} test runs)", "compute": "compute now"}.get,
            help=f"saved: `results/{c.dataset}/runs.csv`, written by `genclf report --dataset {c.dataset}`",
        )
    rows = saved
    if src == "compute":
        if not present:
            with st.form("compare"):
                bbs = views.backbone_choices(c.dataset)
                a, b = st.columns([2, 1])
                pick = a.multiselect("Backbones", list(bbs), default=list(bbs), format_func=labels.backbone)
                head = b.selectbox("Head", heads.HEADS, format_func=labels.head, help=labels.heads_help(heads.HEADS))
                a, b, d, e = st.columns(4)
                shots = a.multiselect("Labeled images per class", experiments.SHOTS, default=[1, 5, 10, 20])
                seeds = b.number_input("Seeds", 1, 20, 3, help="Test seeds 0..n-1; as many validation shot sets choose.")
                sub = "A fixed stratified subset scores faster; 0 scores the full test split."
                limit = d.number_input("Test images (0 = all)", 0, 100_000, 2000, step=500, help=sub)
                strategy = e.selectbox("Which images to label", experiments.STRATEGIES, format_func=labels.strategy)
                if st.form_submit_button("Compute curves", type="primary", icon=":material/play_arrow:"):
                    ss.compare_params = (("dataset", c.dataset), ("backbones", tuple(bbs[p] for p in pick)),
                                         ("head", head), ("shots", tuple(sorted(shots))), ("seeds", int(seeds)),
                                         ("strategy", strategy), ("t", common.get("t", 50, int)),
                                         ("test_limit", int(limit) or None))  # fmt: skip
        params = ss.get("compare_params")
        if not params or dict(params)["dataset"] != c.dataset:
            st.info("Pick backbones and shots, then **Compute curves**. Features are cached, so later runs are quick.",
                    icon=":material/info:")  # fmt: skip
            st.stop()
        if not dict(params)["backbones"]:
            st.error("Pick at least one backbone.")
            st.stop()
        with st.spinner("Training heads for every backbone, shot count and seed (features are cached)…"):
            rows = compute(params, progress=common.progress("runs"))
    table = tables.curves_table(rows)
    best = tables.best_on_val(rows)
    base = tables.BASELINE if (table["method"] == tables.BASELINE).any() else tables.BASELINE_ONLY
    h = tables.headline(table, best)
    dsname = labels.dataset(c.dataset)
    if h:
        other_head = labels.head(h["method"].rsplit(" + ", 1)[-1]) if not h["method"].endswith("+ logreg") else ""
        headline = f"{labels.pipeline(h['method'])}: {tables.headline_text(h)}"
        subline = (f"over {labels.pipeline(tables.BASELINE)} on the same labeled images ({h['accuracy']:.1f}% vs "
                   f"{h['baseline']:.1f}% test accuracy on {dsname}); ± is the 95% interval over seeds"
                   + (f"; the heads differ ({other_head} vs logistic regression)" if other_head else "") + ".")  # fmt: skip
        st.markdown(f"{'#' if present else '###'} {headline}")
        st.markdown(subline)
    else:
        headline, subline = f"{dsname}: test accuracy vs labeled images per class", ""
        if len(table):
            st.caption("No validation runs here to choose a best pipeline on, so every pipeline is drawn (at most "
                       f"{len(figures.LINES) - 1}, one colour each).")  # fmt: skip
    others = [m for m in dict.fromkeys(table["method"]) if m != base]
    room = len(figures.LINES) - 1 - bool(best)  # colours left after the baseline's black and the best curve's
    extra = [] if best else others[:room]
    if not present and (best or len(others) > room):
        extra = st.multiselect("Add lines" if best else "Lines", others, default=extra, key="compare_lines",
                               max_selections=room, format_func=labels.pipeline,
                               help=f"Any other pipeline of these runs, each in its own colour (at most {room}, so "
                               "that no colour repeats).")  # fmt: skip
    shown = [tables.best_curve(table, best)] if best else []
    shown = pd.concat([*shown, table[table["method"].isin([base, *extra])]], ignore_index=True)
    methods = [m for m in ([tables.BEST] if best else []) + [base, *extra] if (shown["method"] == m).any()]
    fig = figures.curves_figure(shown, "", height=620 if present else 520, name=labels.pipeline, font=20 if present else 14)
    st.plotly_chart(fig, key="curves", config={"scrollZoom": False})
    numbers = tables.numbers_table(shown, methods, name=labels.pipeline)  # the corner says what the table is
    numbers = numbers.rename_axis(index="on the test split · labeled images per class →")
    (st.table if present else st.dataframe)(numbers)
    if best:
        chosen = ", ".join(f"{k}: {labels.pipeline(m)}" for k, m in sorted(best.items()))
        differ = {k: labels.head(m.rsplit(" + ", 1)[-1]) for k, m in sorted(best.items()) if not m.endswith(" + logreg")}
        note = ", ".join(f"k = {k} ({hd})" for k, hd in differ.items())
        note = (f" At {note} the chosen pipeline's head is not logistic regression, the baseline's head: there the "
                "lead compares heads too.") if note else ""  # fmt: skip
        st.caption(f"Best generative pipeline chosen on validation, per labeled images per class — {chosen}.{note}")
    gen = f"{h['method'].split(' ')[0]} + logreg" if h else None  # the headline backbone, like for like
    if not present and gen and (table["method"] == gen).any():
        for rival in tables.rivals(table):
            diff = tables.paired_diff(rows, gen, rival)
            if diff.empty:
                continue
            ours, theirs = labels.pipeline(gen), labels.pipeline(rival)
            st.markdown(f"**Against the contrastive competitor: {ours} − {theirs}, test accuracy points on the same shots**")
            cells = [tables.pm(r.lead, r.lead_ci95, True) for r in diff.itertuples()]
            seeds = [str(r.pairs) for r in diff.itertuples()]
            st.dataframe(pd.DataFrame([cells, seeds], index=[f"{ours} − {theirs}", "seeds"],
                                      columns=pd.Index(diff["shots"].tolist(), name="labeled images per class")))  # fmt: skip
            st.caption(tables.diff_sentence(diff, ours, theirs) + " Both use logistic regression on their own features.")
    n_test = int(rows.loc[rows["split"] == "test", "n_eval"].max()) if "n_eval" in rows and len(rows) else None
    backbone = labels.pipeline(h["method"]).split(" + ")[0].split(",")[0] if h else "generative model"
    sentence = presentation.method_sentence(dsname, n_test, backbone, not h or not other_head)
    if present:
        st.markdown(sentence)
    chart = figures.curves_png(shown, "", (1400, 720), name=labels.pipeline, font=22)
    footer = f"genclf · {time.strftime('%Y-%m-%d')} · `genclf report --dataset {c.dataset}` regenerates the numbers"
    tall = figures.curves_png(shown, "", (1400, 1000), name=labels.pipeline, font=24)  # fills an A4 page's width
    a, b, f, d, e = st.columns([1, 1.35, 1.35, 1, 1])  # room for the report buttons' labels
    a.download_button("Slide PNG", presentation.presentation_png(headline, subline, sentence, chart, numbers),
                      f"{c.dataset}-compare.png", "image/png", icon=":material/image:")  # fmt: skip
    b.download_button("One-page HTML report",
                      presentation.presentation_html(headline, headline, subline, sentence, chart, numbers, footer),
                      f"{c.dataset}-compare.html", "text/html", icon=":material/description:")  # fmt: skip
    f.download_button("One-page PDF report",
                      presentation.presentation_pdf(headline, headline, subline, sentence, tall, numbers, footer),
                      f"{c.dataset}-compare.pdf", "application/pdf", icon=":material/picture_as_pdf:")  # fmt: skip
    if not present:
        d.download_button("Curves CSV", shown.to_csv(index=False), f"{c.dataset}-curves.csv", "text/csv",
                          icon=":material/download:")  # fmt: skip
        e.download_button("All runs CSV", rows.to_csv(index=False), f"{c.dataset}-runs.csv", "text/csv",
                          icon=":material/download:")  # fmt: skip
