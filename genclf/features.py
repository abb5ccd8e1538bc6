"""Feature extraction with the disk cache: (dataset, backbone, t, blocks, split, subset) -> (N, D) float32.

    r = extract("fashion-mnist", "ddpm", t=50, split="val")
    r.x  (N, D) float32,  r.y  (N,) labels,  r.idx  indices into the split's source array

`t` may be a list: features for each timestep are concatenated (multi-timestep fusion,
Mukhopadhyay et al. arXiv 2307.08702). Every (backbone, t) part is cached separately, so a fusion
reuses single-t entries.

The test split is cached per fixed chunk of CHUNK images of one fixed stratified order
(`split_order`): a `limit` subset of the test split is a prefix of that order, so 2,000 images are
the first 2,000 of 5,000, and growing a sample, or scoring on the whole split, extracts only the
chunks not yet on disk (`chunk_features`). Other splits are cached per (split, limit) as one entry.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import weakref
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
ORDER_SEED = 0  # the test split's stratified order (its prefixes are the `limit` subsets)
ORDER_VERSION = 1  # bump if split_order changes: it is part of every chunk's cache key
CHUNK = 500  # images per cached chunk of the test split's order


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
_MEMO_LOCK = threading.Lock()
_FP: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # backbone object -> weights fingerprint


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


def stratified_order(labels: np.ndarray, idx: np.ndarray, seed: int = ORDER_SEED) -> np.ndarray:
    """A fixed permutation of `idx` whose every prefix keeps the class proportions (to within one image per class).

    The r-th of a class's c images (seeded shuffle) sits at fraction (r + 0.5) / c along the order; ties
    between classes are broken by a seeded shuffle."""
    rng = np.random.default_rng(seed)
    y = labels[idx]
    frac = np.empty(len(idx))
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        frac[members[rng.permutation(len(members))]] = (np.arange(len(members)) + 0.5) / len(members)
    return idx[np.lexsort((rng.permutation(len(idx)), frac))]


def split_order(ds: data.Dataset, split: str = "test") -> np.ndarray:
    """The split's fixed stratified order (indices into x_test for 'test'); memoised on the dataset."""
    memo = ds.__dict__.setdefault("_orders", {})
    if split not in memo:
        labels = ds.y_test if split == "test" else ds.y_train
        memo[split] = stratified_order(labels, ds.split_indices(split))
    return memo[split]


def subset_indices(ds: data.Dataset, split: str, limit: int | None) -> np.ndarray:
    """Sorted indices of a split, or of its fixed stratified `limit` subset (the test split: a prefix of split_order)."""
    idx = ds.split_indices(split)
    if limit is None or limit >= len(idx):
        return idx
    if limit < 1:
        raise GenclfError(f"--limit must be a positive number of images, got {limit}")
    if split == "test":
        return np.sort(split_order(ds, split)[:limit])
    labels = ds.y_test if split == "test" else ds.y_train
    return data.stratified_subset(labels, idx, limit, seed=SUBSET_SEED)


def empty_split(ds: data.Dataset, split: str) -> GenclfError:
    """The error for a split with no image (features of it, a sweep on it): a folder dataset too small for a validation
    split of its own."""
    if split in ("val", "pool"):
        return GenclfError(
            f"the {'validation' if split == 'val' else 'pool'} split of {ds.name} is empty: validation is 10% of the "
            f"training images, rounded down, and it has {len(ds.y_train)}; add images to each class (at least 10 "
            "training images in all, more per class for a steadier validation split)"
        )
    return GenclfError(f"the {split} split of {ds.name} holds no image; add images to each class")


def _memo_put(key: str, x: np.ndarray) -> None:
    with _MEMO_LOCK:  # the dashboard's sessions are threads of one process
        _MEMO[key] = x
        while sum(v.nbytes for v in _MEMO.values()) > _MEMO_BYTES and len(_MEMO) > 1:
            _MEMO.popitem(last=False)


def _fingerprint(bb: Backbone) -> str:
    """Hashing a UNet's weights takes milliseconds; chunked calls ask for it often, so once per loaded object."""
    if bb not in _FP:
        _FP[bb] = bb.fingerprint()
    return _FP[bb]


def _parts(bb: Backbone, ds: data.Dataset, images: np.ndarray, t, blocks, seed: int, tag: dict | None) -> dict:
    return {
        "dataset": ds.name,
        "data": ds.fingerprint,
        "backbone": bb.name,
        "weights": _fingerprint(bb),
        "config": bb.config_dict(),
        "t": t,
        "blocks": blocks,
        "seed": seed,
        "images": hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:16],
        **(tag or {}),
    }


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
    parts = _parts(bb, ds, images, t, blocks, seed, tag)
    key = make_key("features", parts)
    hit = _MEMO.get(key)
    if hit is not None:
        return hit, key, True, 0.0
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


def array_cached(bb: Backbone, ds: data.Dataset, images: np.ndarray, t, blocks, seed: int = 0, tag: dict | None = None):
    """Whether extract_array(bb, ds, images, t, blocks, seed, tag=tag) would be served from memory or disk; never computes."""
    parts = _parts(bb, ds, images, bb.check_t(t), bb.check_blocks(blocks), seed, tag)
    return make_key("features", parts) in _MEMO or Cache().has("features", parts)


def _chunk(ds: data.Dataset, split: str, i: int) -> tuple[np.ndarray, dict]:
    """Indices (into the split's source array) of chunk i of the split's order, and its cache-key tag."""
    sl = split_order(ds, split)[i * CHUNK : (i + 1) * CHUNK]
    return sl, {"split": split, "order": ORDER_VERSION, "order_seed": ORDER_SEED, "chunk": i, "chunk_size": CHUNK}


def n_chunks(ds: data.Dataset, n: int, split: str = "test") -> int:
    """How many chunks cover the first n images of the split's order."""
    return -(-min(n, len(ds.split_indices(split))) // CHUNK)


def chunk_features(
    bb: Backbone,
    ds: data.Dataset,
    i: int,
    t: int | None,
    blocks: list[str] | None,
    seed: int = 0,
    split: str = "test",
    cache: Cache | None = None,
    progress: Progress | None = None,
) -> tuple[np.ndarray, str, bool, float]:
    """Cached features of chunk i (CHUNK images) of the split's fixed stratified order, like extract_array."""
    sl, tag = _chunk(ds, split, i)
    src = ds.x_test if split == "test" else ds.x_train
    return extract_array(bb, ds, src[sl], t, blocks, seed, cache, progress, tag)


def chunk_cached(bb: Backbone, ds: data.Dataset, i: int, t, blocks, seed: int = 0, split: str = "test", cache=None) -> bool:
    """Whether chunk i is on disk (or in memory) for this t, blocks and seed; never computes."""
    sl, tag = _chunk(ds, split, i)
    src = ds.x_test if split == "test" else ds.x_train
    parts = _parts(bb, ds, src[sl], bb.check_t(t), bb.check_blocks(blocks), seed, tag)
    return make_key("features", parts) in _MEMO or (cache or Cache()).has("features", parts)


def _ordered(bb, ds, split: str, n: int, t, blocks, seed: int, cache, progress) -> tuple[np.ndarray, list[str], bool, float]:
    """Features of the first n images of the split's order, assembled from chunks; only missing chunks are extracted."""
    k = n_chunks(ds, n, split)
    todo = [i for i in range(k) if not chunk_cached(bb, ds, i, t, blocks, seed, split, cache)]
    total = sum(len(_chunk(ds, split, i)[0]) for i in todo)
    xs, keys, cached, secs, done = [], [], True, 0.0, 0
    for i in range(k):
        cb = None
        if progress is not None and i in todo:
            cb = lambda d, _t, info, off=done: progress(off + d, total, info)
        x, key, hit, s = chunk_features(bb, ds, i, t, blocks, seed, split, cache, cb)
        if i in todo:
            done += len(x)
        xs.append(x)
        keys.append(key)
        cached &= hit
        secs += s
    return np.concatenate(xs)[:n], keys, cached, secs


def is_cached(dataset: str, backbone_name: str, t=None, blocks=None, split: str = "test", limit=None, seed: int = 0) -> bool:
    """Whether extract(...) with these arguments would be served from the cache (test split only: chunked)."""
    ds = data.load(dataset)
    bb = backbone(backbone_name, dataset)
    if split != "test":
        raise GenclfError("is_cached answers for the chunked test split only")
    n = len(subset_indices(ds, split, limit))
    ts = t if isinstance(t, list | tuple) else [t]
    return all(chunk_cached(bb, ds, i, tt, blocks, seed, split) for tt in ts for i in range(n_chunks(ds, n, split)))


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
    if not len(idx):
        raise empty_split(ds, split)
    labels = (ds.y_test if split == "test" else ds.y_train)[idx]
    xs, keys, cached, secs = [], [], True, 0.0
    for tt in ts:
        if split == "test":  # chunks of the fixed order; idx is the sorted first len(idx) of that order
            x, ks, hit, s = _ordered(bb, ds, split, len(idx), tt, blocks, seed, cache, progress)
            x = x[np.argsort(split_order(ds, split)[: len(idx)], kind="stable")]
            key = hashlib.sha256(f"{len(idx)}:{''.join(ks)}".encode()).hexdigest()
        else:
            tag = {"split": split, "limit": limit}
            x, key, hit, s = extract_array(bb, ds, ds.x_train[idx], tt, blocks, seed, cache, progress, tag)
        xs.append(x)
        keys.append(key)
        cached &= hit
        secs += s
    x = xs[0] if len(xs) == 1 else np.concatenate(xs, axis=1)
    key = keys[0] if len(keys) == 1 else hashlib.sha256("".join(keys).encode()).hexdigest()
    return Features(x, labels, idx, bb.check_blocks(blocks), key, cached, secs)
