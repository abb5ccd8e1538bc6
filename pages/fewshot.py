"""Few-shot: label k images per class, train a small head on their features, score it on the test split."""

import numpy as np
import pandas as pd
import streamlit as st

from genclf import data, heads
from genclf.app import figures, views
from pages import common

ss = st.session_state
c = common.ctx()
st.title("Few-shot")
st.caption(
    "Pick how many labeled images per class you can afford. A small head is trained on their features and scored on "
    "the whole test split, next to logistic regression on raw pixels trained on the very same images (the baseline "
    "generative features have to beat). `representative` picks the images to label without looking at labels."
)
STRATEGIES = ("random", "representative")
ss.setdefault("fewshot_runs", [])
if c.has_t:  # the t shown on Explore (the shared view state), unless changed here: then Explore follows
    ss.fs_t = common.get("t", views.default_t(c.dataset, c.backbone), int)


def pct(a) -> float:
    return float(a) * 100 if float(a) <= 1 else float(a)


with st.form("fewshot"):
    a, b, d, e = st.columns(4)
    shots = a.number_input("Labeled images per class", 1, 100, 10)
    head = b.selectbox(
        "Head",
        heads.HEADS,
        help="logreg: logistic regression; linear / mlp: small torch heads; "
        "knn: cosine nearest neighbour; labelprop: label spreading over unlabeled images too",
    )
    strategy = d.radio("Which images to label", STRATEGIES, horizontal=True)
    seed = e.number_input("Seed", 0, 10_000, c.seed)
    if c.has_t:
        st.slider("Timestep t", 0, 999, key="fs_t", help="Shared with Explore. The Timestep page finds the best one on "
                  "validation data.")  # fmt: skip
    go = st.form_submit_button("Train", type="primary", icon=":material/play_arrow:",
                               on_click=lambda: c.has_t and common.put("t", ss.fs_t))  # fmt: skip

if go:
    with common.guard():
        params = {
            "dataset": c.dataset,
            "backbone": c.backbone,
            "head": head,
            "shots": int(shots),
            "seed": int(seed),
            "t": int(ss.fs_t) if c.has_t else None,
            "blocks": list(c.blocks) if c.blocks else None,
            "strategy": strategy,
        }
        # the whole test split's features at this t may not be on disk yet: score at once on the prepared part
        # (Explore's sample, a stratified prefix) while the rest is extracted in the background
        params["test_limit"] = views.fewshot_test_limit(c.dataset, c.backbone, params["t"], params["blocks"])
        if params["test_limit"]:
            views.prepare_test_split(c.dataset, c.backbone, params["t"], params["blocks"])
        key = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items())
        r = common.few_shot(key, progress=common.progress("features"))
        ss.fewshot_runs.append(
            {
                "n": len(ss.fewshot_runs) + 1,
                "params": key,
                "label": c.label,
                "accuracy": pct(r["accuracy"]),
                "baseline": pct(r["baseline_accuracy"]),
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
    run = runs[ss.get("fewshot_shown", len(runs) - 1)]
    p = dict(run["params"])
    r = common.few_shot(run["params"])
    ds = data.load(p["dataset"])
    st.subheader(
        f"Run #{run['n']}: {run['label']} · {p['head']} · {p['shots']} per class"
        + (f" · t={p['t']}" if p["t"] is not None else "")
        + f" · {p['strategy']} · seed {p['seed']}"
    )
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Test accuracy", f"{run['accuracy']:.1f}%", f"{run['accuracy'] - run['baseline']:+.1f} pts vs pixels")
    m2.metric("Pixel baseline, same shots", f"{run['baseline']:.1f}%")
    m3.metric("Labeled images", f"{len(r['shot_idx']):,}")
    m4.metric("Test images", f"{len(r['y_test']):,}")
    if p.get("test_limit"):
        n, of = p["test_limit"], len(ds.y_test)
        st.caption(f"Scored on a stratified {n:,} of the {of:,} test images, the ones prepared at t={p['t']}; the rest "
                   "are extracted in the background (sidebar): train again later to score on all.")  # fmt: skip
    y, pred = np.asarray(r["y_test"]), np.asarray(r["pred"])
    left, right = st.columns(2)
    conf = r.get("confusion")
    conf = views.confusion(y, pred, ds.n_classes) if conf is None else np.asarray(conf)
    left.plotly_chart(figures.confusion_figure(conf, ds.classes), key="fs_conf")
    right.plotly_chart(
        figures.per_class_figure(views.per_class_accuracy(y, pred, ds.n_classes), ds.classes), key="fs_perclass"
    )
    shots_title = (
        "Suggested images to label (representative picks, chosen without labels)"
        if p["strategy"] == "representative"
        else "The labeled shots (one row per class)"
    )
    st.markdown(f"**{shots_title}**")
    st.image(views.shot_grid(p["dataset"], np.asarray(r["shot_idx"])), width="content")
    imgs, caps = views.mistakes(p["dataset"], np.asarray(r["test_idx"]), y, pred)
    st.markdown(f"**Misclassified test images** ({int((y != pred).sum()):,} in all; a sample, true → predicted)")
    if imgs:
        st.image(imgs, caption=caps, width=84)

st.subheader("This session's runs")
hist = pd.DataFrame(
    [
        {
            "run": h["n"],
            "backbone": h["label"],
            **{k: v for k, v in h["params"] if k not in ("dataset", "backbone")},
            "accuracy %": round(h["accuracy"], 2),
            "pixels %": round(h["baseline"], 2),
            "gain": round(h["accuracy"] - h["baseline"], 2),
            "seconds": round(h["seconds"], 2),
        }
        for h in runs
    ]
)
hist["blocks"] = hist["blocks"].map(lambda b: ",".join(b) if b else "default")
common.table(hist, key=f"fs_history_{len(runs)}", height=min(400, 60 + 32 * len(runs)))
