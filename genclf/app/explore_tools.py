"""What Explore offers beyond the scatter: colour by predictions, search and filter, export of a selection,
and the image mode (thumbnails as the points). Pure functions over a view's points; no streamlit.

    preds = predictions_of(few_shot_result, "run #2 (logreg, 10 shots)")   # test index -> prediction, confidence
    modes = available_modes(preds)       # ("true class", "predicted class", "correct / wrong", "confidence")
    groups = colour_groups(pts, "correct / wrong", preds)
    keep = search(pts, "12, 40-45", classes=[3], wrong_only=False, preds=preds)   # bool (N,) mask
    csv_bytes = export_csv(dataset, pts, positions, preds, neighbours)
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass

import numpy as np

from genclf import data
from genclf.data import images

COLOR_MODES = ("true class", "predicted class", "correct / wrong", "confidence")
IMAGE_MODE_MAX = 1000  # thumbnails as points above this many points would be unreadable and slow to draw
CORRECT, WRONG = "#1b9e77", "#d95f02"  # colour-blind-safe pair (ColorBrewer Dark2)


@dataclass(frozen=True)
class Predictions:
    """A few-shot run's predictions on test images: test index -> predicted class (and confidence in [0, 1])."""

    pred: dict[int, int]
    confidence: dict[int, float] | None = None
    source: str = ""


def predictions_of(result: dict, source: str = "") -> Predictions:
    """A few-shot result (experiments.few_shot: test_idx, pred and, since issue 11, confidence) -> Predictions.
    A result without confidence (memoised before heads had probabilities) gives confidence None."""
    idx = [int(i) for i in result["test_idx"]]
    conf = result.get("confidence")
    pred = dict(zip(idx, (int(y) for y in result["pred"]), strict=True))
    confidence = None if conf is None else dict(zip(idx, (float(v) for v in conf), strict=True))
    return Predictions(pred, confidence, source)


def available_modes(preds: Predictions | None) -> tuple[str, ...]:
    if preds is None:
        return COLOR_MODES[:1]
    return COLOR_MODES if preds.confidence else COLOR_MODES[:3]


@dataclass
class Group:
    """One legend entry: its name, the positions (into the view's sample) it holds, and a colour."""

    name: str
    positions: np.ndarray
    color: str | None = None  # None: the class palette by `index`
    index: int = 0


def colour_groups(pts, mode: str, preds: Predictions | None) -> list[Group]:
    """Split the points into legend groups for `mode` (one of COLOR_MODES).

    'confidence' gives one group whose colour is per point (the figure maps `confidence_of`). Points that the
    run did not score are grouped as 'not scored' in the prediction modes, never silently dropped."""
    if mode not in COLOR_MODES:
        raise ValueError(f"unknown colour mode {mode!r}; valid: {', '.join(COLOR_MODES)}")
    pos = np.arange(len(pts.idx))
    if mode == "true class" or preds is None:
        return [Group(name, pos[pts.y == c], None, c) for c, name in enumerate(pts.classes) if (pts.y == c).any()]
    pred = np.array([preds.pred.get(int(i), -1) for i in pts.idx])
    scored = pred >= 0
    out: list[Group] = []
    if mode == "predicted class":
        out = [Group(f"→ {name}", pos[pred == c], None, c) for c, name in enumerate(pts.classes) if (pred == c).any()]
    elif mode == "correct / wrong":
        ok = scored & (pred == pts.y)
        out = [Group("correct", pos[ok], CORRECT), Group("wrong", pos[scored & ~ok], WRONG)]
    else:
        out = [Group("confidence", pos[scored], "confidence")]
    if (~scored).any():
        out.append(Group("not scored", pos[~scored], "#bbbbbb"))
    return [g for g in out if len(g.positions)]


def confidence_of(pts, preds: Predictions | None) -> np.ndarray:
    """(N,) confidence per point in [0, 1], NaN where the run has none."""
    if preds is None or not preds.confidence:
        return np.full(len(pts.idx), np.nan)
    return np.array([preds.confidence.get(int(i), np.nan) for i in pts.idx], dtype=float)


_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


def parse_indices(text: str) -> set[int] | None:
    """'12, 40-45' -> {12, 40, ..., 45}; None when `text` is not a list of numbers and ranges (a name search)."""
    out: set[int] = set()
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        return None
    for p in parts:
        m = _RANGE.match(p)
        if not m:
            return None
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if b < a or b - a > 100_000:
            return None
        out.update(range(a, b + 1))
    return out


def search(pts, text: str = "", classes: list[int] | None = None, wrong_only: bool = False, preds: Predictions | None = None):
    """Bool mask (N,) of the points that match every filter given: `text` is test indices/ranges ('12, 40-45')
    or part of a class name; `classes` are true classes; `wrong_only` keeps misclassified points of the run."""
    keep = np.ones(len(pts.idx), bool)
    text = (text or "").strip()
    if text:
        wanted = parse_indices(text)
        if wanted is not None:
            keep &= np.isin(pts.idx, sorted(wanted))
        else:
            names = [c for c, name in enumerate(pts.classes) if text.lower() in name.lower()]
            keep &= np.isin(pts.y, names)
    if classes:
        keep &= np.isin(pts.y, classes)
    if wrong_only:
        if preds is None:
            keep &= False
        else:
            pred = np.array([preds.pred.get(int(i), -1) for i in pts.idx])
            keep &= (pred >= 0) & (pred != pts.y)
    return keep


def search_note(pts, text: str, n_test: int) -> str:
    """What a search could not use, said plainly ("" when all of it was used): text that is neither indices nor part of
    a class name, and asked-for indices that are not test indices or not in the sample shown."""
    text = (text or "").strip()
    if not text:
        return ""
    wanted = parse_indices(text)
    if wanted is None:
        if any(text.lower() in name.lower() for name in pts.classes):
            return ""
        return (f"“{text}” is neither test indices (e.g. 12, 40-45) nor part of a class name "
                f"({', '.join(pts.classes[:3])}, …).")  # fmt: skip
    outside = sum(1 for i in wanted if i >= n_test)
    missing = len(wanted) - outside - int(np.isin(pts.idx, sorted(wanted)).sum())
    said = []
    if outside:
        said.append(f"{outside:,} of the {len(wanted):,} indices are past the test split (0–{n_test - 1:,})")
    if missing:
        said.append(f"{missing:,} are test images not in the {len(pts.idx):,} shown (more images: the Images slider)")
    return "; ".join(said) + "." if said else ""


def is_filtering(text: str, classes, wrong_only: bool) -> bool:
    return bool((text or "").strip() or classes or wrong_only)


# ------------------------------------------------------------------ export


def selection_rows(dataset: str, pts, positions: list[int], preds: Predictions | None, nn: np.ndarray | None) -> list[dict]:
    """One row per selected point: test index, label, prediction, confidence, correct, nearest neighbours."""
    rows = []
    for r, p in enumerate(positions):
        i = int(pts.idx[p])
        pred = preds.pred.get(i) if preds else None
        conf = preds.confidence.get(i) if preds and preds.confidence else None
        row = {
            "test_index": i,
            "label": pts.classes[pts.y[p]],
            "prediction": "" if pred is None else pts.classes[pred],
            "correct": "" if pred is None else int(pred == pts.y[p]),
            "confidence": "" if conf is None else f"{conf:.4f}",
        }
        if nn is not None:
            row["neighbours"] = " ".join(str(int(pts.idx[n])) for n in nn[r])
            row["neighbour_labels"] = " ".join(pts.classes[pts.y[n]].replace(" ", "_") for n in nn[r])
        rows.append(row)
    return rows


def export_csv(dataset: str, pts, positions: list[int], preds: Predictions | None = None, nn=None) -> bytes:
    rows = selection_rows(dataset, pts, positions, preds, nn)
    buf = io.StringIO()
    cols = ["test_index", "label", "prediction", "correct", "confidence", "neighbours", "neighbour_labels"]
    w = csv.DictWriter(buf, fieldnames=[c for c in cols if not rows or c in rows[0]])
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode()


def export_zip(dataset: str, pts, positions: list[int], preds: Predictions | None = None, nn=None) -> bytes:
    """A zip of the selected test images as PNG, in class folders, with selection.csv beside them."""
    ds = data.load(dataset)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in positions:
            i = int(pts.idx[p])
            label = re.sub(r"[^A-Za-z0-9_.-]+", "_", pts.classes[pts.y[p]]).strip("_") or "class"
            zf.writestr(f"{label}/test_{i:05d}.png", images.png_bytes(images.to_hwc(ds.x_test[i])))
        zf.writestr("selection.csv", export_csv(dataset, pts, positions, preds, nn))
    return out.getvalue()


# ------------------------------------------------------------------ image mode


def thumbnails(dataset: str, pts, positions: np.ndarray, scale: int = 1) -> list[str]:
    """PNG data URIs of the points' test images (for thumbnails drawn as the points)."""
    ds = data.load(dataset)
    return [images.data_uri(ds.x_test[int(pts.idx[p])], scale=scale) for p in positions]
