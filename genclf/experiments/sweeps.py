"""Choices made on validation: sweeps over t and blocks, scored by a head on seeded shots.

The shots come from validation seeds (rows.val_seeds: 1000, 1001, ...), disjoint from the seeds that score on test.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import numpy as np

from genclf import data, features, heads
from genclf.backbones.ops import Progress
from genclf.errors import GenclfError
from genclf.experiments.fewshot import (
    T_GRID,
    VAL_LIMIT,
    FeatureFn,
    T,
    check_shots,
    config_hash,
    eval_indices,
    pool_indices,
    resolve_t,
    train_features,
    val_seeds,
)

log = logging.getLogger(__name__)


def shots_cv(head: str, x: np.ndarray, y: np.ndarray, seed: int, standardize: bool, xu: np.ndarray | None = None):
    """Stratified cross-validation accuracy inside the shots (no validation labels); None when k < 2."""
    from sklearn.model_selection import StratifiedKFold

    k = min(int(np.unique(y, return_counts=True)[1].min()), 5)
    if k < 2:
        return None
    correct = 0
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y):
        pred = heads.fit_predict(head, x[tr], y[tr], x[te], seed=seed, x_unlabeled=xu, standardize=standardize)
        correct += int((pred == y[te]).sum())
    return correct / len(y)


def run_sweep(
    candidates: list,
    feature_fn: FeatureFn,
    y_train: np.ndarray,
    val_idx: np.ndarray,
    shot_sets: list[tuple[int, np.ndarray]],
    head: str,
    *,
    standardize: bool = True,
    pool_idx: np.ndarray | None = None,
    progress: Progress | None = None,
) -> list[dict]:
    """Validation and in-shot CV accuracy of `head` for every candidate (a t, t list or block set) and seed.

    `feature_fn(candidate, idx, role)` returns features of x_train[idx]; role is 'val', 'shots' or
    'pool'. Returns one dict per (candidate, seed): candidate, seed, accuracy, cv_accuracy, seconds.
    """
    heads.check_head(head)
    out, total = [], len(candidates) * len(shot_sets)
    for c in candidates:
        xv = feature_fn(c, val_idx, "val")
        xp = feature_fn(c, pool_idx, "pool") if head == "labelprop" else None
        for seed, sidx in shot_sets:
            t0 = time.time()
            xs, ys = feature_fn(c, sidx, "shots"), y_train[sidx]
            xu = xp[~np.isin(pool_idx, sidx)] if xp is not None else None
            pred = heads.fit_predict(head, xs, ys, xv, seed=seed, x_unlabeled=xu, standardize=standardize)
            cv = shots_cv(head, xs, ys, seed, standardize, xu)
            acc = float((pred == y_train[val_idx]).mean())
            out.append(
                {"candidate": c, "seed": seed, "accuracy": acc, "cv_accuracy": cv, "seconds": round(time.time() - t0, 3)}
            )
            if progress:
                progress(len(out), total, {"acc": out[-1]["accuracy"]})
    return out


def summarize(results: list[dict]) -> list[dict]:
    """Per candidate (first-seen order): mean and std of validation accuracy, mean CV accuracy."""
    keys = list(dict.fromkeys(_key(r["candidate"]) for r in results))
    out = []
    for k in keys:
        rs = [r for r in results if _key(r["candidate"]) == k]
        cvs = [r["cv_accuracy"] for r in rs if r["cv_accuracy"] is not None]
        acc = np.array([r["accuracy"] for r in rs])
        cv = float(np.mean(cvs)) if cvs else None
        out.append({"candidate": rs[0]["candidate"], "accuracy": float(acc.mean()), "std": float(acc.std()), "cv_accuracy": cv,
                    "n": len(rs)})  # fmt: skip
    return out


def _key(c) -> str:
    return "+".join(map(str, c)) if isinstance(c, list | tuple) else str(c)


def _best(summary: list[dict], field: str):
    scored = [s for s in summary if s[field] is not None]
    return max(scored, key=lambda s: s[field])["candidate"] if scored else None  # ties: the first (smaller t)


def _sweep(kind, dataset, backbone, head, shots, seeds, candidates, fixed, val_limit, progress, feature_fn) -> dict:
    ds = data.load(dataset)
    check_shots(ds, [shots])
    heads.check_head(head)
    bb = features.backbone(backbone, dataset) if feature_fn is None else None
    val_idx = eval_indices(ds, "val", val_limit)
    if not len(val_idx):
        raise features.empty_split(ds, "val")
    pool = pool_indices(ds)
    if feature_fn is None:
        fixed = resolve_t(bb, fixed) if kind == "blocks" else bb.check_blocks(fixed)

        def feature_fn(c, idx, role):
            t, blocks = (c, fixed) if kind == "t" else (fixed, bb.check_blocks(c))
            tag = {"val": {"split": "val", "limit": val_limit}, "pool": {"split": "pool-uniform", "limit": len(pool)}}
            return train_features(ds, bb, idx, t, blocks, tag.get(role, {"split": "shots"}))

    # validation shot sets get their own seeds, never one that scores on test (rows.val_seeds)
    shot_sets = [(s, data.shot_indices(ds, shots, s)) for s in val_seeds(seeds)]
    standardize = backbone != "pixels"
    results = run_sweep(
        candidates, feature_fn, ds.y_train, val_idx, shot_sets, head, standardize=standardize, pool_idx=pool, progress=progress
    )
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    chash = config_hash(bb) if bb is not None else ""
    rows = [
        {"dataset": ds.name, "backbone": backbone, "config_hash": chash, "t": r["candidate"] if kind == "t" else fixed,
         "blocks": r["candidate"] if kind == "blocks" else fixed, "head": head, "shots": shots, "seed": r["seed"],
         "strategy": "random", "split": "val", "n_eval": len(val_idx), "accuracy": r["accuracy"], "baseline_accuracy": None,
         "seconds": r["seconds"], "time": stamp, "cv_accuracy": r["cv_accuracy"]}
        for r in results
    ]  # fmt: skip
    summary = summarize(results)
    best, best_cv = _best(summary, "accuracy"), _best(summary, "cv_accuracy")
    return {"rows": rows, "curve": summary, f"best_{kind}": best, f"best_{kind}_cv": best_cv, "head": head, "shots": shots,
            "seeds": seeds, "fixed": fixed}  # fmt: skip


def sweep_t(
    dataset: str,
    backbone: str = "ddpm",
    head: str = "logreg",
    shots: int = 10,
    seeds: int = 3,
    grid: Iterable = T_GRID,
    blocks: list[str] | None = None,
    val_limit: int | None = VAL_LIMIT,
    progress: Progress | None = None,
    feature_fn: FeatureFn | None = None,
) -> dict:
    """Validation accuracy against t (grid entries may be lists: fusion), fixed k, head and blocks.

    Returns rows (tidy, split='val', with cv_accuracy), curve (per t: accuracy, std, cv_accuracy),
    best_t (by validation) and best_t_cv (by CV inside the shots only; None when k < 2).
    `feature_fn(t, idx, role)` replaces the backbone (tests, custom features).
    """
    grid = list(grid)
    if not grid:
        raise GenclfError("empty t grid; pass e.g. --grid 0,10,50,150")
    if feature_fn is None:
        bb = features.backbone(backbone, dataset)
        if not bb.has_t:
            raise GenclfError(f"sweep-t needs a backbone with a timestep (ddpm); {backbone!r} has none -- use sweep-blocks")
        grid = [resolve_t(bb, t) for t in grid]
    return _sweep("t", dataset, backbone, head, shots, seeds, grid, blocks, val_limit, progress, feature_fn)


def block_candidates(bb) -> list[list[str]]:
    """The default set, every single block, each pair of neighbouring blocks, and each default block
    alone at the backbone's other pooling grids (`grid_variants`: coarser or finer spatial layout)."""
    names = bb.block_names()
    cands = [bb.default_blocks()] + [[b] for b in names] + [names[i : i + 2] for i in range(len(names) - 1)]
    cands += [[f"{b}@{g}"] for b in bb.default_blocks() if "@" not in b for g in bb.grid_variants]
    return [list(c) for c in dict.fromkeys(tuple(c) for c in cands)]


def sweep_blocks(
    dataset: str,
    backbone: str,
    head: str = "logreg",
    shots: int = 10,
    seeds: int = 3,
    candidates: list[list[str]] | None = None,
    t: T = None,
    val_limit: int | None = VAL_LIMIT,
    progress: Progress | None = None,
    feature_fn: FeatureFn | None = None,
) -> dict:
    """Validation accuracy for each block set at a fixed t; best_blocks and best_blocks_cv as in sweep_t."""
    if feature_fn is None:
        bb = features.backbone(backbone, dataset)
        candidates = [bb.check_blocks(c) for c in candidates] if candidates else block_candidates(bb)
    if not candidates:
        raise GenclfError("empty list of block sets; pass e.g. --blocks mid_block --blocks up_blocks.0")
    return _sweep("blocks", dataset, backbone, head, shots, seeds, candidates, t, val_limit, progress, feature_fn)
