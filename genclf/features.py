"""Feature extraction with the disk cache: (dataset, backbone, t, blocks, split, subset) -> (N, D) float32.

    r = extract("fashion-mnist", "ddpm", t=50, split="val")
    r.x  (N, D) float32,  r.y  (N,) labels,  r.idx  indices into the split's source array

`t` may be a list: features for each timestep are concatenated (multi-timestep fusion,
Mukhopadhyay et al. arXiv 2307.08702). Every (backbone, t) part is cached separately, so a fusion
reuses single-t entries.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from genclf import data
from genclf.backbones import Backbone, distributed, resolve
from genclf.backbones.ops import Progress
from genclf.cache import Cache, make_key
from genclf.errors import GenclfError

log = logging.getLogger(__name__)

SUBSET_SEED = 0  # `limit` subsets are fixed: the same N always means the same images


@dataclass
class Features:
    x: np.ndarray  # (N, D) float32
    y: np.ndarray  # (N,) int64
    idx: np.ndarray  # (N,) indices into x_train (train/val/pool) or x_test (test)
    blocks: list[str]
    key: str
    cached: bool
    seconds: float  # extraction time (0 when served from cache)


_BACKBONES: OrderedDict[tuple, Backbone] = OrderedDict()
_MEMO: OrderedDict[str, np.ndarray] = OrderedDict()
_MEMO_BYTES = 2 * 1024**3


def backbone(name: str, dataset: str, **options) -> Backbone:
    """Load (once per process) the backbone `name` for `dataset`, with feature-time options."""
    ds = data.load(dataset)
    stamp = None
    if name != "pixels":  # a retrained model (same folder, new weights) must not be served stale
        from genclf.backbones import find

        w = find(name, dataset) / "model.safetensors"
        stamp = w.stat().st_mtime_ns if w.is_file() else None
    key = (name, dataset, tuple(sorted(options.items())), stamp)
    if key not in _BACKBONES:
        if name == "pixels":
            _BACKBONES[key] = resolve("pixels", dataset, shape=ds.shape)
        else:
            _BACKBONES[key] = resolve(name, dataset, **options)
        while len(_BACKBONES) > 12:
            _BACKBONES.popitem(last=False)
    return _BACKBONES[key]


def subset_indices(ds: data.Dataset, split: str, limit: int | None) -> np.ndarray:
    idx = ds.split_indices(split)
    if limit is None or limit >= len(idx):
        return idx
    if limit < 1:
        raise GenclfError(f"--limit must be a positive number of images, got {limit}")
    labels = ds.y_test if split == "test" else ds.y_train
    return data.stratified_subset(labels, idx, limit, seed=SUBSET_SEED)


def _memo_put(key: str, x: np.ndarray) -> None:
    _MEMO[key] = x
    while sum(v.nbytes for v in _MEMO.values()) > _MEMO_BYTES and len(_MEMO) > 1:
        _MEMO.popitem(last=False)


def extract_array(
    bb: Backbone,
    ds: data.Dataset,
    images: np.ndarray,
    t: int | None,
    blocks: list[str] | None,
    seed: int = 0,
    cache: Cache | None = None,
    progress: Progress | None = None,
    tag: dict | None = None,
) -> tuple[np.ndarray, str, bool, float]:
    """Cached features of `images` for one t. Returns (x, key, was_cached, seconds)."""
    cache = cache or Cache()
    t = bb.check_t(t)
    blocks = bb.check_blocks(blocks)
    parts = {
        "dataset": ds.name,
        "data": ds.fingerprint,
        "backbone": bb.name,
        "weights": bb.fingerprint(),
        "config": bb.config_dict(),
        "t": t,
        "blocks": blocks,
        "seed": seed,
        "images": hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:16],
        **(tag or {}),
    }
    key = make_key("features", parts)
    if key in _MEMO:
        return _MEMO[key], key, True, 0.0
    d = distributed.get()
    if d is not None and d.world > 1:
        x, hit, secs = _extract_sharded(d, bb, images, t, blocks, seed, cache, parts, progress)
        _memo_put(key, x)
        return x, key, hit, secs
    spent = {"s": 0.0}

    def compute():
        t0 = time.time()
        x = bb.features(images, t, blocks=blocks, seed=seed, progress=progress)
        spent["s"] = time.time() - t0
        return {"x": x}

    x = cache.get_or_compute("features", parts, compute, meta={"n": len(images)})["x"]
    _memo_put(key, x)
    return x, key, spent["s"] == 0.0, spent["s"]


def _extract_sharded(d, bb, images, t, blocks, seed, cache, parts, progress) -> tuple[np.ndarray, bool, float]:
    """Under `accelerate launch`: every process extracts its slice, all gather, the main process writes the one entry.

    The entry is the one a single process would write (same key, same rows in the same order; equal within
    bf16 rounding), so single-process runs reuse it and the other way round.
    """
    hit = cache.read("features", make_key("features", parts), discard_corrupt=False)
    if d.all(hit is not None):
        return hit["x"], True, 0.0
    n = len(images)

    def report(done: int, total: int, info: dict) -> None:  # the main process's slice stands for all of them
        progress(min(n, done * d.world), n, info)

    t0 = time.time()
    cb = report if progress and d.main else None
    x = d.map_rows(n, lambda s: bb.features(images[s], t, blocks=blocks, seed=seed, progress=cb))
    secs = time.time() - t0
    if d.main:  # the cache's lock and atomic publish keep this safe against any other writer of the key
        cache.get_or_compute("features", parts, lambda: {"x": x}, meta={"n": n, "processes": d.world})
    d.barrier()
    return x, False, secs


def extract(
    dataset: str,
    backbone_name: str,
    t: int | list[int] | None = None,
    blocks: list[str] | None = None,
    split: str = "test",
    limit: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    cache: Cache | None = None,
    **options,
) -> Features:
    """Features for a dataset split (optionally a fixed stratified subset of `limit` images)."""
    ds = data.load(dataset)
    bb = backbone(backbone_name, dataset, **options)
    ts = t if isinstance(t, list | tuple) else [t]
    if len(ts) > 1 and not bb.has_t:
        raise GenclfError(f"fusion over timesteps needs a backbone with t (ddpm); {backbone_name!r} has none")
    if len(ts) == 0:
        raise GenclfError("empty list of timesteps; pass e.g. --t 10,50,150")
    idx = subset_indices(ds, split, limit)
    images = (ds.x_test if split == "test" else ds.x_train)[idx]
    labels = (ds.y_test if split == "test" else ds.y_train)[idx]
    xs, keys, cached, secs = [], [], True, 0.0
    for tt in ts:
        x, key, hit, s = extract_array(bb, ds, images, tt, blocks, seed, cache, progress, {"split": split, "limit": limit})
        xs.append(x)
        keys.append(key)
        cached &= hit
        secs += s
    x = xs[0] if len(xs) == 1 else np.concatenate(xs, axis=1)
    key = keys[0] if len(keys) == 1 else hashlib.sha256("".join(keys).encode()).hexdigest()
    return Features(x, labels, idx, bb.check_blocks(blocks), key, cached, secs)
