"""Splits and shots: the fixed validation split, stratified subsets and seeded k-shot sets.

Shots come from the pool (train minus validation), never from validation or test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from genclf.errors import GenclfError

if TYPE_CHECKING:  # the registry imports this module; only the type is needed here
    from genclf.data.registry import Dataset

VAL_SEED = 0  # fixed: the validation split never moves between runs


@dataclass(frozen=True)
class Splits:
    val: np.ndarray = field(repr=False)  # indices into x_train
    pool: np.ndarray = field(repr=False)  # train minus val: where labeled shots come from


def stratified_subset(labels: np.ndarray, idx: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`n` indices from `idx`, class proportions kept (largest-remainder rounding), seeded, sorted."""
    rng = np.random.default_rng(seed)
    y = labels[idx]
    classes, counts = np.unique(y, return_counts=True)
    n = min(n, len(idx))
    quota = counts * n / counts.sum()
    take = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - take))[: n - take.sum()]:
        take[i] += 1
    out = [rng.choice(idx[y == c], size=t, replace=False) for c, t in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(out))


def splits(ds: Dataset, val_fraction: float = 0.1, max_val: int = 5000) -> Splits:
    """The fixed stratified validation split (10% of train, at most 5000) and the rest ('pool')."""
    key = (val_fraction, max_val)
    memo = ds.__dict__.setdefault("_splits", {})
    if key not in memo:
        n = len(ds.y_train)
        val = stratified_subset(ds.y_train, np.arange(n), min(max_val, int(n * val_fraction)), seed=VAL_SEED)
        memo[key] = Splits(val=val, pool=np.setdiff1d(np.arange(n), val))
    return memo[key]


def max_shots(labels: np.ndarray, candidates: np.ndarray) -> int:
    return int(np.bincount(labels[candidates]).min()) if len(candidates) else 0


def sample_shots(labels: np.ndarray, candidates: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k random indices per class from `candidates`, seeded; sorted by class then draw order."""
    if k < 1:
        raise GenclfError(f"shots per class must be at least 1, got {k}")
    present = np.unique(labels[candidates])
    counts = np.array([(labels[candidates] == c).sum() for c in present])
    if k > counts.min():
        worst = int(present[counts.argmin()])
        raise GenclfError(f"{k} shots per class is more than class {worst} holds; the largest k possible is {counts.min()}")
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(candidates[labels[candidates] == c], size=k, replace=False) for c in present])


def shot_indices(ds: Dataset, k: int, seed: int) -> np.ndarray:
    """The seeded k-shot labeled set for `ds`: indices into x_train, drawn from the pool (never val/test)."""
    pool = splits(ds).pool
    counts = np.bincount(ds.y_train[pool], minlength=ds.n_classes)
    if k > counts.min():
        c = int(counts.argmin())
        raise GenclfError(
            f"{k} shots per class is more than class {c} ({ds.classes[c]!r}) holds outside validation "
            f"({counts[c]} images); the largest k possible for {ds.name} is {counts.min()}"
        )
    return sample_shots(ds.y_train, pool, k, seed)
