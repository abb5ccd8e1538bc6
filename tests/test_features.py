"""features.extract: disk-cached (N, D) arrays, fixed subsets, fusion over timesteps."""

from __future__ import annotations

import numpy as np
import pytest

from genclf import features
from genclf.errors import GenclfError


@pytest.fixture(autouse=True)
def fresh_memo():
    features._MEMO.clear()
    features._BACKBONES.clear()
    yield


def test_extract_caches_on_disk(use_tiny_runs):
    a = features.extract("digits", "vae", split="val", limit=40)
    assert a.x.shape[0] == 40 and a.x.dtype == np.float32 and not a.cached
    assert np.bincount(a.y).min() >= 3  # a stratified subset
    features._MEMO.clear()  # force the disk path
    b = features.extract("digits", "vae", split="val", limit=40)
    assert b.cached and b.key == a.key
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.idx, b.idx)


def test_key_changes_with_t_blocks_and_split(use_tiny_runs):
    base = features.extract("digits", "ddpm", t=10, split="test", limit=20)
    assert features.extract("digits", "ddpm", t=11, split="test", limit=20).key != base.key
    assert features.extract("digits", "ddpm", t=10, split="val", limit=20).key != base.key
    other = features.extract("digits", "ddpm", t=10, blocks=["mid_block"], split="test", limit=20)
    assert other.key != base.key and other.x.shape[1] != base.x.shape[1]


def test_fusion_concatenates_single_t_features(use_tiny_runs):
    fused = features.extract("digits", "ddpm", t=[5, 50], split="test", limit=16)
    a = features.extract("digits", "ddpm", t=5, split="test", limit=16)
    b = features.extract("digits", "ddpm", t=50, split="test", limit=16)
    np.testing.assert_array_equal(fused.x, np.concatenate([a.x, b.x], 1))
    with pytest.raises(GenclfError, match="fusion over timesteps needs"):
        features.extract("digits", "vae", t=[5, 50], split="test", limit=16)


def test_pixels_need_no_weights():
    f = features.extract("digits", "pixels", split="test", limit=30)
    assert f.x.shape == (30, 64) and f.x.min() >= 0.0 and f.x.max() <= 1.0


def test_missing_trained_backbone_names_the_train_command(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCLF_RUNS_DIR", str(tmp_path / "empty"))
    with pytest.raises(GenclfError, match="genclf train --dataset digits --backbone gan"):
        features.extract("digits", "gan", split="test", limit=8)


WRITER = """
import json, os, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from genclf import features
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.01)
r = features.extract("digits", "ddpm", t=10, split="test", limit=60)
import hashlib
print(json.dumps({"cached": r.cached, "key": r.key, "sha": hashlib.sha256(r.x.tobytes()).hexdigest()}))
"""


def test_many_writer_processes_compute_one_entry(use_tiny_runs, tmp_path):
    """Three processes ask for the same features at once, on one cache: one computes, the others read its entry."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from genclf.cache import Cache

    root = Path(__file__).resolve().parents[1]
    go = tmp_path / "go"
    env = {
        **os.environ,
        "GENCLF_RUNS_DIR": str(use_tiny_runs),
        "GENCLF_CACHE_DIR": str(tmp_path / "shared"),
        "OMP_NUM_THREADS": "1",
    }
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(go)], cwd=root, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    go.touch()
    outs = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(not o["cached"] for o in outs) == 1  # computed once
    assert len({(o["key"], o["sha"]) for o in outs}) == 1  # everyone got the same array
    cache = Cache(tmp_path / "shared")
    assert len(cache.entries("features")) == 1 and cache.leftovers() == []
    assert not list((tmp_path / "shared").glob("features/*/.tmp-*"))
