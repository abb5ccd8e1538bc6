"""The trainer: logs, outputs, and a kill-then-resume cycle that continues from the checkpoint."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from genclf.backbones import get, load_backbone
from genclf.backbones.checkpoint import read_checkpoint
from genclf.backbones.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]


class Stop(Exception):
    pass


def _stop_at(n):
    def cb(done, total, info):
        if done == n:
            raise Stop

    return cb


def _recording_optimizers(bb, made: list):
    """`bb`, with every optimizer dict it makes appended to `made` (after the checkpoint loads into it)."""
    make = bb.make_optimizers
    bb.make_optimizers = lambda lr: made.append(opts := make(lr)) or opts
    return bb


def test_an_explicit_lr_on_a_resumed_run_applies_from_the_checkpoint_on(tiny_images, tmp_path):
    shape = tiny_images.shape[1:]
    cfg = TrainConfig(epochs=1, batch_size=16, seed=1, checkpoint_every_s=0, log_every=1)
    train(get("vae").from_preset("tiny", shape), tiny_images, cfg, out_dir=tmp_path)
    lrs = []
    bb = _recording_optimizers(get("vae").from_preset("tiny", shape), lrs)
    longer = TrainConfig(epochs=2, batch_size=16, seed=1, checkpoint_every_s=0, log_every=1)
    train(bb, tiny_images, longer, out_dir=tmp_path)  # no --lr: the checkpoint's own rate goes on
    assert lrs[-1]["net"].param_groups[0]["lr"] == bb.config.lr
    bb = _recording_optimizers(get("vae").from_preset("tiny", shape), lrs)
    train(bb, tiny_images, TrainConfig(**{**longer.__dict__, "epochs": 3, "lr": 1e-5}), out_dir=tmp_path)
    assert lrs[-1]["net"].param_groups[0]["lr"] == 1e-5


def test_max_minutes_stops_with_a_usable_model_and_the_same_command_goes_on(tiny_images, tmp_path):
    cfg = TrainConfig(epochs=4, batch_size=16, seed=1, checkpoint_every_s=1e9, log_every=2)
    shape = tiny_images.shape[1:]
    ref = train(get("ddpm").from_preset("tiny", shape), tiny_images, cfg, out_dir=tmp_path / "ref")
    out = tmp_path / "run"
    leased = TrainConfig(**{**cfg.__dict__, "max_minutes": 1e-9})  # spent at the first time check, step 2 of 12
    first = train(get("ddpm").from_preset("tiny", shape), tiny_images, leased, out_dir=out)
    assert first.meta["steps"] == 2 and read_checkpoint(out)[1]["step"] == 2
    assert first.meta["stopped_at_time_limit"].startswith("1e-09 min, epoch 0.67 of 4")
    assert load_backbone(out).meta["steps"] == 2  # the saved model is the checkpoint's, and loads
    rest = train(get("ddpm").from_preset("tiny", shape), tiny_images, cfg, out_dir=out)
    assert rest.meta["steps"] == 12 and "stopped_at_time_limit" not in rest.meta
    a, b = ref.state_tensors(), rest.state_tensors()
    for k in a:
        np.testing.assert_allclose(a[k].float().numpy(), b[k].float().numpy(), rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("name", ["ddpm", "vae", "vqvae", "gan"])
def test_interrupted_run_resumes_to_the_same_weights(name, tiny_images, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=16, seed=1, checkpoint_every_s=0, log_every=1, hflip=True)
    shape = tiny_images.shape[1:]
    ref = train(get(name).from_preset("tiny", shape), tiny_images, cfg, out_dir=tmp_path / "ref")

    out = tmp_path / "run"
    with pytest.raises(Stop):  # dies right after step 4 was checkpointed
        train(get(name).from_preset("tiny", shape), tiny_images, cfg, out_dir=out, progress=_stop_at(5))
    assert read_checkpoint(out)[1]["step"] == 4
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
    while time.time() < deadline and not (out / "checkpoint.safetensors").is_file():
        time.sleep(0.2)
    time.sleep(0.3)
    p.send_signal(signal.SIGKILL)
    p.wait()
    step = read_checkpoint(out)[1]["step"]
    assert step > 0
    assert not (out / "samples.png").exists()  # it really died before finishing
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)  # the same command resumes
    assert done.returncode == 0, done.stderr
    for f in ("config.json", "model.safetensors", "train_log.jsonl", "command.txt", "samples.png"):
        assert (out / f).is_file(), f
    assert (out / "command.txt").read_text().startswith("genclf train --dataset digits")
    rows = [json.loads(r) for r in (out / "train_log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)) and step < steps[-1]  # rows past the checkpoint were redone, not doubled
    assert {"step", "epoch", "images", "seconds", "loss"} <= set(rows[-1])
    assert load_file(str(out / "model.safetensors"))
    assert load_backbone(out).meta["status"] == "done"


def test_train_refuses_too_few_images(tiny_images):
    from genclf.errors import GenclfError

    with pytest.raises(GenclfError, match="fewer than one batch"):
        train(get("vae").from_preset("tiny", (1, 8, 8)), tiny_images[:4], TrainConfig(batch_size=16))


# ---- one process stays exactly as it was


def _reference_train(bb, images, cfg):
    """The loop of commit 1214db9 (before multi-process training), without its files: what a plain run must still do."""
    from genclf.backbones.ops import autocast, device, to_unit

    n = len(images)
    steps_per_epoch = n // cfg.batch_size
    total = min(math.ceil(cfg.epochs * steps_per_epoch), cfg.max_steps or 10**9)
    dev = device()
    for m in bb.modules().values():
        m.to(dev)
    opts = bb.make_optimizers(cfg.lr)
    perm_epoch, perm = -1, None
    for m in bb.modules().values():
        m.train()
    for step in range(total):
        epoch = step // steps_per_epoch
        if epoch != perm_epoch:
            perm = np.random.default_rng([cfg.seed, epoch]).permutation(n)
            perm_epoch = epoch
        i = step % steps_per_epoch
        idx = np.sort(perm[i * cfg.batch_size : (i + 1) * cfg.batch_size])
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        x = bb.augment(to_unit(images[idx]), gen, cfg.hflip).to(dev)
        with autocast():
            bb.train_step(x, opts, gen, step)
    return bb


@pytest.mark.parametrize("name", ["ddpm", "vae", "vqvae", "gan"])
def test_one_process_trains_bit_for_bit_as_before(name, tiny_images, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=16, seed=3, checkpoint_every_s=0, log_every=1, hflip=True)
    ref = _reference_train(get(name).from_preset("tiny", (1, 8, 8)), tiny_images, cfg)
    new = train(get(name).from_preset("tiny", (1, 8, 8)), tiny_images, cfg, out_dir=tmp_path / "run")
    a, b = ref.state_tensors(export=False), new.state_tensors(export=False)
    assert all(torch.equal(a[k], b[k]) for k in a)


def _probe() -> str:
    """A fingerprint of this machine's bf16 conv/GroupNorm/linear kernels (other CPUs round differently)."""
    import torch.nn.functional as F

    from genclf.backbones.ops import autocast

    with torch.random.fork_rng():
        torch.manual_seed(0)
        conv, gn, lin = torch.nn.Conv2d(3, 8, 3), torch.nn.GroupNorm(4, 8), torch.nn.Linear(8 * 6 * 6, 5)
        x = torch.randn(4, 3, 8, 8)
    with autocast():
        y = lin(F.silu(gn(conv(x))).flatten(1))
    y.float().sum().backward()
    h = hashlib.sha256(y.detach().float().numpy().tobytes())
    h.update(conv.weight.grad.numpy().tobytes())
    return h.hexdigest()[:16]


def _tensor_hash(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(tensors):
        v = tensors[k].contiguous()
        h.update(k.encode())
        h.update(v.reshape(-1).view(torch.uint8).numpy().tobytes() if v.numel() else b"")
    return h.hexdigest()[:16]


# `genclf train --dataset digits --backbone NAME --preset tiny --epochs 1 --max-steps 7 --batch-size 32` run by the
# code at commit 1214db9 on the build machine (2-core AMD EPYC, one thread): sha256 of model.safetensors' tensors
# and of the checkpoint's model.* tensors
BRANCH_POINT = {
    "probe": "f7847450401df86a",
    "ddpm": ("fdca15a070d093cd", "b74734427ab27d2d"),
    "vae": ("ff9b4eeb4b375619", "61b8cab962a9fa22"),
    "vqvae": ("6526227c4df264c6", "299a577260153eaa"),
    "gan": ("7a1694d2659730a4", "19c285e4fd07152c"),
}


@pytest.mark.parametrize("name", ["ddpm", "vae", "vqvae", "gan"])
def test_the_same_command_writes_the_weights_it_wrote_before(name, tmp_path):
    if _probe() != BRANCH_POINT["probe"]:
        pytest.skip("this CPU rounds bf16 differently from the machine that recorded the hashes")
    from genclf.cli import main

    out = tmp_path / name
    args = ["train", "--dataset", "digits", "--backbone", name, "--preset", "tiny", "--epochs", "1", "--max-steps", "7"]
    assert main([*args, "--batch-size", "32", "--out", str(out)]) == 0
    ckpt = {k: v for k, v in read_checkpoint(out)[0].items() if k.startswith("model.")}
    assert (_tensor_hash(load_file_pt(out / "model.safetensors")), _tensor_hash(ckpt)) == BRANCH_POINT[name]


def load_file_pt(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file as load

    return load(str(path))


# ---- the checkpoint is one atomic unit (issue 12, item 2)


def test_checkpoint_is_one_file_with_its_step_inside(tiny_images, tmp_path):
    cfg = TrainConfig(epochs=1, batch_size=16, checkpoint_every_s=0)
    train(get("vae").from_preset("tiny", (1, 8, 8)), tiny_images, cfg, out_dir=tmp_path)
    assert not (tmp_path / "checkpoint.json").exists()
    tensors, state, optim = read_checkpoint(tmp_path)
    assert (state["step"], state["images_seen"], state["global_batch"]) == (3, 48, 16)
    assert optim is not None and any(k.startswith("optim.net.") for k in tensors)


def test_a_stale_json_from_the_old_format_cannot_rewind_the_step(tiny_images, tmp_path):
    """On main a kill between the two files resumed at the older step with the newer weights."""
    cfg = TrainConfig(epochs=2, batch_size=16, seed=1, checkpoint_every_s=0)
    ref = train(get("vae").from_preset("tiny", (1, 8, 8)), tiny_images, cfg, out_dir=tmp_path / "ref")
    out = tmp_path / "run"
    with pytest.raises(Stop):
        train(get("vae").from_preset("tiny", (1, 8, 8)), tiny_images, cfg, out_dir=out, progress=_stop_at(5))
    (out / "checkpoint.json").write_text(json.dumps({"step": 2, "images_seen": 32, "seconds": 1.0, "optim": {}}))
    resumed = train(get("vae").from_preset("tiny", (1, 8, 8)), tiny_images, cfg, out_dir=out)
    assert resumed.meta["steps"] == 6 and not (out / "checkpoint.json").exists()
    a, b = ref.state_tensors(), resumed.state_tensors()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_damaged_checkpoint_is_refused_not_loaded(tiny_images, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    from genclf.errors import GenclfError

    cfg = TrainConfig(epochs=1, batch_size=16, max_steps=2, checkpoint_every_s=0)
    train(get("vae").from_preset("tiny", (1, 8, 8)), tiny_images, cfg, out_dir=tmp_path)
    with safe_open(str(tmp_path / "checkpoint.safetensors"), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    k = next(k for k in tensors if k.startswith("model."))
    tensors[k] = tensors[k] + 1  # weights from another moment than the step in the metadata
    save_file(tensors, str(tmp_path / "checkpoint.safetensors"), metadata=meta)
    with pytest.raises(GenclfError, match="damaged.*digest.*delete checkpoint.safetensors"):
        train(get("vae").from_preset("tiny", (1, 8, 8)), tiny_images, TrainConfig(epochs=2, batch_size=16), out_dir=tmp_path)
    (tmp_path / "checkpoint.safetensors").write_bytes(b"\0" * 100)  # truncated / garbage
    with pytest.raises(GenclfError, match="damaged"):
        train(get("vae").from_preset("tiny", (1, 8, 8)), tiny_images, TrainConfig(epochs=2, batch_size=16), out_dir=tmp_path)


def test_the_old_two_file_checkpoint_still_resumes(tiny_images, tmp_path):
    """The format of earlier versions (weights file + checkpoint.json) loads once, then is replaced."""
    from safetensors.torch import save_file

    from genclf.backbones.checkpoint import _flatten_optim

    cfg = TrainConfig(epochs=2, batch_size=16, seed=2, checkpoint_every_s=0)
    ref = train(get("ddpm").from_preset("tiny", (1, 8, 8)), tiny_images, cfg, out_dir=tmp_path / "ref")
    out = tmp_path / "old"  # the state after 3 steps, written as the old code wrote it
    out.mkdir()
    bb = get("ddpm").from_preset("tiny", (1, 8, 8))
    opts = bb.make_optimizers(None)
    train_steps_into(bb, opts, tiny_images, cfg, 3)
    tensors = {f"model.{k}": v for k, v in bb.state_tensors(export=False).items()}
    otensors, ometa = _flatten_optim(opts)
    save_file({**tensors, **otensors}, str(out / "checkpoint.safetensors"))
    (out / "checkpoint.json").write_text(json.dumps({"step": 3, "images_seen": 48, "seconds": 1.0, "optim": ometa}))
    resumed = train(get("ddpm").from_preset("tiny", (1, 8, 8)), tiny_images, cfg, out_dir=out)
    assert resumed.meta["steps"] == 6 and not (out / "checkpoint.json").exists()
    assert read_checkpoint(out)[1]["step"] == 6
    a, b = ref.state_tensors(), resumed.state_tensors()
    assert all(torch.equal(a[k], b[k]) for k in a)


def train_steps_into(bb, opts, images, cfg, steps):
    """`steps` steps of the plain loop on `bb` with the given optimizers (the reference loop, kept open)."""
    from genclf.backbones.ops import autocast, to_unit

    bb.unet.train()
    for step in range(steps):
        perm = np.random.default_rng([cfg.seed, step // (len(images) // cfg.batch_size)]).permutation(len(images))
        i = step % (len(images) // cfg.batch_size)
        idx = np.sort(perm[i * cfg.batch_size : (i + 1) * cfg.batch_size])
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        x = bb.augment(to_unit(images[idx]), gen, cfg.hflip)
        with autocast():
            bb.train_step(x, opts, gen, step)


# ---- the training log (item 3), checkpoints at epoch ends (item 9), rows that move


def test_a_torn_log_row_is_skipped_and_dropped(tiny_images, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=16, checkpoint_every_s=0, log_every=1)
    with pytest.raises(Stop):
        train(get("vae").from_preset("tiny", (1, 8, 8)), tiny_images, cfg, out_dir=tmp_path, progress=_stop_at(4))
    with open(tmp_path / "train_log.jsonl", "a") as f:
        f.write('{"step": 4, "epoch": 1.3, "ima')  # a kill in the middle of a row
    train(get("vae").from_preset("tiny", (1, 8, 8)), tiny_images, cfg, out_dir=tmp_path)
    rows = [json.loads(r) for r in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]


def test_append_log_writes_whole_rows(tmp_path):
    from genclf.backbones.checkpoint import append_log, read_log

    path = tmp_path / "log.jsonl"
    path.write_text('{"step": 1}\n{"step": 2, "lo')
    append_log(path, {"step": 3, "loss": 0.5})
    assert read_log(path) == [{"step": 1}]  # the torn row swallowed the next one: why a resume cleans the file first
    path.write_text('{"step": 1}\n')
    append_log(path, {"step": 2, "loss": 0.5})
    assert read_log(path) == [{"step": 1}, {"step": 2, "loss": 0.5}]


def test_a_checkpoint_at_every_epoch_end(tiny_images, tmp_path):
    cfg = TrainConfig(epochs=3, batch_size=16, checkpoint_every_s=1e9)  # 3 steps per epoch, no timed checkpoints
    with pytest.raises(Stop):
        train(get("vae").from_preset("tiny", (1, 8, 8)), tiny_images, cfg, out_dir=tmp_path, progress=_stop_at(5))
    assert read_checkpoint(tmp_path)[1]["step"] == 3  # the end of epoch 1 survived the kill at step 5
    assert json.loads((tmp_path / "config.json").read_text())["status"] == "training"


def test_rows_come_every_few_seconds_with_their_loss(tiny_images, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=16, log_every=1000, log_every_s=0.0)
    train(get("ddpm").from_preset("tiny", (1, 8, 8)), tiny_images, cfg, out_dir=tmp_path)
    rows = [json.loads(r) for r in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6] and all(math.isfinite(r["loss"]) for r in rows)


# ---- bad arguments exit 2 with one line and write nothing (item 4)

BAD = [
    (["--epochs", "-1"], "--epochs must be a positive"),
    (["--epochs", "nan"], "--epochs must be a positive"),
    (["--epochs", "inf"], "--epochs must be a positive"),
    (["--epochs", "0"], "--epochs must be a positive"),
    (["--batch-size", "0"], "--batch-size must be a positive whole"),
    (["--batch-size", "-5"], "--batch-size must be a positive whole"),
    (["--lr", "nan"], "--lr must be a positive finite"),
    (["--lr", "-0.1"], "--lr must be a positive finite"),
    (["--limit", "-100"], "--limit must be a positive whole"),
    (["--max-steps", "0"], "--max-steps must be a positive whole"),
    (["--max-minutes", "0"], "--max-minutes must be a positive finite"),
    (["--max-minutes", "nan"], "--max-minutes must be a positive finite"),
    (["--seed", "-1"], "--seed must be"),
    (["--config", "{bad"], "--config is not valid JSON"),
    (["--config", "[1]"], "--config must be a JSON object"),
    (["--config", '{"latent": -4}'], "config value latent=-4 must be a whole number >= 1"),
    (["--config", '{"latent": 2.5}'], "config value latent=2.5 must be a whole number"),
    (["--config", '{"beta": "x"}'], 'config value beta="x" must be a finite number'),
    (["--config", '{"lr": 1e999}'], "config value lr=Infinity must be a finite number"),
    (["--config", '{"width": []}'], "config value width=\\[\\] must be a non-empty list"),
    (["--config", '{"channels": 3}'], "comes from the dataset"),
    (["--config", '{"nope": 1}'], "unknown config key 'nope'"),
    (["--config", '{"blocks": ["nope"]}'], "unknown block"),
    (["--preset", "huge"], "unknown preset 'huge'"),
]


@pytest.mark.parametrize("extra,message", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_training_arguments_exit_2_with_a_remedy_and_write_nothing(extra, message, tmp_path, capsys):
    import re

    from genclf.cli import main

    out = tmp_path / "run"
    rc = main(["train", "--dataset", "digits", "--backbone", "vae", "--preset", "tiny", "--out", str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and re.search(message, err), err
    assert not out.exists()  # nothing marked done, nothing half-written


def test_a_model_is_never_marked_done_untrained(tiny_images):
    from genclf.errors import GenclfError

    with pytest.raises(GenclfError, match="--epochs must be a positive"):
        get("vae").from_preset("tiny", (1, 8, 8)).fit(tiny_images, epochs=0)


# ---- the shipped DDPM continues from a fresh clone (issue 13, item 5)


def test_the_shipped_ddpm_resumes_from_its_committed_checkpoint(tmp_path):
    import shutil

    from genclf.backbones.io import PRETRAINED

    src = PRETRAINED / "fashion-mnist" / "ddpm"
    tensors, state, optim = read_checkpoint(src)  # the digest checks out
    doc = json.loads((src / "config.json").read_text())
    assert (state["step"], state["images_seen"], state["global_batch"]) == (doc["steps"], doc["images_seen"], 128)
    # the full state: Adam's moments and the live UNet beside the EMA weights that model.safetensors ships
    assert optim is not None and "warm start" not in state.get("note", "")
    ema = load_file_pt(src / "model.safetensors")
    assert all(torch.equal(tensors[f"model.{k}"], v) for k, v in ema.items())
    assert any(not torch.equal(tensors[f"model.unet.{k[4:]}"], v) for k, v in ema.items())  # live != EMA
    out = tmp_path / "ddpm"
    shutil.copytree(src, out, ignore=shutil.ignore_patterns(".lock"))
    bb = load_backbone(out)
    images = np.random.default_rng(0).integers(0, 256, (128, 1, 28, 28), dtype=np.uint8)
    cfg = TrainConfig(epochs=10**6, batch_size=128, max_steps=doc["steps"] + 1)  # one more optimizer step
    fresh = get("ddpm")(bb.config)
    train(fresh, images, cfg, out_dir=out)
    assert json.loads((out / "config.json").read_text())["steps"] == doc["steps"] + 1
    after, _, optim_after = read_checkpoint(out)
    assert optim_after is not None
    # the step trained on from the shipped live UNet (bit-exact resumption: test_interrupted_run_resumes_to_the_same_weights)
    assert any(not torch.equal(after[f"model.unet.{k[4:]}"], tensors[f"model.unet.{k[4:]}"]) for k in ema)


def test_a_full_disk_while_checkpointing_is_one_line_and_exit_2(monkeypatch, capsys):
    """bench/faults.py's tmpfs case, in process: safetensors raises its own error type on ENOSPC."""
    from safetensors import SafetensorError

    from genclf import cli
    from genclf.cli import train as cli_train

    def full(a):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(cli_train, "cmd_train", full)
    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_fn(parser(), full))
    assert cli.main(["train", "--dataset", "digits", "--backbone", "vae", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "disk is full" in err and "rerun" in err
    assert cli._disk_full(OSError(28, "No space left on device")) and not cli._disk_full(ValueError("x"))


def _with_fn(parser, fn):
    sub = next(a for a in parser._actions if a.dest == "cmd")
    sub.choices["train"].set_defaults(fn=fn)
    return parser
