"""Projections: pure maths, the disk cache, alignment across t, and the background service (PCA; UMAP is opt-in)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from genclf import explore, features
from genclf.errors import GenclfError
from genclf.explore import precompute as service_mod


@pytest.fixture
def pca_env(use_tiny_runs, monkeypatch):
    monkeypatch.setenv("GENCLF_PROJECTION", "pca")
    monkeypatch.setenv("GENCLF_NO_WARMUP", "1")
    monkeypatch.setenv("GENCLF_GRID", "0,50,500")
    features._MEMO.clear()  # (in-memory features outlive a test's cache dir)
    explore.layouts._MEMO.clear()
    return use_tiny_runs


def test_procrustes_undoes_rotation_reflection_scale_and_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 2)).astype(np.float32)
    th = 1.1
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]) @ np.diag([1, -1])  # rotation + flip
    b = 3.0 * a @ rot + np.array([5.0, -2.0])
    assert np.allclose(explore.procrustes(b, a), a, atol=1e-4)
    a3 = rng.normal(size=(100, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    assert np.allclose(explore.procrustes(a3 @ q * 0.5, a3), a3, atol=1e-4)


def test_pca_is_deterministic_with_fixed_signs():
    x = np.random.default_rng(1).normal(size=(300, 20)).astype(np.float32)
    y1, y2 = explore.pca(explore.prep(x), 2), explore.pca(explore.prep(-x), 2)
    assert y1.shape == (300, 2) and y1.dtype == np.float32
    assert np.allclose(y1, y2, atol=1e-4)  # sign convention: flipping the data does not flip the layout
    assert explore.embed(x, "pca", 3).shape == (300, 3)


def test_embed_refuses_bad_input():
    x = np.zeros((10, 4), np.float32)
    with pytest.raises(GenclfError, match="valid projection methods"):
        explore.embed(x, "tsne", 2)
    with pytest.raises(GenclfError, match="2D or 3D"):
        explore.embed(x, "pca", 4)


def test_view_checks_t_against_the_backbone(pca_env):
    with pytest.raises(GenclfError, match="outside"):
        explore.compute(explore.View("digits", "ddpm", t=1500, method="pca"))
    with pytest.raises(GenclfError, match="no timestep"):
        explore.compute(explore.View("digits", "vae", t=10, method="pca"))


def test_compute_caches_on_disk_and_layout_never_computes(pca_env):
    v = explore.View("digits", "ddpm", t=50, n=200, method="pca")
    assert explore.layout(v) is None
    xy = explore.compute(v)
    assert xy.shape == (200, 2) and np.isfinite(xy).all()
    explore.layouts._MEMO.clear()
    assert np.array_equal(explore.layout(v), xy)  # served from disk
    assert len(explore.sample(v)) == 200
    other = explore.compute(v.at(500))
    assert not np.allclose(other, xy)  # features change with t, so does the layout


def test_same_points_for_every_t_backbone_and_method(pca_env):
    a = explore.sample(explore.View("digits", "ddpm", t=0, n=300))
    b = explore.sample(explore.View("digits", "vae", n=300, method="pca", dim=3))
    assert np.array_equal(a, b)


def test_grid_layouts_are_chain_aligned(pca_env):
    v = explore.View("digits", "ddpm", n=300, method="pca")
    for t in explore.grid(True):
        explore.compute(v.at(t))
    assert explore.ready_grid(v) == [0, 50, 500]
    a0, a50 = explore.aligned_layout(v.at(0)), explore.aligned_layout(v.at(50))
    assert np.array_equal(a0, explore.layout(v.at(0)))  # the anchor is left as is
    assert np.allclose(a50, explore.procrustes(explore.layout(v.at(50)), a0))
    # an off-grid t is aligned to its nearest ready grid layout
    off = explore.compute(v.at(60))
    assert np.allclose(explore.align(v.at(60), off), explore.procrustes(off, a50))
    # aligning never makes a layout further from its neighbour than it was
    raw = explore.layout(v.at(50))
    assert np.linalg.norm(a50 - a0) <= np.linalg.norm(raw - a0) + 1e-3


def test_service_inline_and_thread(pca_env):
    v = explore.View("digits", "ddpm", n=150, method="pca")
    inline = explore.Service("inline")
    assert inline.submit(v.at(10)) == "done"
    assert explore.layout(v.at(10)) is not None
    assert inline.ensure_grid(v) == (0, 3)  # queued (and, inline, computed) the whole grid
    assert inline.ensure_grid(v) == (3, 3)
    threaded = explore.Service("thread")
    assert threaded.submit(v.at(20), priority=0) == "queued"
    deadline = time.time() + 60
    while threaded.state(v.at(20)) != "done" and time.time() < deadline:
        time.sleep(0.05)
    assert threaded.state(v.at(20)) == "done" and threaded.pending() == 0
    bad = threaded.submit(v.at(2000))
    deadline = time.time() + 30
    while not (threaded.state(v.at(2000)) or "").startswith("error") and time.time() < deadline:
        time.sleep(0.05)
    assert "outside" in threaded.state(v.at(2000)) and bad == "queued"


def test_service_runs_the_users_view_before_the_grid(pca_env, monkeypatch):
    order = []
    monkeypatch.setattr(service_mod, "_job", lambda view, progress=None: order.append(view["t"]))
    svc = explore.Service("thread")
    gate = threading.Event()
    real = svc._do
    monkeypatch.setattr(svc, "_do", lambda v: (gate.wait(10), real(v)))
    v = explore.View("digits", "ddpm", n=100, method="pca")
    svc.ensure_grid(v)  # 0, 50, 500 queued; the worker takes 0 and blocks on the gate
    deadline = time.time() + 10
    while svc.state(v.at(0)) != "running" and time.time() < deadline:
        time.sleep(0.01)
    svc.submit(v.at(500), priority=0)  # the user scrubs to a t the grid has queued: it goes first
    svc.submit(v.at(7), priority=0)  # ... then further: the newest request goes first
    gate.set()
    deadline = time.time() + 30
    while svc.pending() and time.time() < deadline:
        time.sleep(0.05)
    assert order == [0, 7, 500, 50]


def test_a_new_t_shows_the_nearest_ready_layout_at_once(pca_env, monkeypatch):
    from genclf.app import views

    v = explore.View("digits", "ddpm", n=120, method="pca")
    for t in (0, 50):
        explore.compute(v.at(t))
    monkeypatch.setenv("GENCLF_PRECOMPUTE", "thread")
    svc = explore.Service("thread")
    monkeypatch.setattr(service_mod, "_SERVICE", svc)
    gate = threading.Event()
    real = svc._do
    monkeypatch.setattr(svc, "_do", lambda view: (gate.wait(30), real(view)))
    shown = views.explore_layout(v.at(60), owner="s1")
    assert (shown.status, shown.t) == ("nearest", 50)  # no waiting on feature extraction
    assert np.allclose(shown.xy, explore.aligned_layout(v.at(50)))
    assert views.progress_of(v.at(60)) == "pending"
    views.explore_layout(v.at(70), owner="s1")  # the scrub moved on: t=60 is no longer wanted
    assert svc.state(v.at(60)) in (None, "running")
    gate.set()
    deadline = time.time() + 60
    while views.progress_of(v.at(70)) != "ready" and time.time() < deadline:
        time.sleep(0.05)
    assert views.explore_layout(v.at(70)).status == "ready"


def test_pca_with_cached_features_never_waits_behind_the_worker(pca_env, monkeypatch):
    from genclf.app import views

    v = explore.View("digits", "ddpm", n=120, method="umap")
    explore.feats(v.at(60))  # features on disk, no layout
    monkeypatch.setenv("GENCLF_PRECOMPUTE", "thread")
    svc = explore.Service("thread")
    monkeypatch.setattr(service_mod, "_SERVICE", svc)
    gate = threading.Event()
    monkeypatch.setattr(svc, "_do", lambda view: gate.wait(30))  # the worker is stuck on something long
    svc.submit(v.at(0), priority=1)
    shown = views.explore_layout(v.at(60), owner="s1")
    assert (shown.status, shown.method, shown.t) == ("preview", "pca", 60)  # PCA now, UMAP queued
    assert views.explore_layout(replace(v.at(60), method="pca")).status == "ready"
    assert svc.state(v.at(60)) == "queued"
    gate.set()


def test_nothing_ready_is_pending_never_computed_in_the_page(pca_env, monkeypatch):
    from genclf.app import views

    monkeypatch.setenv("GENCLF_PRECOMPUTE", "thread")
    svc = explore.Service("thread")
    monkeypatch.setattr(service_mod, "_SERVICE", svc)
    gate = threading.Event()
    monkeypatch.setattr(svc, "_do", lambda view: gate.wait(30))
    v = explore.View("digits", "vae", n=120, method="pca")
    shown = views.explore_layout(v, owner="s1")
    assert shown.status == "pending" and shown.xy.shape == (0, 2) and not explore.features_ready(v)
    assert svc.state(v) == "queued" or svc.state(v) == "running"
    gate.set()


def test_process_worker_computes_and_reports_progress(pca_env, monkeypatch):
    v = explore.View("digits", "ddpm", t=20, n=150, method="pca")
    svc = explore.Service("process")
    seen = []
    call = explore.Worker.call
    monkeypatch.setattr(explore.Worker, "call", lambda self, msg, cb=None: call(self, msg, lambda d, t: seen.append((d, t))))
    try:
        assert svc.submit(v) == "queued"
        deadline = time.time() + 180
        while svc.state(v) not in ("done",) and not (svc.state(v) or "").startswith("error") and time.time() < deadline:
            time.sleep(0.1)
        assert svc.state(v) == "done" and explore.layout(v) is not None
        assert seen and seen[-1][0] == seen[-1][1]  # the worker's extraction progress reached the service
    finally:
        if svc._pool is not None:
            svc._pool.close()


def test_warm_up_is_off_in_tests(monkeypatch):
    monkeypatch.setenv("GENCLF_NO_WARMUP", "1")
    assert explore.warm_up() is False
    with pytest.raises(GenclfError):
        explore.Service("sometimes")


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("GENCLF_SLOW") != "1", reason="UMAP's numba JIT costs 20-60 s; set GENCLF_SLOW=1")
def test_umap_layout_is_seeded_and_initialised_from_pca():
    x = np.random.default_rng(0).normal(size=(400, 30)).astype(np.float32)
    x[:200] += 4
    a, b = explore.embed(x, "umap", 2, n_epochs=50), explore.embed(x, "umap", 2, n_epochs=50)
    assert np.allclose(a, b)
    assert abs(a[:200, 0].mean() - a[200:, 0].mean()) > 1  # the two blobs stay apart along PCA's first axis
