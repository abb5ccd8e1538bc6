"""Cached layouts: a View (dataset, backbone, t, blocks, n, method, dim) -> its 2D/3D projection on disk, aligned across t.

    v = View("fashion-mnist", "ddpm", t=50, n=5000)
    xy = layout(v)                 # (N, dim) float32 from the disk cache, or None
    xy = compute(v)                # features -> projection, cached (kind "projection")
    aligned_layout(v)              # the same, rotated/flipped onto its neighbours (see below)

The points are a fixed stratified subset of the test split (`features.subset_indices`: a prefix of
the split's fixed stratified order, so the 2,000-image sample is part of the 5,000-image one and its
features are reused), so every t, backbone and method projects the *same* images and layouts can be
compared point by point. `layout` also serves the layouts shipped with the package (`shipped`).

Stable scrubbing (clusters must not jump or flip between neighbouring t):
- UMAP is initialised from PCA of the same features, so its orientation follows the data;
- on display, each t is Procrustes-aligned (rotation, reflection, scale, shift; the same points) to
  its nearest ready neighbour on the timestep grid, whose own layout was aligned the same way along
  the grid. Raw layouts are what the cache holds; alignment is a cheap view transform.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace

import numpy as np

from genclf import data, features
from genclf.cache import Cache, make_key
from genclf.errors import unknown
from genclf.explore import shipped
from genclf.explore.projection import METHODS, N_EPOCHS, UMAP_VERSION, embed, procrustes, umap_backend

log = logging.getLogger(__name__)

T_GRID = (0, 5, 10, 15, 20, 25, 35, 50, 75, 100, 150, 200, 300, 400, 500, 700, 999)  # dense at small t (best features)


def default_method() -> str:
    m = os.environ.get("GENCLF_PROJECTION", "umap")
    if m not in METHODS:
        raise unknown("projection method", m, METHODS)
    return m


def grid(has_t: bool) -> tuple[int | None, ...]:
    """Timesteps precomputed in the background (GENCLF_GRID="0,50,500" overrides)."""
    if not has_t:
        return (None,)
    env = os.environ.get("GENCLF_GRID")
    return tuple(int(v) for v in env.split(",")) if env else T_GRID


@dataclass(frozen=True)
class View:
    """One projection: which features (dataset, backbone, t, blocks, seed), how many points, how."""

    dataset: str
    backbone: str
    t: int | None = None
    blocks: tuple[str, ...] | None = None
    n: int = 2000  # stratified test subset (1k-10k in the dashboard)
    seed: int = 0  # feature noise seed (ddpm); the projection seed is fixed
    method: str = "umap"
    dim: int = 2
    n_epochs: int = N_EPOCHS

    def at(self, t: int | None) -> View:
        return replace(self, t=t)


# ------------------------------------------------------------------ cached layouts

_FP: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # backbone object -> weights fingerprint
_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # backbone object -> {View: cache key}
_MEMO: OrderedDict[str, np.ndarray] = OrderedDict()
_LOCK = threading.Lock()


def _fingerprint(bb) -> str:
    """Hashing the weights takes a while for a UNet; once per loaded backbone object is enough."""
    if bb not in _FP:
        _FP[bb] = bb.fingerprint()
    return _FP[bb]


def check(v: View) -> View:
    """Validate a view against its backbone (t, blocks); returns it with blocks resolved."""
    if v.method not in METHODS:
        raise unknown("projection method", v.method, METHODS)
    bb = features.backbone(v.backbone, v.dataset)
    bb.check_t(v.t)
    return replace(v, blocks=tuple(bb.check_blocks(list(v.blocks) if v.blocks else None)))


def parts(v: View) -> dict:
    """The cache-key parts of a view: data and weights fingerprints, not names alone."""
    v = check(v)
    ds = data.load(v.dataset)
    bb = features.backbone(v.backbone, v.dataset)
    umap = v.method == "umap"
    out = {
        "data": ds.fingerprint,
        "weights": _fingerprint(bb),
        "view": {**asdict(v), "n": min(v.n, len(ds.y_test)), "n_epochs": v.n_epochs if umap else None},
        "sample": {"order": features.ORDER_VERSION, "seed": features.ORDER_SEED},
        "umap": UMAP_VERSION if umap else None,
    }
    if umap and umap_backend() != "umap-learn":  # cuML's layout differs: a GPU machine's never stands in for the CPU's
        out["umap_backend"] = umap_backend()
    return out


def key(v: View) -> str:
    """The projection cache key of a view (memoised per loaded backbone: a retrained one is a new object)."""
    bb = features.backbone(v.backbone, v.dataset)
    memo = _KEYS.setdefault(bb, {})
    if v not in memo:
        memo[v] = make_key("projection", parts(v))
    return memo[v]


def sample(v: View) -> np.ndarray:
    """Indices into x_test of the view's points (the same for every t, backbone and method)."""
    ds = data.load(v.dataset)
    return features.subset_indices(ds, "test", v.n)


def feats(v: View, progress=None) -> features.Features:
    v = check(v)
    return features.extract(
        v.dataset, v.backbone, t=v.t, blocks=list(v.blocks), split="test", limit=v.n, seed=v.seed, progress=progress
    )


def _memo(k: str, xy: np.ndarray) -> np.ndarray:
    with _LOCK:  # the dashboard's sessions are threads of one process
        _MEMO[k] = xy
        while len(_MEMO) > 256:
            _MEMO.popitem(last=False)
    return xy


def layout(v: View) -> np.ndarray | None:
    """The raw layout (N, dim) from memory, the disk cache or the shipped layouts; None when not computed. Never computes."""
    k = key(v)
    xy = _MEMO.get(k)
    if xy is not None:
        return xy
    hit = Cache().read("projection", k)
    if hit is not None:
        return _memo(k, hit["xy"])
    xy = shipped.lookup(v.dataset, k)
    return None if xy is None else _memo(k, xy)


def features_ready(v: View) -> bool:
    """Whether the view's features are cached (so PCA is a sub-second computation); never computes."""
    v = check(v)
    return features.is_cached(v.dataset, v.backbone, v.t, list(v.blocks), "test", v.n, v.seed)


def compute(v: View, progress=None) -> np.ndarray:
    """Features (cached) -> projection (cached). Safe to call from several processes at once."""
    have = layout(v)
    if have is not None:
        return have
    v = check(v)
    p = parts(v)

    def run():
        f = feats(v, progress)
        return {"xy": embed(f.x, v.method, v.dim, v.n_epochs, standardize=v.backbone != "pixels")}

    xy = Cache().get_or_compute("projection", p, run, meta={"n": min(v.n, 10**9)})["xy"]
    return _memo(make_key("projection", p), xy)


def preview(v: View, progress=None) -> np.ndarray:
    """An instant PCA view of the same points (extracts the features first when they are missing)."""
    return compute(replace(v, method="pca"), progress)


def ready_grid(v: View) -> list[int | None]:
    """Grid timesteps whose layout for this view is on disk, in grid order."""
    bb = features.backbone(v.backbone, v.dataset)
    return [t for t in grid(bb.has_t) if layout(v.at(t)) is not None]


_ALIGNED: OrderedDict[tuple, dict] = OrderedDict()


def _aligned_grid(v: View, ready: list) -> dict:
    """Chain-align the ready grid layouts: each onto the previous ready one, from the smallest t."""
    sig = (replace(v, t=None), tuple(ready))
    out = _ALIGNED.get(sig)
    if out is None:
        out, prev = {}, None
        for t in ready:
            xy = layout(v.at(t))
            prev = xy if prev is None else procrustes(xy, prev)
            out[t] = prev
        with _LOCK:
            _ALIGNED[sig] = out
            while len(_ALIGNED) > 16:
                _ALIGNED.popitem(last=False)
    return out


def align(v: View, xy: np.ndarray, ref_method: str | None = None) -> np.ndarray:
    """Align layout `xy` of view `v` onto the nearest ready grid layout of `ref_method` (default: v's own)."""
    ref_view = replace(v, method=ref_method or v.method)
    ready = ready_grid(ref_view)
    if not ready:
        return xy
    chain = _aligned_grid(ref_view, ready)
    if v.t in chain and v.method == ref_view.method:
        return chain[v.t]
    nearest = min(ready, key=lambda t: abs((t or 0) - (v.t or 0)))
    ref = chain[nearest]
    return xy if ref.shape != xy.shape else procrustes(xy, ref)


def aligned_layout(v: View) -> np.ndarray | None:
    xy = layout(v)
    return None if xy is None else align(v, xy)
