"""What the Few-shot, Models and Data pages show: per-class accuracy, confusion, shots and mistakes grids,
training logs, dataset overviews. No streamlit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from genclf import data, features
from genclf.app import views
from genclf.data import images

# ------------------------------------------------------------------ few-shot


def fewshot_test_limit(dataset: str, backbone: str, t, blocks) -> int | None:
    """How many test images a Few-shot run can score on at once: None (the whole split) when its features at t are
    cached, or when too few are (then the run extracts them); else the largest cached prefix of the test split's
    order (at least views.N_RANGE[0] images: Explore's samples, prepared at every grid t)."""
    if features.is_cached(dataset, backbone, t, blocks, "test", None):
        return None
    ds, bb = data.load(dataset), features.backbone(backbone, dataset)
    n = 0
    for i in range(features.n_chunks(ds, len(ds.y_test))):
        if not features.chunk_cached(bb, ds, i, t, blocks):
            break
        n = min(len(ds.y_test), (i + 1) * features.CHUNK)
    return n if n >= views.N_RANGE[0] else None


def warm_fewshot(dataset: str, backbone: str) -> None:
    """Read the prepared Few-shot features at the default t into memory (server start), so the first Train is quick."""
    import sklearn.linear_model  # noqa: F401  (the logreg head; imported once, not on a user's first click)

    t = views.default_t(dataset, backbone)
    if features.is_cached(dataset, backbone, t, None, "test", None):
        features.extract(dataset, backbone, t=t, split="test")


def prepare_test_split(dataset: str, backbone: str, t, blocks):
    """Extract the whole test split's features at t in the background (shared; returns the task)."""
    from genclf.app import tasks

    spec = {"dataset": dataset, "backbone": backbone, "t": t, "blocks": list(blocks) if blocks else None, "split": "test"}
    return tasks.start("features", spec)


def per_class_accuracy(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    y, pred = np.asarray(y), np.asarray(pred)
    return np.array([(pred[y == c] == c).mean() if (y == c).any() else np.nan for c in range(n_classes)])


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    m = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(m, (np.asarray(y), np.asarray(pred)), 1)
    return m


def shot_grid(dataset: str, shot_idx: np.ndarray, size: int = 56) -> np.ndarray:
    """The labeled shots, one row per class (as they were drawn), each image about `size` px."""
    ds = data.load(dataset)
    scale = max(1, size // ds.shape[-1])
    y = ds.y_train[shot_idx]
    rows = [shot_idx[y == c] for c in range(ds.n_classes) if (y == c).any()]
    cols = max(len(r) for r in rows)
    imgs = np.zeros((len(rows) * cols, *ds.shape), np.uint8) + 255
    for r, row in enumerate(rows):
        imgs[r * cols : r * cols + len(row)] = ds.x_train[row]
    return images.grid(imgs, cols=cols, scale=scale)


def mistakes(dataset: str, test_idx: np.ndarray, y: np.ndarray, pred: np.ndarray, limit: int = 40, seed: int = 0):
    """Up to `limit` misclassified test images: (list of upscaled images, captions 'true -> pred')."""
    ds = data.load(dataset)
    wrong = np.flatnonzero(np.asarray(y) != np.asarray(pred))
    wrong = np.sort(np.random.default_rng(seed).permutation(wrong)[:limit])
    imgs = [views.big(ds.x_test[test_idx[w]], 84) for w in wrong]
    caps = [f"{ds.classes[y[w]]} → {ds.classes[pred[w]]}" for w in wrong]
    return imgs, caps


# ------------------------------------------------------------------ models


def train_log(folder: Path | str) -> pd.DataFrame:
    """train_log.jsonl as a table (empty when the run logged nothing yet)."""
    f = Path(folder) / "train_log.jsonl"
    if not f.is_file():
        return pd.DataFrame()
    rows = []
    for line in f.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line being written right now
    return pd.DataFrame(rows)


def overview(name: str) -> pd.DataFrame:
    """Images per class and split (train = pool + val, test)."""
    ds = data.load(name)
    s = data.splits(ds)
    count = lambda y: np.bincount(y, minlength=ds.n_classes)
    return pd.DataFrame(
        {"class": ds.classes, "pool": count(ds.y_train[s.pool]), "val": count(ds.y_train[s.val]), "test": count(ds.y_test)}
    )


def examples(name: str, per: int = 10, scale: int = 2) -> np.ndarray:
    ds = data.load(name)
    rows = [ds.x_train[np.flatnonzero(ds.y_train == c)[:per]] for c in range(min(ds.n_classes, 20))]
    pad = [np.concatenate([r, np.full((per - len(r), *ds.shape), 255, np.uint8)]) for r in rows]
    return images.grid(np.concatenate(pad), cols=per, scale=scale)
