"""Few-shot experiments under one protocol: shot curves, seeds, shot strategies, t and block sweeps.

    r = few_shot("fashion-mnist", "ddpm", "logreg", shots=10, seed=0, t=50)
    r["accuracy"], r["baseline_accuracy"]      # test accuracy; pixels + logreg on the same shots

The protocol (never bent):
- labeled shots come from the pool (train minus validation): `data.shot_indices` for `random`
  (stratified, seeded), or `representative_indices` over a fixed uniform subset of the pool for
  `representative`, chosen without reading a label;
- every choice (t, blocks, head) is made on a stratified subset of the validation split, or by
  cross-validation inside the shots; the test split only scores;
- every run is one tidy row (ROW_FIELDS); `write_csv` writes them.

Features come from the disk cache (genclf.features): the test split once per (backbone, t, blocks),
the shots by image content, so a k=10 run from a warm cache takes well under a second plus the head.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from genclf import data, features, heads
from genclf.backbones.ops import Progress
from genclf.errors import GenclfError, unknown

log = logging.getLogger(__name__)

STRATEGIES = ("random", "representative")
SHOTS = (1, 2, 5, 10, 20, 50, 100)
T_GRID = (0, 5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 500, 750)  # log-like, dense at small t
DEFAULT_T = 50  # used when a backbone with t gets none; `--t auto` selects on validation instead
POOL_LIMIT = 5000  # unlabeled pool subset for labelprop and representative selection
POOL_SEED = 0
VAL_LIMIT = 2000  # stratified validation subset for sweeps (fixed, like features' `limit` subsets)
VAL_SEED0 = 1000  # validation shot sets use seeds VAL_SEED0, VAL_SEED0 + 1, ...; test scoring uses 0, 1, ...
CNN = "cnn"  # pseudo-backbone: heads.cnn_fit_predict trained from scratch on the shots' images (its head is "cnn" too)
ROW_FIELDS = (
    "dataset", "backbone", "config_hash", "t", "blocks", "head", "shots", "seed", "strategy",
    "split", "n_eval", "accuracy", "baseline_accuracy", "seconds", "time",
)  # fmt: skip

T = int | list[int] | None
FeatureFn = Callable[[Any, np.ndarray, str], np.ndarray]  # (candidate, idx into x_train, role) -> (len(idx), D)


def scoring_seeds(n: int) -> list[int]:
    """Seeds of the shot sets scored on test: 0..n-1 (never reaching VAL_SEED0)."""
    if not 1 <= n <= VAL_SEED0:
        raise GenclfError(f"seeds must be 1..{VAL_SEED0} (seeds from {VAL_SEED0} on are kept for validation), got {n}")
    return list(range(n))


def val_seeds(n: int) -> list[int]:
    """Seeds of the shot sets behind choices made on validation: VAL_SEED0..VAL_SEED0+n-1, so that no choice is
    tuned to a shot set that is later scored on test."""
    if n < 1:
        raise GenclfError(f"seeds must be at least 1, got {n}")
    return list(range(VAL_SEED0, VAL_SEED0 + n))


def check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise unknown("strategy", strategy, STRATEGIES)
    return strategy


def check_shots(ds: data.Dataset, shots: Iterable[int]) -> list[int]:
    """Refuse an empty list, k < 1 and k above what the smallest class holds in the pool."""
    shots = list(shots)
    if not shots:
        raise GenclfError("empty list of shots; pass e.g. --shots 1,5,10")
    most = data.max_shots(ds.y_train, data.splits(ds).pool)
    for k in shots:
        if k < 1:
            raise GenclfError(f"shots per class must be at least 1, got {k}")
        if k > most:
            raise GenclfError(f"{k} shots per class is more than the smallest class of {ds.name} holds; use k <= {most}")
    return shots


def resolve_t(bb, t: T) -> T:
    """Validate t for `bb` (list = fusion); a backbone with t and no t given gets DEFAULT_T."""
    if isinstance(t, list | tuple):
        if not t:
            raise GenclfError("empty list of timesteps; pass e.g. --t 10,50,150")
        if len(t) > 1 and not bb.has_t:
            raise GenclfError(f"fusion over timesteps needs a backbone with t (ddpm); {bb.name!r} has none -- drop --t")
        ts = [bb.check_t(v) for v in t]
        return ts if len(ts) > 1 else ts[0]
    if t is None and bb.has_t:
        return DEFAULT_T
    return bb.check_t(t)


_HASHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def config_hash(bb) -> str:
    """sha256 (16 hex) over the backbone's config and weights."""
    if bb not in _HASHES:
        _HASHES[bb] = bb.fingerprint()
    return _HASHES[bb]


# ------------------------------------------------------------------ features by train index


def train_features(ds: data.Dataset, bb, idx: np.ndarray, t: T, blocks: list[str], tag: dict, progress=None) -> np.ndarray:
    """Cached features of x_train[idx] (N, D); a t list concatenates per-t features (fusion)."""
    ts = t if isinstance(t, list | tuple) else [t]
    xs = [features.extract_array(bb, ds, ds.x_train[idx], tt, blocks, 0, None, progress, tag)[0] for tt in ts]
    return xs[0] if len(xs) == 1 else np.concatenate(xs, axis=1)


def pool_indices(ds: data.Dataset, limit: int = POOL_LIMIT) -> np.ndarray:
    """A fixed uniform (not class-stratified: no label is read) subset of the pool, indices into x_train."""
    pool = data.splits(ds).pool
    if len(pool) <= limit:
        return pool
    return np.sort(np.random.default_rng(POOL_SEED).choice(pool, limit, replace=False))


def eval_indices(ds: data.Dataset, split: str, limit: int | None) -> np.ndarray:
    return features.subset_indices(ds, split, limit)


def eval_features(
    ds, backbone: str, split: str, limit: int | None, t: T, blocks, progress=None
) -> tuple[np.ndarray, np.ndarray]:
    """(x, idx) of the scoring split ('test' or 'val'); the same cache entries as features.extract."""
    f = features.extract(ds.name, backbone, t=t, blocks=blocks, split=split, limit=limit, progress=progress)
    return f.x, f.idx


# ------------------------------------------------------------------ choosing the shots


def representative_indices(features_pool: np.ndarray, budget: int, seed: int = 0) -> np.ndarray:
    """TypiClust (Hacohen et al. 2022, arXiv 2202.02794): positions into features_pool (N, D), `budget` of them.

    Cluster into `budget` groups (KMeans; MiniBatchKMeans above 50) on standardized, PCA-reduced
    features, then take each cluster's most typical point: the highest inverse mean distance to its
    nearest neighbours inside the cluster. No label is an input.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(features_pool, np.float32)
    if not 1 <= budget <= len(x):
        raise GenclfError(f"a labeling budget of {budget} needs 1..{len(x)} pool images; lower the shots")
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-6)
    dims = min(50, x.shape[1], len(x))
    if dims < x.shape[1]:
        x = PCA(dims, random_state=seed).fit_transform(x).astype(np.float32)
    km = KMeans(budget, n_init=1, random_state=seed) if budget <= 50 else MiniBatchKMeans(budget, random_state=seed, n_init=3)
    labels = km.fit_predict(x)
    typ = np.zeros(len(x))
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = min(20, len(members) - 1)
        if k < 1:
            typ[members] = 0.0
            continue
        d, _ = NearestNeighbors(n_neighbors=k + 1).fit(x[members]).kneighbors(x[members])
        typ[members] = 1.0 / (d[:, 1:].mean(1) + 1e-8)
    picks = [np.flatnonzero(labels == c)[typ[labels == c].argmax()] for c in np.unique(labels)]
    if len(picks) < budget:  # empty clusters: top up with the most typical points left
        rest = np.setdiff1d(np.argsort(-typ, kind="stable"), picks, assume_unique=True)
        picks += list(rest[: budget - len(picks)])
    return np.sort(np.asarray(picks, np.int64))


def pool_features(ds, bb, t: T, blocks, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """(pool_indices(ds), their features): the unlabeled pool behind labelprop and representative picks."""
    pool = pool_indices(ds)
    return pool, train_features(ds, bb, pool, t, blocks, {"split": "pool-uniform", "limit": len(pool)}, progress)


def unlabeled_features(ds, bb, shot_idx: np.ndarray, t: T, blocks, progress=None) -> np.ndarray:
    """Features of the pool minus the labeled shots: labelprop's unlabeled images."""
    pool, xp = pool_features(ds, bb, t, blocks, progress)
    return xp[~np.isin(pool, shot_idx)]


def choose_shots(ds, bb, shots: int, seed: int, strategy: str, t: T, blocks, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """(shot_idx into x_train, their features (n, D))."""
    check_strategy(strategy)
    if strategy == "random":
        idx = data.shot_indices(ds, shots, seed)
        return idx, train_features(ds, bb, idx, t, blocks, {"split": "shots"}, progress)
    pool, xp = pool_features(ds, bb, t, blocks, progress)
    picks = representative_indices(xp, shots * ds.n_classes, seed)
    return pool[picks], xp[picks]


# ------------------------------------------------------------------ one run


_BASELINE: dict[tuple, float] = {}


def baseline_accuracy(ds: data.Dataset, shot_idx: np.ndarray, split: str, eval_idx: np.ndarray, seed: int = 0) -> float:
    """pixels + logreg (C=1, raw [0, 1] pixels, not standardized) on exactly these shots."""
    key = (ds.fingerprint, split, hash(shot_idx.tobytes()), hash(eval_idx.tobytes()), seed)
    if key not in _BASELINE:
        src_x, src_y = (ds.x_test, ds.y_test) if split == "test" else (ds.x_train, ds.y_train)
        flat = lambda a: a.reshape(len(a), -1).astype(np.float32) / 255.0
        pred = heads.fit_predict(
            "logreg", flat(ds.x_train[shot_idx]), ds.y_train[shot_idx], flat(src_x[eval_idx]), seed=seed, standardize=False
        )
        _BASELINE[key] = float((pred == src_y[eval_idx]).mean())
    return _BASELINE[key]


def evaluate(
    dataset: str,
    backbone: str,
    head: str,
    shots: int,
    seed: int,
    t: T = None,
    blocks: list[str] | None = None,
    strategy: str = "random",
    split: str = "test",
    limit: int | None = None,
    progress: Progress | None = None,
    baseline: bool = True,
) -> dict:
    """One run scored on `split` ('test' or 'val'); see few_shot for the returned keys."""
    t0 = time.time()
    head = CNN if backbone == CNN else heads.check_head(head)
    check_strategy(strategy)
    if split not in ("test", "val"):
        raise unknown("scoring split", split, ("test", "val"))
    ds = data.load(dataset)
    check_shots(ds, [shots])
    bb = features.backbone("pixels" if backbone == CNN else backbone, dataset)  # the CNN selects shots on pixels
    t = resolve_t(bb, t)
    blocks = bb.check_blocks(blocks)
    x_eval, eval_idx = eval_features(ds, bb.name if backbone == CNN else backbone, split, limit, t, blocks, progress)
    y_eval = (ds.y_test if split == "test" else ds.y_train)[eval_idx]
    shot_idx, x_shot = choose_shots(ds, bb, shots, seed, strategy, t, blocks, progress)
    xu = unlabeled_features(ds, bb, shot_idx, t, blocks, progress) if head == "labelprop" else None
    if backbone == CNN:
        images = (ds.x_test if split == "test" else ds.x_train)[eval_idx]
        scored = heads.cnn_fit_predict_proba(ds.x_train[shot_idx], ds.y_train[shot_idx], images, seed=seed, hflip=ds.hflip)
    else:
        std = bb.name != "pixels"
        scored = heads.fit_predict_proba(head, x_shot, ds.y_train[shot_idx], x_eval, seed=seed, x_unlabeled=xu,
                                         standardize=std)  # fmt: skip
    pred = scored.pred
    k = ds.n_classes
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (y_eval, pred), 1)
    per_class = np.diag(confusion) / np.maximum(confusion.sum(1), 1)
    chash = CNN if backbone == CNN else config_hash(bb)
    row = {"dataset": ds.name, "backbone": backbone, "config_hash": chash, "t": t, "blocks": list(blocks),
           "head": head, "shots": int(shots), "seed": int(seed), "strategy": strategy, "split": split,
           "n_eval": int(len(y_eval)), "accuracy": float((pred == y_eval).mean()), "baseline_accuracy": None}  # fmt: skip
    if baseline:  # pixels + logreg is its own baseline: same shots, same fit
        same = backbone == "pixels" and head == "logreg"
        row["baseline_accuracy"] = row["accuracy"] if same else baseline_accuracy(ds, shot_idx, split, eval_idx, seed)
    row["seconds"] = round(time.time() - t0, 3)
    row["time"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    arrays = {"y_test": y_eval, "pred": pred, "confidence": scored.confidence, "test_idx": eval_idx, "shot_idx": shot_idx}
    return {**row, **arrays, "per_class": per_class, "confusion": confusion}


def few_shot(
    dataset: str,
    backbone: str,
    head: str,
    shots: int,
    seed: int,
    t: T = None,
    blocks: list[str] | None = None,
    strategy: str = "random",
    test_limit: int | None = None,
    progress: Progress | None = None,
) -> dict:
    """Train `head` on `shots` labeled images per class of `backbone` features; score on test.

    Returns the row fields (ROW_FIELDS; `accuracy` and `baseline_accuracy` in [0, 1]) plus
    y_test, pred, confidence (the head's probability of its prediction, float32 in (0, 1]; a similarity score
    for knn, see heads.fit_predict_proba), test_idx (into x_test), shot_idx (into x_train), per_class (K,),
    confusion (K, K) with true classes on rows. `t=None` on a backbone with t means DEFAULT_T; a list fuses timesteps.
    `test_limit` scores a fixed stratified test subset (for the dashboard); None is the full split.
    backbone="cnn" is the from-scratch baseline (heads.cnn_fit_predict on the images; `head` is ignored).
    """
    return evaluate(dataset, backbone, head, shots, seed, t, blocks, strategy, "test", test_limit, progress)


def validate(
    dataset: str,
    backbone: str,
    head: str,
    shots: int,
    t: T = None,
    blocks: list[str] | None = None,
    strategy: str = "random",
    seeds: int = 3,
    limit: int | None = VAL_LIMIT,
    progress: Progress | None = None,
) -> dict:
    """The figure that guides a choice: validation accuracy over `seeds` validation shot sets (val_seeds), never a
    set that is scored on test. Returns accuracy, std, baseline (pixels + logreg on the same shots), lead (mean of
    the per-seed differences) and lead_ci95 (95% t-interval half-width; NaN for one seed), seeds, n_eval."""
    from scipy.stats import t as student

    runs = [evaluate(dataset, backbone, head, shots, s, t, blocks, strategy, "val", limit, progress) for s in val_seeds(seeds)]
    acc = np.array([r["accuracy"] for r in runs])
    base = np.array([r["baseline_accuracy"] for r in runs])
    d = acc - base
    half = float(student.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return {"accuracy": float(acc.mean()), "std": float(acc.std()), "baseline": float(base.mean()), "lead": float(d.mean()),
            "lead_ci95": half, "seeds": val_seeds(seeds), "n_eval": runs[0]["n_eval"]}  # fmt: skip


def row_of(result: dict) -> dict:
    """The JSON/CSV-ready row of a few_shot/evaluate result (drops arrays)."""
    return {k: v for k, v in result.items() if not isinstance(v, np.ndarray)}


# ------------------------------------------------------------------ sweeps (validation only)
