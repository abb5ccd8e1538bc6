"""Cache-first: nested samples cached per chunk, `genclf prepare` (idempotent, shippable), background tasks."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from genclf import data, explore, features
from genclf.app import live, prepare, tasks, views
from genclf.cache import Cache
from genclf.cli import main

PCA_ONLY = (("pca", 2), ("pca", 3))  # UMAP's JIT is kept out of CI; the same code path computes both


@pytest.fixture
def tiny(use_tiny_runs, monkeypatch):
    monkeypatch.setenv("GENCLF_GRID", "0,50")
    monkeypatch.setattr(features, "CHUNK", 100)
    features._MEMO.clear()
    return use_tiny_runs


def _entries(kind: str) -> int:
    return len(Cache().entries(kind))


def test_samples_are_nested_stratified_prefixes():
    ds = data.load("digits")
    a, b = features.subset_indices(ds, "test", 120), features.subset_indices(ds, "test", 250)
    assert set(a) <= set(b) and np.all(np.diff(a) > 0)
    for n in (50, 120, 250):
        counts = np.bincount(ds.y_test[features.split_order(ds)[:n]], minlength=ds.n_classes)
        share = np.bincount(ds.y_test, minlength=ds.n_classes) / len(ds.y_test)
        assert np.abs(counts - share * n).max() <= 1.5, counts  # every prefix keeps the class proportions


def test_a_larger_sample_extracts_only_the_new_chunks(tiny):
    small = features.extract("digits", "ddpm", t=50, split="test", limit=200)
    assert _entries("features") == 2 and not small.cached  # two chunks of 100
    big = features.extract("digits", "ddpm", t=50, split="test", limit=300)
    assert _entries("features") == 3  # one new chunk, the first two reused
    pos = np.searchsorted(big.idx, small.idx)
    np.testing.assert_allclose(big.x[pos], small.x, rtol=1e-5, atol=1e-5)  # the same images, the same features
    assert features.is_cached("digits", "ddpm", 50, None, "test", 300)
    assert not features.is_cached("digits", "ddpm", 0, None, "test", 300)
    whole = features.extract("digits", "ddpm", t=50, split="test")  # Few-shot's whole test split reuses them too
    assert _entries("features") == features.n_chunks(data.load("digits"), 10**9) and len(whole.idx) == len(whole.x)
    np.testing.assert_allclose(whole.x[small.idx], small.x, rtol=1e-5, atol=1e-5)


def test_prepare_is_idempotent_and_its_shipped_layouts_match_a_recomputation(tiny, tmp_path, monkeypatch):
    opts = {"sizes": (200, 300), "layouts": PCA_ONLY}
    steps = prepare.plan("digits", ["ddpm", "pixels"], **opts)
    assert steps[0].name.startswith("ddpm t=50 · features")  # the default view first
    assert not any(s.done() for s in steps)
    seen = []
    out = prepare.prepare("digits", ["ddpm", "pixels"], lambda d, t, i: seen.append((d, t)), **opts)
    assert out["ran"] >= len(steps) and seen[-1][0] == pytest.approx(seen[-1][1])  # (+ views at the best t found)
    assert all(s.done() for s in prepare.plan("digits", ["ddpm", "pixels"], **opts))
    assert prepare.prepare("digits", ["ddpm", "pixels"], **opts)["ran"] == 0  # rerun: nothing is redone
    res = prepare.sweep_cached(prepare.sweep_params("digits", "ddpm"))
    assert res is not None and prepare.default_t("digits", "ddpm") == res["best_t"]
    # the Few-shot page's default run (test, its shots, validation images and shot sets) only reads now
    d = live.FEWSHOT_DEFAULTS
    key = live.fewshot_key("digits", "ddpm", d["head"], d["shots"], 0, res["best_t"], None, d["strategy"])
    other_seed = tuple((dict(key) | {"seed": 7}).items())
    assert live.fewshot_ready(key) and not live.fewshot_ready(other_seed)
    views._REMEMBERED.clear()
    n_features = _entries("features")
    live.few_shot(key)
    val = live.validate(key)
    assert _entries("features") == n_features  # nothing extracted
    # the validation figure does not depend on the test seed: another seed reuses it, no refit
    calls = []
    with monkeypatch.context() as m:
        m.setattr(live.experiments, "validate", lambda **kw: calls.append(kw))
        assert live.validate(other_seed) is val and not calls
    # ship the layouts of the 200-image sample, then serve them with an empty cache
    monkeypatch.setattr(explore.shipped, "PRETRAINED", tmp_path / "pretrained")
    folder = prepare.ship("digits", ["ddpm"], "genclf prepare --dataset digits --ship", n=200, layouts=PCA_ONLY)
    index = json.loads((folder / "index.json").read_text())
    assert len(index["layouts"]) == 2 * len(PCA_ONLY) and (folder / "command.txt").is_file()
    Cache().clear()
    explore.layouts._MEMO.clear()
    features._MEMO.clear()
    v = explore.View("digits", "ddpm", t=50, n=200, method="pca", dim=3)
    shipped = explore.layout(v)
    assert shipped is not None and not explore.features_ready(v)  # drawn with nothing computed
    explore.shipped._LOADED.clear()
    monkeypatch.setattr(explore.shipped, "PRETRAINED", tmp_path / "elsewhere")
    explore.layouts._MEMO.clear()
    assert explore.layout(v) is None
    np.testing.assert_allclose(explore.compute(v), shipped, rtol=1e-4, atol=1e-4)


def test_cli_prepare_plan_lists_steps(tiny, capsys):
    assert main(["prepare", "--dataset", "digits", "--backbones", "pixels", "--plan"]) == 0
    out = capsys.readouterr().out
    assert "todo  pixels · features of 360 test images" in out and "0/9 steps done" in out  # 1 + 4 layouts + 4
    assert main(["prepare", "--dataset", "digits", "--backbones", "nope"]) == 2


def test_sweep_task_runs_in_the_background_and_can_be_cancelled(tiny):
    spec = {**prepare.sweep_params("digits", "ddpm"), "shots": 2, "seeds": 1, "grid": [0, 100], "val_limit": 60}
    task = tasks.start("sweep", spec)
    assert tasks.start("sweep", spec).id == task.id  # a second session joins the running task
    deadline = time.time() + 240
    while tasks.get(task.id).state == "running" and time.time() < deadline:
        time.sleep(0.5)
    done = tasks.get(task.id)
    assert done.state == "done", (done.message, tasks._tail(done.log))
    assert done.done == done.total == 2 and prepare.sweep_cached(spec)["best_t"] in (0, 100)
    long = tasks.start("sweep", {**spec, "grid": list(range(0, 1000, 10)), "seeds": 5})
    while tasks.get(long.id).total == 0 and time.time() < deadline:
        time.sleep(0.2)
    got = tasks.cancel(long.id)
    assert got.state == "cancelled" and not tasks._alive(long.pid) and tasks.running() == []


@pytest.mark.skipif(not (explore.shipped.folder("fashion-mnist") / "index.json").is_file(), reason="no shipped layouts")
@pytest.mark.skipif(not data.REGISTRY["fashion-mnist"].present(), reason="needs Fashion-MNIST")
def test_the_shipped_default_view_matches_todays_keys():
    """A retrained ddpm, a changed sample or projection code would make the shipped layouts unreachable: catch it."""
    t0 = prepare.default_t("fashion-mnist", "ddpm")
    v = explore.View("fashion-mnist", "ddpm", t0, None, prepare.DEFAULT_N, method="umap", dim=2)
    assert t0 in explore.T_GRID
    for t in explore.T_GRID:
        xy = explore.shipped.lookup("fashion-mnist", explore.key(v.at(t)))
        assert xy is not None and xy.shape == (prepare.DEFAULT_N, 2), t


def test_fewshot_scores_on_the_prepared_part_while_the_rest_is_extracted(tiny, monkeypatch):
    from genclf import experiments

    monkeypatch.setattr(views, "N_RANGE", (100, 10000))
    assert live.fewshot_test_limit("digits", "ddpm", 7, None) is None  # nothing prepared: the run extracts it all
    features.extract("digits", "ddpm", t=7, split="test", limit=200)  # Explore's sample at t=7
    assert live.fewshot_test_limit("digits", "ddpm", 7, None) == 200
    r = experiments.few_shot("digits", "ddpm", "logreg", 2, 0, t=7, test_limit=200)
    assert len(r["test_idx"]) == 200 and set(r["test_idx"]) == set(features.subset_indices(data.load("digits"), "test", 200))
    task = live.prepare_test_split("digits", "ddpm", 7, None)  # the rest, in a background process
    deadline = time.time() + 240
    while tasks.get(task.id).state == "running" and time.time() < deadline:
        time.sleep(0.5)
    assert tasks.get(task.id).state == "done", tasks._tail(task.log)
    features._MEMO.clear()
    monkeypatch.setattr(features, "CHUNK", 500)  # what the task process used
    assert live.fewshot_test_limit("digits", "ddpm", 7, None) is None  # now the whole split is on disk
