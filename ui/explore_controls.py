"""Explore's colour, search and export controls (issue 11). Not a page: ui/explore.py calls these.
The compute (groups, matches, CSV and zip) lives in genclf.app.explore_tools; the figure in explore_figures."""

from __future__ import annotations

import contextlib
import re

import numpy as np
import streamlit as st

from genclf import explore
from genclf.app import explore_figures, explore_tools, labels, views
from ui import common

ss = st.session_state
EXPORT_MAX = 5000  # rows (and images) in one export; the caption says when a selection is larger


def predictions(pred: dict[int, int] | None, source: str) -> explore_tools.Predictions | None:
    """common.predictions_for's (pred, "run #n (…)") -> Predictions, with the run's per-image confidence (its
    result is memoised, so this reads it back rather than training again)."""
    if pred is None:
        return None
    n = re.search(r"#(\d+)\b", source)  # the run's number, however the source is worded
    for run in ss.get("fewshot_runs", []):
        if n and run["n"] == int(n.group(1)):
            with contextlib.suppress(Exception):
                return explore_tools.predictions_of(common.few_shot(run["params"]), source)
    return explore_tools.Predictions(pred, None, source)


def _hint() -> str:
    """What to run for the prediction colours: a Few-shot run on this very view."""
    c, t = ss.get("_ctx"), common.get("t", None, int)
    what = f"{labels.backbone(c.label)}{f' at t = {t}' if c.has_t and t is not None else ''}" if c else "this view"
    return (f"Colour by predicted class, correct / wrong or confidence: press **Train** on the **Few-shot** page "
            f"with {what} (same dataset and blocks); the colours then come from your latest such run.")  # fmt: skip


def controls(pts, preds: explore_tools.Predictions | None, n_test: int) -> dict:
    """The widgets; returns what the charts need (colour mode, match mask or None, image mode)."""
    # folded until a tool is first used, then open for the rest of the session: a rerun (a class picked, a toggle,
    # the search cleared to pick a class next) must never fold it away under the user's pointer
    in_use = explore_tools.is_filtering(ss.get("explore_search"), ss.get("explore_classes"), ss.get("explore_wrong"))
    in_use = in_use or bool(ss.get("explore_images")) or ss.get("explore_color", "true class") != "true class"
    ss.explore_tools_open = bool(ss.get("explore_tools_open")) or in_use
    with st.expander("Colour, search and filter", icon=":material/search:", expanded=ss.explore_tools_open):
        a, b, c, d = st.columns([2, 3, 3, 2])
        modes = explore_tools.available_modes(preds)
        if ss.get("explore_color") not in modes:
            ss.explore_color = modes[0]
        mode = a.selectbox(
            "Colour by",
            modes,
            key="explore_color",
            help="Predicted class, correct / wrong and confidence come from your latest Few-shot run on the same "
            "dataset, backbone, blocks and t"
            + ("" if preds else " (none yet: train one on the Few-shot page)")
            + ". Confidence is the head's probability of its prediction (for nearest neighbour, a similarity score).",
        )
        text = b.text_input("Search", key="explore_search", placeholder="test index (12, 40-45) or part of a class name")
        classes = c.multiselect(
            "Classes", list(range(len(pts.classes))), format_func=lambda i: pts.classes[i], key="explore_classes"
        )
        wrong = d.toggle("Misclassified only", key="explore_wrong", disabled=preds is None, help="Needs a Few-shot run.")
        image_mode = d.toggle(
            "Images as points",
            key="explore_images",
            help=f"Draws each test image at its point (2D, at most {explore_tools.IMAGE_MODE_MAX:,} points shown).",
        )
        if preds is None:
            st.caption(_hint())
        elif mode != "true class":
            st.caption(f"Predictions from Few-shot {preds.source}.")
    filtering = explore_tools.is_filtering(text, classes, wrong)
    match = explore_tools.search(pts, text, classes, wrong, preds) if filtering else None
    if match is not None:
        note = explore_tools.search_note(pts, text, n_test)
        st.caption(f"**{int(match.sum()):,}** of {len(match):,} points match; the rest are faded.{' ' + note if note else ''}")
    return {"mode": mode, "match": match, "image_mode": image_mode, "preds": preds}


def scatter(v: explore.View, shown, pts, sel: list[int], uirevision: str, tools: dict, legend: bool):
    """(figure, note): the plain cached chart when no tool is in use; else the tool-aware one (groups, fading, ring,
    thumbnails). The note (or "") is for the caller to show after the chart: an element drawn before it would move
    the chart to another place in the page, and a fragment rerun can then leave the old chart on screen too."""
    marked = sel[0] if len(sel) == 1 else None
    plain = tools["mode"] == "true class" and tools["match"] is None and not tools["image_mode"] and marked is None
    if plain and legend:
        return views.scatter(v, shown, pts, sel, uirevision), ""
    groups = explore_tools.colour_groups(pts, tools["mode"], tools["preds"])
    conf = explore_tools.confidence_of(pts, tools["preds"])
    thumbs, note = None, ""
    if tools["image_mode"] and v.dim == 2:
        if len(pts.idx) > explore_tools.IMAGE_MODE_MAX:
            note = f"Images as points needs at most {explore_tools.IMAGE_MODE_MAX:,} points; pick a smaller sample."
        else:
            thumbs = views.remember("thumbs", (v.dataset, len(pts.idx)),
                                    lambda: explore_tools.thumbnails(v.dataset, pts, np.arange(len(pts.idx))), 8)  # fmt: skip
    fig = explore_figures.scatter(shown.xy, pts, groups, sel, views.view_title(v, shown), uirevision,
                                  match=tools["match"], marked=marked, confidence=conf, thumbs=thumbs,
                                  showlegend=legend)  # fmt: skip
    return fig, note


def export(v: explore.View, pts, sel: list[int], preds: explore_tools.Predictions | None) -> None:
    """CSV (indices, labels, predictions, neighbours) and a zip of the images, for the current selection."""
    cap = sel[:EXPORT_MAX]
    nn = views.neighbours(explore.feats(v).x, cap)
    a, b = st.columns(2)
    a.download_button("Selection as CSV", explore_tools.export_csv(v.dataset, pts, cap, preds, nn),
                      f"{v.dataset}-selection.csv", "text/csv", icon=":material/download:")  # fmt: skip
    b.download_button("Images as zip", explore_tools.export_zip(v.dataset, pts, cap, preds, nn),
                      f"{v.dataset}-selection.zip", "application/zip", icon=":material/folder_zip:")  # fmt: skip
    if len(cap) < len(sel):
        st.caption(f"Exports hold the first {len(cap):,} of the {len(sel):,} selected.")
