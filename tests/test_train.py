"""The trainer: logs, outputs, and a kill-then-resume cycle that continues from the checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from genclf.backbones import get, load_backbone
from genclf.backbones.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]


class Stop(Exception):
    pass


def _stop_at(n):
    def cb(done, total, info):
        if done == n:
            raise Stop

    return cb


@pytest.mark.parametrize("name", ["ddpm", "vae", "vqvae", "gan"])
def test_interrupted_run_resumes_to_the_same_weights(name, tiny_images, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=16, seed=1, checkpoint_every_s=0, log_every=1, hflip=True)
    shape = tiny_images.shape[1:]
    ref = train(get(name).from_preset("tiny", shape), tiny_images, cfg, out_dir=tmp_path / "ref")

    out = tmp_path / "run"
    with pytest.raises(Stop):  # dies right after step 4 was checkpointed
        train(get(name).from_preset("tiny", shape), tiny_images, cfg, out_dir=out, progress=_stop_at(5))
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 4
    resumed = train(get(name).from_preset("tiny", shape), tiny_images, cfg, out_dir=out)
    assert resumed.meta["steps"] == 6
    a, b = ref.state_tensors(), resumed.state_tensors()
    for k in a:
        np.testing.assert_allclose(a[k].float().numpy(), b[k].float().numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    steps = [json.loads(r)["step"] for r in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 6  # no duplicated rows after the resume


def test_cli_train_writes_outputs_and_resumes_after_sigkill(tmp_path):
    out = tmp_path / "vae"
    cmd = [
        sys.executable,
        "-m",
        "genclf",
        "train",
        "--dataset",
        "digits",
        "--backbone",
        "vae",
        "--preset",
        "tiny",
        "--epochs",
        "20",
        "--batch-size",
        "64",
        "--out",
        str(out),
    ]
    env = {**os.environ, "GENCLF_CHECKPOINT_EVERY_S": "0.2", "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "checkpoint.json").is_file():
        time.sleep(0.2)
    time.sleep(0.3)
    p.send_signal(signal.SIGKILL)
    p.wait()
    step = json.loads((out / "checkpoint.json").read_text())["step"]
    assert step > 0
    assert not (out / "samples.png").exists()  # it really died before finishing
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)  # the same command resumes
    assert done.returncode == 0, done.stderr
    for f in ("config.json", "model.safetensors", "train_log.jsonl", "command.txt", "samples.png"):
        assert (out / f).is_file(), f
    assert (out / "command.txt").read_text().startswith("genclf train --dataset digits")
    rows = [json.loads(r) for r in (out / "train_log.jsonl").read_text().splitlines()]
    assert rows[0]["step"] < step <= rows[-1]["step"]
    assert {"step", "epoch", "images", "seconds", "loss"} <= set(rows[-1])
    assert load_file(str(out / "model.safetensors"))
    assert load_backbone(out).meta["status"] == "done"


def test_train_refuses_too_few_images(tiny_images):
    from genclf.errors import GenclfError

    with pytest.raises(GenclfError, match="fewer than one batch"):
        train(get("vae").from_preset("tiny", (1, 8, 8)), tiny_images[:4], TrainConfig(batch_size=16))
