"""What the Few-shot, Models and Data pages show: per-class accuracy, confusion, shots and mistakes grids,
training logs, dataset overviews. No streamlit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from genclf import data
from genclf.app import views
from genclf.data import images

# ------------------------------------------------------------------ few-shot


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
