"""Shared fixtures: tiny data, an isolated cache and runs dir, tiny trained backbones on `digits`.

Nothing here downloads anything; the tiny backbones train for a few optimizer steps.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GENCLF_SLOW", "0")
os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/genclf-numba-cache")

TINY_BACKBONES = ("ddpm", "vae", "vqvae", "gan")

# tiny models gain nothing from threads, and oversubscribed OpenMP threads stall badly on 2 cores
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every test gets its own cache and runs dir unless it asks for the session ones."""
    monkeypatch.setenv("GENCLF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GENCLF_RUNS_DIR", os.environ.get("GENCLF_TEST_RUNS_DIR", str(tmp_path / "runs")))
    yield


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty $GENCLF_DATA_DIR, and no dataset left in memory from another test."""
    from genclf import data

    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("GENCLF_DATA_DIR", str(d))
    data.registry._load_cached.cache_clear()
    yield d
    data.registry._load_cached.cache_clear()


@pytest.fixture
def tiny_images() -> np.ndarray:
    """48 uint8 images (48, 1, 8, 8): three simple shapes with noise, 16 each."""
    rng = np.random.default_rng(0)
    x = np.zeros((48, 1, 8, 8), np.uint8)
    for i in range(48):
        c = i % 3
        if c == 0:
            x[i, 0, 2:6, 2:6] = 220
        elif c == 1:
            x[i, 0, :, 3:5] = 220
        else:
            x[i, 0, 3:5, :] = 220
    noise = rng.integers(0, 30, x.shape, dtype=np.uint8)
    return np.clip(x.astype(int) + noise, 0, 255).astype(np.uint8)


@pytest.fixture
def tiny_labels() -> np.ndarray:
    return np.arange(48) % 3


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> Path:
    """Tiny ddpm/vae/vqvae/gan trained for 3 steps on `digits`, saved as runs/digits/<name>/."""
    from genclf import data
    from genclf.backbones import get

    root = tmp_path_factory.mktemp("runs")
    ds = data.load("digits")
    for name in TINY_BACKBONES:
        bb = get(name).from_preset("tiny", ds.shape)
        bb.fit(ds.x_train[:256], seed=0, batch_size=32, max_steps=3)
        bb.meta = {"dataset": "digits", "data_fingerprint": ds.fingerprint, "preset": "tiny"}
        bb.save(root / "digits" / name)
    return root


@pytest.fixture
def use_tiny_runs(tiny_runs, monkeypatch) -> Path:
    monkeypatch.setenv("GENCLF_RUNS_DIR", str(tiny_runs))
    return tiny_runs
