"""Projection maths on (N, D) features: centring, PCA, UMAP and Procrustes alignment. Pure functions.

UMAP runs on the GPU with RAPIDS cuML when cuML imports and a CUDA device is present (the same algorithm,
many times faster on large samples), else with umap-learn on the CPU. `GENCLF_UMAP=cpu` forces umap-learn.
cuML is never required.
"""

from __future__ import annotations

import functools
import logging
import os

import numpy as np

from genclf.errors import GenclfError, unknown

METHODS = ("umap", "pca")
N_EPOCHS = 200  # REFERENCE: n_epochs=100 halves UMAP time; 200 keeps clusters crisp
UMAP_VERSION = 2  # 2: exact kNN graph (part of the layout cache key)
PCA_BEFORE_UMAP = 50  # reduce wide features before the neighbour search


def prep(x: np.ndarray, standardize: bool = True) -> np.ndarray:
    """Center (and z-score) features; raw pixels keep their scale (standardizing them amplifies noise)."""
    x = np.asarray(x, np.float32)
    x = x - x.mean(0)
    if standardize:
        x = x / (x.std(0) + 1e-6)
    return x


def pca(x: np.ndarray, dim: int) -> np.ndarray:
    """(N, D) centered -> (N, dim) top principal components, signs fixed (largest |loading| positive)."""
    from sklearn.decomposition import PCA

    k = min(dim, *x.shape)
    y = PCA(k, svd_solver="auto", random_state=0).fit_transform(x)
    y = y * np.sign(y[np.abs(y).argmax(0), np.arange(k)])
    if k < dim:
        y = np.pad(y, ((0, 0), (0, dim - k)))
    return y.astype(np.float32)


@functools.cache
def umap_backend() -> str:
    """'cuml' when RAPIDS cuML imports and sees a CUDA GPU (and GENCLF_UMAP is not 'cpu'), else 'umap-learn'."""
    if os.environ.get("GENCLF_UMAP", "").lower() in ("cpu", "umap-learn"):
        return "umap-learn"
    try:
        import cuml  # noqa: F401
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return "cuml"
    except Exception:  # not installed, no driver, no device: the CPU path always works
        pass
    return "umap-learn"


def knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of every row (itself first): (N, k) int64 indices and float32 distances.

    At these sizes (<= 10k points, <= 50 dims) an exact BLAS search takes well under a second, and it
    spares UMAP its NN-descent, whose numba JIT costs 30-50 s in every new process."""
    from sklearn.neighbors import NearestNeighbors

    d, i = NearestNeighbors(n_neighbors=k).fit(x).kneighbors(x)
    return i.astype(np.int64), d.astype(np.float32)


def umap_embed(x: np.ndarray, dim: int, n_epochs: int = N_EPOCHS, seed: int = 0) -> np.ndarray:
    """(N, D) prepared features -> (N, dim) UMAP, PCA-initialised (orientation follows the data), exact kNN graph."""
    import warnings

    import umap

    if len(x) < 5:
        raise GenclfError(f"{len(x)} points are too few for UMAP; pick a larger sample or use PCA")
    if x.shape[1] > PCA_BEFORE_UMAP:
        x = pca(x, PCA_BEFORE_UMAP)
    init = pca(x, dim)
    init = init / (np.abs(init).max() + 1e-9) * 10
    nn = min(15, len(x) - 1)
    if umap_backend() == "cuml":
        from cuml.manifold import UMAP

        # cuML takes no array init: start spectral, then rotate onto the PCA layout so orientation still follows the data
        red = UMAP(n_components=dim, n_neighbors=nn, min_dist=0.1, n_epochs=n_epochs, random_state=seed, output_type="numpy")
        y = np.asarray(red.fit_transform(np.ascontiguousarray(x, np.float32)), np.float32)
        logging.getLogger(__name__).info("UMAP of %d points on the GPU (cuML)", len(x))
        return procrustes(y, init)
    idx, dist = knn(x, nn)
    red = umap.UMAP(
        n_components=dim,
        n_neighbors=nn,
        min_dist=0.1,
        n_epochs=n_epochs,
        init=init,
        random_state=seed,
        n_jobs=1,
        precomputed_knn=(idx, dist, None),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs overridden by random_state; no search index kept for transform
        return red.fit_transform(x).astype(np.float32)


def embed(x: np.ndarray, method: str, dim: int, n_epochs: int = N_EPOCHS, standardize: bool = True) -> np.ndarray:
    if method not in METHODS:
        raise unknown("projection method", method, METHODS)
    if dim not in (2, 3):
        raise GenclfError(f"projections are 2D or 3D, got dim={dim}")
    x = prep(x, standardize)
    return pca(x, dim) if method == "pca" else umap_embed(x, dim, n_epochs)


def procrustes(moving: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Rotate/reflect, scale and shift `moving` (N, d) onto `ref` (N, d), the same points in the same order."""
    mu_m, mu_r = moving.mean(0), ref.mean(0)
    a, b = moving - mu_m, ref - mu_r
    u, s, vt = np.linalg.svd(a.T @ b)
    r = u @ vt
    scale = s.sum() / max(float((a**2).sum()), 1e-12)
    return (scale * a @ r + mu_r).astype(np.float32)
