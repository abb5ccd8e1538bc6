"""Explore: 2D/3D projections of cached features, aligned across t, and the background service that precomputes them.

    from genclf import explore
    v = explore.View("fashion-mnist", "ddpm", t=50, n=5000)
    xy = explore.layout(v)            # (N, dim) float32 from the disk cache, or None
    xy = explore.compute(v)           # features -> projection, cached (kind "projection")
    explore.service().request(v)      # queue it for the shared background worker

Submodules, lowest first: `projection` (pure maths: PCA, UMAP, Procrustes), `shipped` (layouts that
ship with the package), `layouts` (views, cache keys, alignment along t), `precompute` (the on-demand
priority queue and its worker process).
May import data, backbones, cache and features; never experiments, app or cli.
"""

from genclf.explore import shipped
from genclf.explore.layouts import (
    T_GRID,
    View,
    align,
    aligned_layout,
    check,
    compute,
    default_method,
    feats,
    features_ready,
    grid,
    key,
    layout,
    parts,
    preview,
    ready_grid,
    sample,
)
from genclf.explore.precompute import Service, Worker, child_env, service, warm_up
from genclf.explore.projection import METHODS, N_EPOCHS, PCA_BEFORE_UMAP, embed, knn, pca, prep, procrustes, umap_embed

__all__ = [
    "METHODS", "N_EPOCHS", "PCA_BEFORE_UMAP", "T_GRID", "Service", "View", "Worker", "align", "aligned_layout", "check",
    "child_env", "compute", "default_method", "embed", "feats", "features_ready", "grid", "key", "knn", "layout", "parts",
    "pca", "prep", "preview", "procrustes", "ready_grid", "sample", "service", "shipped", "umap_embed", "warm_up",
]  # fmt: skip
