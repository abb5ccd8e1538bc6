"""Few-shot: label k images per class, train a small head on their features, score it on the test split."""

import numpy as np
import streamlit as st

from genclf import data, experiments, heads
from genclf.app import figures, labels, live, summaries, tables
from ui import common

ss = st.session_state
c = common.ctx()
st.title("Few-shot")
st.caption(
    "Pick how many labeled images per class you can afford. A small head is trained on their features and scored on "
    "the validation split (the figure to choose by) and on the test split (the held-out result to report), each "
    "next to logistic regression on raw pixels trained on the very same images, the baseline to beat."
)
STRATEGIES = ("random", "representative")
DEFAULTS = live.FEWSHOT_DEFAULTS  # what `genclf prepare` reads ahead (and the server runs once at start)
ss.setdefault("fewshot_runs", [])
if c.has_t:  # the t shown on Explore (the shared view state), unless changed here: then Explore follows
    ss.fs_t = common.get("t", live.default_t(c.dataset, c.backbone), int)


def pct(a) -> float:
    return float(a) * 100 if float(a) <= 1 else float(a)


def reopen() -> None:
    ss.fewshot_shown = int(ss[f"fs_reopen_{len(ss.fewshot_runs)}"]) - 1


with st.form("fewshot", enter_to_submit=False):  # Enter in a field must not start a run
    a, b, d, e = st.columns(4)
    shots = a.number_input(
        "Labeled images per class",
        1,
        100,
        DEFAULTS["shots"],
        help="random: exactly this many per class. representative: a total budget of this many × the number of "
        "classes, spread over clusters of the unlabeled images, so some classes get more and some fewer.",
    )
    head = b.selectbox(
        "Head", heads.HEADS, heads.HEADS.index(DEFAULTS["head"]), format_func=labels.head, help=labels.heads_help(heads.HEADS)
    )
    strategy = d.radio(
        "Which images to label",
        STRATEGIES,
        STRATEGIES.index(DEFAULTS["strategy"]),
        horizontal=True,
        help="random: drawn at random within each class. representative: picked without reading labels (TypiClust: "
        "the most typical image of each cluster), as a total budget, not per class.",
    )
    seed = e.number_input("Seed", 0, 10_000, c.seed, help="Picks this run's labeled images (and the head's "
                          "initialisation); it starts at the sidebar's seed. The validation figure does not depend on "
                          "it: it is a mean over fixed validation shot sets.")  # fmt: skip
    if c.has_t:
        st.slider("Timestep t", 0, 999, key="fs_t", help="Shared with Explore. The Timestep page finds the best one on "
                  "validation data.")  # fmt: skip
    go = st.form_submit_button("Train", type="primary", icon=":material/play_arrow:",
                               on_click=lambda: c.has_t and common.put("t", ss.fs_t))  # fmt: skip

if go:
    with common.guard():
        t = int(ss.fs_t) if c.has_t else None
        key = live.fewshot_key(c.dataset, c.backbone, head, shots, seed, t, c.blocks, strategy)
        # the whole test split's features at this t may not be on disk yet: score at once on the prepared part
        # (Explore's sample, a stratified prefix) while the rest is extracted in the background
        if dict(key)["test_limit"]:
            live.prepare_test_split(c.dataset, c.backbone, t, c.blocks)
        r = live.few_shot(key, progress=common.progress("features"))
        v = live.validate(key, progress=common.progress("validation features"))
        ss.fewshot_runs.append(
            {
                "n": len(ss.fewshot_runs) + 1,
                "params": key,
                "label": c.label,
                "accuracy": pct(r["accuracy"]),
                "baseline": pct(r["baseline_accuracy"]),
                "val": 100 * v["accuracy"],
                "val_base": 100 * v["baseline"],
                "val_lead": 100 * v["lead"],
                "val_ci": 100 * v["lead_ci95"],
                "val_seeds": len(v["seeds"]),
                "n_val": v["n_eval"],
                "seconds": float(r.get("seconds", 0)),
            }
        )
        ss.fewshot_shown = len(ss.fewshot_runs) - 1

runs = ss.fewshot_runs
if not runs:
    st.info(
        "Set the options above and press **Train**. Training a head on cached features takes a second or two.",
        icon=":material/info:",
    )
    st.stop()

with common.guard():
    run = runs[min(ss.get("fewshot_shown", len(runs) - 1), len(runs) - 1)]
    p = dict(run["params"])
    r = common.few_shot(run["params"])
    ds = data.load(p["dataset"])
    is_pixels = p["backbone"] == "pixels"
    st.subheader(tables.fewshot_title(run))
    if "val" in run:  # the figure to choose by: validation, on shot sets that are never scored on test
        m1, m2, m3, m4 = st.columns(4)
        lead, colour = tables.lead_delta(run["val_lead"], run["val_ci"])
        m1.metric("Validation accuracy", f"{run['val']:.1f}%", None if is_pixels else lead, delta_color=colour,
                  help=f"Mean over {run['val_seeds']} validation shot sets (seeds {experiments.VAL_SEED0}+), "
                  "the same for every test seed and never the shots scored on test. The lead is over pixels on the "
                  "same shots; ± is its 95% interval, and it is grey when that interval includes zero. Choose by "
                  "this.")  # fmt: skip
        m2.metric("Pixels on validation, same shot sets", f"{run['val_base']:.1f}%")
        m3.metric("Validation shot sets", f"{run['val_seeds']}", help=f"{run['val_seeds']} sets of {p['shots']} per "
                  f"class (seeds {experiments.VAL_SEED0}+), the same for every test seed.")  # fmt: skip
        m4.metric("Validation images", f"{run['n_val']:,}")
        st.caption(f"Validation: mean over {run['val_seeds']} fixed validation shot sets, so another test seed leaves it "
                   "unchanged; the held-out test result below uses this run's own labeled images "
                   f"({len(r['shot_idx']):,}).")  # fmt: skip
    with st.container(key="fs_heldout"):
        st.html("<style>.st-key-fs_heldout{opacity:.6}</style>")
        st.markdown(
            "**Held-out test result** — the number to report, not to tune on: choosing head, k, t or blocks by it "
            "would make it a validation score."
        )
        m1, m2, m3, m4 = st.columns(4)
        gain = None if is_pixels else f"{run['accuracy'] - run['baseline']:+.1f} pts vs pixels, same shots"
        m1.metric("Test accuracy", f"{run['accuracy']:.1f}%", gain, delta_color="off")
        m2.metric("Pixel baseline, same shots", f"{run['baseline']:.1f}%")
        m3.metric("Test images", f"{len(r['y_test']):,}")
    if p.get("test_limit"):
        n, of = p["test_limit"], len(ds.y_test)
        at = "" if p["t"] is None else f" at t={p['t']}"
        st.caption(f"Scored on a stratified {n:,} of the {of:,} test images, the ones prepared{at}; the rest "
                   "are extracted in the background (sidebar): train again later to score on all.")  # fmt: skip
    y, pred = np.asarray(r["y_test"]), np.asarray(r["pred"])
    shot_idx = np.asarray(r["shot_idx"])
    if p["strategy"] == "representative":
        per = np.bincount(ds.y_train[shot_idx], minlength=ds.n_classes)
        st.markdown(
            f"**Suggested images to label (representative picks, chosen without labels)**: a budget of {len(shot_idx)} "
            f"images ({p['shots']} × {ds.n_classes} classes) spread over clusters, so classes get {per.min()}–{per.max()} "
            "each; one row per class."
        )
    else:
        st.markdown("**The labeled shots (one row per class)**")
    st.image(summaries.shot_grid(p["dataset"], shot_idx), width="content")
    # a switch, not an expander: a collapsed expander's charts and images are still drawn by the browser (about 1 s
    # after each Train on a busy 2-core machine); these are drawn only when asked for
    if st.toggle("Held-out test details: confusion, per-class accuracy, misclassified images", key="fs_details"):
        left, right = st.columns(2)
        conf = r.get("confusion")
        conf = summaries.confusion(y, pred, ds.n_classes) if conf is None else np.asarray(conf)
        left.plotly_chart(figures.confusion_figure(conf, ds.classes), key="fs_conf")
        right.plotly_chart(
            figures.per_class_figure(summaries.per_class_accuracy(y, pred, ds.n_classes), ds.classes), key="fs_perclass"
        )
        imgs, caps = summaries.mistakes(p["dataset"], np.asarray(r["test_idx"]), y, pred)
        st.markdown(f"**Misclassified test images** ({int((y != pred).sum()):,} in all; a sample, true → predicted)")
        if imgs:
            st.image(imgs, caption=caps, width=84)

st.subheader("This session's runs")
st.dataframe(tables.fewshot_history(runs), hide_index=True, width="stretch", key=f"fs_history_{len(runs)}")
st.selectbox(
    "Reopen a run",
    [h["n"] for h in runs],
    index=min(ss.get("fewshot_shown", len(runs) - 1), len(runs) - 1),
    key=f"fs_reopen_{len(runs)}",
    on_change=reopen,
    format_func=lambda n: f"run #{n}",
    help="Shows that run's results above again (its features and head are cached).",
)
