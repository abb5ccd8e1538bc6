"""The training loop every backbone shares: seeded batches, bf16 autocast, logs, resumable checkpoints.

Output folder (`genclf train` writes it; `genclf/pretrained/...` ships it):
  config.json             backbone name, config, dataset fingerprint, train config, images seen, seconds
  model.safetensors       the weights features need (EMA for ddpm), a sha256 of them in its metadata
  train_log.jsonl         one row per logged step (every `log_every` steps, and at least every
                          `log_every_s` seconds): step, epoch, images, seconds, mean losses since the last row
  command.txt             the exact command
  samples.png             generated samples (ddpm, gan) or reconstructions (vae, vqvae)
  checkpoint.safetensors  full state (all modules + optimizers) for resuming, one atomic file
                          (genclf.backbones.checkpoint); written every `checkpoint_every_s` and at every
                          epoch end; not in the wheel

Killing a run and rerunning the same command resumes from the checkpoint. Batch order and noise come
from generators seeded by (seed, epoch) and (seed, step), so a resumed run sees the same data it
would have seen. Under `accelerate launch` the same loop runs in every process, each on its slice of
the global batch (genclf.backbones.distributed); a plain process runs it exactly as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from genclf.backbones import distributed
from genclf.backbones.checkpoint import append_log, has_checkpoint, load_checkpoint, save_checkpoint, truncate_log
from genclf.backbones.ops import Progress, autocast, device, to_unit
from genclf.errors import GenclfError

if TYPE_CHECKING:  # the backbone calls this loop from its fit(); only the type is needed here
    from genclf.backbones.base import Backbone

log = logging.getLogger(__name__)


def _positive(name: str, v, *, integer: bool, allow_none: bool = False, example: str = "") -> None:
    if v is None and allow_none:
        return
    ok = isinstance(v, int) and not isinstance(v, bool) if integer else isinstance(v, int | float) and not isinstance(v, bool)
    if not ok or not math.isfinite(v) or v <= 0:
        kind = "a positive whole number" if integer else "a positive finite number"
        raise GenclfError(f"{name} must be {kind}, got {v!r}; e.g. {example}")


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 1
    batch_size: int = 128  # per process: the global batch is batch_size x processes
    lr: float | None = None  # None: the backbone's default
    seed: int = 0
    max_steps: int | None = None  # stop early (tests, smoke runs)
    max_minutes: float | None = None  # stop this invocation after this long (a GPU lease); rerun to go on
    hflip: bool = False
    checkpoint_every_s: float = float(os.environ.get("GENCLF_CHECKPOINT_EVERY_S", 120))
    log_every: int = 25
    limit: int | None = None  # train on the first N (shuffled, seeded) images only
    log_every_s: float = 5.0  # also log a row when this long has passed since the last one

    def __post_init__(self):
        _positive("--epochs", self.epochs, integer=False, example="--epochs 5")
        _positive("--batch-size", self.batch_size, integer=True, example="--batch-size 128")
        _positive("--lr", self.lr, integer=False, allow_none=True, example="--lr 0.0005, or leave it out for the default")
        _positive("--max-steps", self.max_steps, integer=True, allow_none=True, example="--max-steps 100")
        _positive("--max-minutes", self.max_minutes, integer=False, allow_none=True, example="--max-minutes 8")
        _positive("--limit", self.limit, integer=True, allow_none=True, example="--limit 5000, or leave it out for all")
        _positive("log_every", self.log_every, integer=True, example="25")
        if not (isinstance(self.seed, int) and 0 <= self.seed < 2**31):
            raise GenclfError(f"--seed must be a whole number in [0, 2^31), got {self.seed!r}; e.g. --seed 0")
        for name in ("checkpoint_every_s", "log_every_s"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or math.isnan(v) or v < 0:
                raise GenclfError(f"{name} must be a number of seconds >= 0, got {v!r}")


# per-key rules on config values beyond "a positive number of the default's type"
_AT_LEAST_ZERO = {"beta", "commitment"}  # 0 switches a loss term off
_BELOW_ONE = {"ema_decay"}  # a decay in [0, 1)
_FROM_DATA = {"channels", "size"}


def check_overrides(cls, overrides) -> dict:
    """Validate `--config` overrides for backbone class `cls`: known keys, right types, sane ranges."""
    eg = "'{\"lr\": 0.001}'"
    if not isinstance(overrides, dict):
        raise GenclfError(f"--config must be a JSON object of {cls.name} config keys, e.g. {eg}; got {json.dumps(overrides)}")
    fields = {f.name: f for f in dataclasses.fields(cls.Config)}
    for k, v in overrides.items():
        if k not in fields:
            valid = ", ".join(sorted(set(fields) - _FROM_DATA))
            raise GenclfError(f"unknown config key {k!r} for {cls.name}; valid keys: {valid}")
        if k in _FROM_DATA:
            raise GenclfError(f"config key {k!r} comes from the dataset's images; drop it from --config")
        default, bad = fields[k].default, f"config value {k}={json.dumps(v)}"
        if isinstance(default, bool) or isinstance(v, bool):
            if not isinstance(default, bool) or not isinstance(v, bool):
                raise GenclfError(f"{bad} must be {'true or false' if isinstance(default, bool) else 'a number'}")
        elif isinstance(default, int):
            if not isinstance(v, int) or v < 1:
                raise GenclfError(f"{bad} must be a whole number >= 1 (the preset has {default})")
            if k == "pool" and v > 8:
                raise GenclfError(f"{bad} must be a pooling grid in 1..8 (the preset has {default})")
        elif isinstance(default, float):
            lo = 0.0 if k in _AT_LEAST_ZERO | _BELOW_ONE else None
            if not isinstance(v, int | float) or not math.isfinite(v) or (v < lo if lo is not None else v <= 0):
                rule = ">= 0" if lo is not None else "> 0"
                raise GenclfError(f"{bad} must be a finite number {rule} (the preset has {default})")
            if k in _BELOW_ONE and v >= 1:
                raise GenclfError(f"{bad} must be below 1 (the preset has {default})")
        elif isinstance(default, str):
            if not isinstance(v, str):
                raise GenclfError(f"{bad} must be a string (the preset has {json.dumps(default)})")
        elif isinstance(default, tuple) or default is None:
            if default is None and v is None:
                continue
            items = default or (0,)
            want_str = isinstance(items[0], str)
            if not isinstance(v, list) or not v or not all(isinstance(e, str if want_str else int) for e in v):
                raise GenclfError(f"{bad} must be a non-empty list of {'names' if want_str else 'whole numbers'}")
            if not want_str and min(v) < (0 if default is None else 1):
                raise GenclfError(f"{bad} must hold numbers >= {0 if default is None else 1}")
    return overrides


@contextlib.contextmanager
def run_lock(out_dir: Path | None):
    """One writer per run folder: a second `genclf train` on the same folder is refused, not interleaved."""
    if out_dir is None:
        yield
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise GenclfError(
                f"another genclf train (pid {f.read().strip() or '?'}) is writing {out_dir}; wait for it or cancel it"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def train(
    bb: Backbone,
    images: np.ndarray,
    cfg: TrainConfig,
    out_dir: Path | None = None,
    progress: Progress | None = None,
    meta: dict | None = None,
) -> Backbone:
    """Train `bb` on unlabeled uint8 images (N, C, H, W). With `out_dir`, checkpoint and resume there.

    Under `accelerate launch` every process calls this with the same arguments; the main process alone
    writes to `out_dir` and reports progress.
    """
    d = distributed.get()
    with run_lock(out_dir if d is None or d.main else None):
        return _train(bb, images, cfg, out_dir, progress, meta, d)


def _out_of_time(cfg: TrainConfig, wall_start: float, d) -> bool:
    """Whether this invocation's --max-minutes are spent; under DDP every process agrees (one all-reduce)."""
    spent = time.time() - wall_start >= 60 * cfg.max_minutes
    return d.mean({"stop": float(spent)})["stop"] > 0 if d else spent


def _check_resume(out_dir: Path, state: dict, gb: int, cfg: TrainConfig, world: int) -> None:
    was = state.get("global_batch")
    if was and was != gb:
        hint = f"--batch-size {was // world}" if was % world == 0 else f"a process count that divides {was}"
        raise GenclfError(
            f"{out_dir} was checkpointed with a global batch of {was}, this run's is {gb} "
            f"({cfg.batch_size} per process x {world}); resume with {hint}, or pass --out elsewhere"
        )


def planned_steps(n_images: int, epochs: float, global_batch: int, max_steps: int | None = None) -> int:
    """The optimizer steps a run takes: whole global batches per epoch, `epochs` of them (rounded up), capped by
    `max_steps`. The trainer, the CLI's rerun check and the Models page's progress all count with this."""
    total = math.ceil(epochs * (n_images // global_batch))
    return min(total, max_steps) if max_steps else total


def _train(bb, images, cfg, out_dir, progress, meta, d) -> Backbone:
    bb.check_images(images)
    world, rank = (d.world, d.rank) if d else (1, 0)
    main = d is None or d.main
    if cfg.limit:
        images = images[np.random.default_rng(cfg.seed).permutation(len(images))[: cfg.limit]]
    n = len(images)
    gb = cfg.batch_size * world  # the global batch: what one optimizer step sees
    if n < gb:
        per = f" ({cfg.batch_size} per process x {world} processes)" if world > 1 else ""
        raise GenclfError(f"{n} images is fewer than one batch of {gb}{per}; lower --batch-size")
    steps_per_epoch = n // gb
    total = planned_steps(n, cfg.epochs, gb, cfg.max_steps)
    dev = d.device if d else device()
    amp = d.autocast if d else autocast
    for m in bb.modules().values():
        m.to(dev)
    opts = bb.make_optimizers(cfg.lr)
    step, seen, seconds = 0, 0, 0.0
    if out_dir is not None:
        if has_checkpoint(out_dir):
            state = load_checkpoint(out_dir, bb, opts)
            _check_resume(out_dir, state, gb, cfg, world)
            step, seen, seconds = int(state["step"]), int(state["images_seen"]), float(state["seconds"])
            log.info("resuming %s at step %d/%d", out_dir, step, total)
            if cfg.lr:  # an explicit --lr on a resumed run applies from here on (e.g. a cool-down at the end)
                for opt in opts.values():
                    for group in opt.param_groups:
                        group["lr"] = cfg.lr
                log.info("learning rate %g from step %d (the checkpoint's optimizer had its own)", cfg.lr, step)
        if main:
            truncate_log(out_dir / "train_log.jsonl", step)  # rows past the checkpoint are redone; torn rows go
    log.info("global batch %d (%d per process x %d processes), %d steps", gb, cfg.batch_size, world, total)
    t_start, last_ckpt = time.time() - seconds, time.time()
    wall_start, seen_at_start, last_row = time.time(), seen, time.time()
    perm_epoch, perm = -1, None
    window: list[dict] = []
    time_limited = False
    for m in bb.modules().values():
        m.train()
    with d.sync_grads(bb.modules()) if d else contextlib.nullcontext():
        while step < total:
            epoch = step // steps_per_epoch
            if epoch != perm_epoch:
                perm = np.random.default_rng([cfg.seed, epoch]).permutation(n)
                perm_epoch = epoch
            i = step % steps_per_epoch
            idx = np.sort(perm[i * gb : (i + 1) * gb])
            if world > 1:  # this process's slice of the global batch
                idx = idx[rank * cfg.batch_size : (rank + 1) * cfg.batch_size]
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
            with d.draws(gen, len(idx)) if d else contextlib.nullcontext():
                x = bb.augment(to_unit(images[idx]), gen, cfg.hflip).to(dev)
                with amp():
                    losses = bb.train_step(x, opts, gen, step)
            if d:
                d.sync_buffers(bb.modules())
                losses = d.mean(losses)
            if not all(math.isfinite(v) for v in losses.values()):
                raise GenclfError(f"training diverged at step {step} (loss {losses}); lower --lr and rerun")
            step += 1
            seen += gb
            window.append(losses)
            if cfg.max_minutes and step % cfg.log_every == 0 and step < total and _out_of_time(cfg, wall_start, d):
                total, time_limited = step, True  # the step == total branches below checkpoint and log it
            if not main:
                continue
            now = time.time()
            if progress:
                rate = (seen - seen_at_start) / max(now - wall_start, 1e-9)
                progress(step, total, {**losses, "epoch": round(step / steps_per_epoch, 3), "img/s": round(rate, 1)})
            if out_dir is None:
                continue
            if step % cfg.log_every == 0 or step == total or now - last_row >= cfg.log_every_s:
                row = {"step": step, "epoch": round(step / steps_per_epoch, 4), "images": seen}
                row["seconds"] = round(now - t_start, 2)
                row.update({k: round(float(np.mean([w[k] for w in window])), 6) for k in window[0]})
                window, last_row = [], now
                append_log(out_dir / "train_log.jsonl", row)
            if now - last_ckpt > cfg.checkpoint_every_s or step == total or step % steps_per_epoch == 0:
                state = {"step": step, "images_seen": seen, "seconds": time.time() - t_start}
                save_checkpoint(out_dir, bb, opts, {**state, "global_batch": gb, "processes": world})
                if step < total:  # a usable model at every checkpoint, marked unfinished
                    bb.meta.update({**(meta or {}), "steps": step, "images_seen": seen, "status": "training"})
                    bb.save(out_dir)
                last_ckpt = time.time()
    for m in bb.modules().values():
        m.eval()
    if step == 0:  # unreachable with a valid TrainConfig; a model must never be marked done untrained
        raise GenclfError("no training step ran; pass --epochs > 0")
    bb.meta.update(
        {
            "train": {**asdict(cfg), "processes": world, "global_batch": gb},
            "steps": step,
            "images_seen": seen,
            "train_seconds": round(time.time() - t_start, 1),
            **(meta or {}),
        }
    )
    if time_limited:  # finished for now: usable, and the same command with more time goes on from the checkpoint
        bb.meta["stopped_at_time_limit"] = f"{cfg.max_minutes:g} min, epoch {step / steps_per_epoch:.2f} of {cfg.epochs:g}"
    else:
        bb.meta.pop("stopped_at_time_limit", None)
    if out_dir is not None and main:
        bb.save(out_dir)
    return bb
