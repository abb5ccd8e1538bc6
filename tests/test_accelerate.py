"""Several processes under `accelerate launch` (DDP over gloo on the CPU): the model one process trains on
the same global batch, a kill-and-resume that loses nothing, and the features one process extracts.

Each launch starts real processes (about 5-10 s each on 2 cores); models are dummy-scale, runs are 3-8 steps.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from genclf.backbones import distributed

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cmd(processes: int, args: list[str], mixed_precision: str = "no") -> list[str]:
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--dynamo_backend", "no"]
    cmd += ["--mixed_precision", mixed_precision, "--main_process_port", str(_port())]
    return cmd + ["--multi_gpu", "--num_processes", str(processes), "-m", "genclf", *args]


@pytest.fixture
def env(tmp_path):
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",  # CPU processes over gloo, also on a machine with GPUs
        "HF_HOME": str(tmp_path / "hf"),  # no `accelerate config` file of the user's changes the launch
        "GENCLF_CHECKPOINT_EVERY_S": "1e9",
        "PYTHONUNBUFFERED": "1",
    }


def _launch(processes: int, args: list[str], env: dict, mixed_precision: str = "no") -> subprocess.CompletedProcess:
    if processes == 1:  # what `accelerate launch --num_processes 1` runs, without the launcher's own start-up
        cmd, env = [sys.executable, "-m", "genclf", *args], {**env, "ACCELERATE_MIXED_PRECISION": mixed_precision}
    else:
        cmd = _cmd(processes, args, mixed_precision)
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r


def _train_args(backbone: str, out: Path, batch: int, steps: int, epochs: float = 1) -> list[str]:
    return ["train", "--dataset", "digits", "--backbone", backbone, "--preset", "tiny", "--epochs", str(epochs)] + [
        "--batch-size",
        str(batch),
        "--max-steps",
        str(steps),
        "--out",
        str(out),
    ]


def _params(out: Path) -> dict[str, torch.Tensor]:
    t = load_file(str(out / "checkpoint.safetensors"))
    return {k: v.double() for k, v in t.items() if k.startswith("model.") and v.is_floating_point()}


def _rel_distance(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    da = torch.cat([(a[k] - b[k]).reshape(-1) for k in sorted(a)])
    return float(da.norm() / torch.cat([a[k].reshape(-1) for k in sorted(a)]).norm())


def _rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]


def _mean_loss(rows: list[dict]) -> float:
    """The mean loss over every step (a row holds the mean since the row before; rows also come every few seconds)."""
    steps = [0] + [r["step"] for r in rows]
    return sum(r["loss"] * (b - a) for r, a, b in zip(rows, steps, steps[1:])) / steps[-1]


def _assert_one_process_equals_two(one: Path, two: Path, steps: int) -> None:
    """2 x 16 images per step equals 1 x 32: the same data, noise and mean gradient, up to rounding."""
    # one writer: one checkpoint, no temp files, no duplicated log rows
    assert sorted(p.name for p in two.iterdir() if "checkpoint" in p.name) == ["checkpoint.safetensors"]
    rows = _rows(two)
    assert [r["step"] for r in rows] == sorted({r["step"] for r in rows}) and rows[-1]["step"] == steps
    assert rows[-1]["images"] == steps * 32
    train = json.loads((two / "config.json").read_text())["train"]
    assert (train["processes"], train["global_batch"], train["batch_size"]) == (2, 32, 16)
    # every logged loss is the mean over both slices: it equals the one-process loss of the same batch
    assert _mean_loss(rows) == pytest.approx(_mean_loss(_rows(one)), rel=1e-5)
    # weights: equal up to rounding. Adam turns the rounding noise of gradients that are exactly zero in exact
    # arithmetic (a conv bias right before a one-channel GroupNorm) into lr-sized steps, so the measure is the
    # distance over all weights; a batch of 16 in one process (no averaging over the slices) lands 20-200x further
    assert _rel_distance(_params(one), _params(two)) < 1e-3


def test_two_processes_train_the_vae_one_process_trains(tmp_path, env):
    one, two = tmp_path / "one", tmp_path / "two"
    _launch(1, _train_args("vae", one, 32, 6), env)
    r = _launch(2, _train_args("vae", two, 16, 6), env)
    assert "global batch 32 (16 per process x 2 processes" in r.stdout
    _assert_one_process_equals_two(one, two, 6)


def test_two_processes_train_the_ddpm_one_process_trains_and_resume_after_a_kill(tmp_path, env):
    args = lambda out, batch: _train_args("ddpm", out, batch, 8, epochs=100)  # noqa: E731
    one, two = tmp_path / "one", tmp_path / "two"
    _launch(1, args(one, 32), env)
    _launch(2, args(two, 16), env)
    _assert_one_process_equals_two(one, two, 8)

    # The run to kill has steps to spare (8 steps take a fraction of a second on a quiet machine: a kill meant for
    # "mid-run" used to land after the end); it is resumed to k steps and compared with an uninterrupted k-step run.
    out, ref = tmp_path / "run", tmp_path / "ref"
    env = {**env, "GENCLF_CHECKPOINT_EVERY_S": "0"}  # a checkpoint after every step
    log = tmp_path / "killed.log"
    with log.open("w") as f:
        cmd = _cmd(2, _train_args("ddpm", out, 16, 100_000, epochs=100))
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and _ckpt_step(out) < 3 and p.poll() is None:
            time.sleep(0.05)
    finally:
        running = p.poll() is None
        _kill_launch(p)  # the launcher and both workers, mid-run
    killed_at = _ckpt_step(out)
    assert killed_at >= 3 and running, f"step {killed_at}, running {running}:\n{log.read_text()[-3000:]}"
    assert not (out / "samples.png").exists()
    k = killed_at + 3
    _launch(2, _train_args("ddpm", out, 16, k, epochs=100), env)  # the run resumes, in both processes, to k steps
    _launch(2, _train_args("ddpm", ref, 16, k, epochs=100), env)  # never killed
    assert json.loads((out / "config.json").read_text())["steps"] == k
    assert _rel_distance(_params(ref), _params(out)) < 1e-6  # as if never killed
    steps = [r["step"] for r in _rows(out)]
    assert steps == sorted(set(steps)) and steps[-1] == k


def _kill_launch(p: subprocess.Popen) -> None:
    """SIGKILL a launch and its workers. torch's launcher starts each worker in a session of its own, so killing
    the launcher's process group alone leaves the workers training on (and holding the run's lock)."""
    import psutil

    procs = [psutil.Process(p.pid), *psutil.Process(p.pid).children(recursive=True)]
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(procs, timeout=30)
    p.wait()


def _ckpt_step(out: Path) -> int:
    from genclf.backbones.checkpoint import read_checkpoint

    try:
        return int(read_checkpoint(out)[1]["step"])
    except Exception:  # not written yet (or being replaced): keep polling
        return 0


def test_two_process_extraction_writes_the_one_process_entry(use_tiny_runs, tmp_path, env, monkeypatch):
    from genclf import features
    from genclf.cache import Cache

    env = {**env, "GENCLF_RUNS_DIR": str(use_tiny_runs), "GENCLF_CACHE_DIR": str(tmp_path / "cache2")}
    args = ["features", "--dataset", "digits", "--backbone", "ddpm", "--t", "10", "--split", "test", "--limit", "75"]
    r = _launch(2, args, env, mixed_precision="bf16")
    assert r.stdout.count("features (75, ") == 1  # the main process reports, once
    two = Cache(tmp_path / "cache2").entries("features")
    assert len(two) == 1 and two[0].meta["processes"] == 2
    features._MEMO.clear()
    one = features.extract("digits", "ddpm", t=10, split="test", limit=75)  # one process, its own cache
    x2 = Cache(tmp_path / "cache2").read("features", two[0].key)["x"]  # the test split's chunk the two processes wrote
    from genclf import data

    chunk = list(features._chunk(data.load("digits"), "test", 0)[0])  # the chunk's rows, in the split's fixed order
    rows = [chunk.index(i) for i in one.idx]
    np.testing.assert_allclose(x2[rows], one.x, rtol=2e-2, atol=2e-2 * float(np.abs(one.x).max()))
    features._MEMO.clear()
    monkeypatch.setenv("GENCLF_CACHE_DIR", str(tmp_path / "cache2"))
    again = features.extract("digits", "ddpm", t=10, split="test", limit=75)  # one process, the two-process cache
    assert again.cached and len(Cache(tmp_path / "cache2").entries("features")) == 1  # same key: served, not redone


# ---- the pieces, in one process


def test_sharded_draws_equal_the_slices_of_the_global_draw():
    local, world = 3, 4
    ref = torch.Generator().manual_seed(7)
    noise, t = torch.randn((12, 2, 5), generator=ref), torch.randint(0, 1000, (12,), generator=ref)
    flip = torch.rand(12, generator=ref)
    for rank in range(world):
        g = torch.Generator().manual_seed(7)
        with distributed._Draws(g, rank, world, local):
            got = (
                torch.randn((local, 2, 5), generator=g),
                torch.randint(0, 1000, (local,), generator=g),
                torch.rand(local, generator=g),
            )
            other = torch.randn(5, generator=torch.Generator().manual_seed(1))  # another generator: untouched
        s = slice(rank * local, (rank + 1) * local)
        torch.testing.assert_close(got[0], noise[s])
        assert torch.equal(got[1], t[s]) and torch.equal(got[2], flip[s])
        assert torch.equal(other, torch.randn(5, generator=torch.Generator().manual_seed(1)))


def test_a_plain_process_is_not_distributed(monkeypatch):
    for k in ("ACCELERATE_MIXED_PRECISION", "WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    assert not distributed.launched() and distributed.get() is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.launched()
