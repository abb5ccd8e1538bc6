"""The training loop every backbone shares: seeded batches, bf16 autocast, logs, resumable checkpoints.

Output folder (`genclf train` writes it; `genclf/pretrained/...` ships it):
  config.json         backbone name, config, dataset fingerprint, train config, images seen, seconds
  model.safetensors   the weights features need (EMA for ddpm)
  train_log.jsonl     one line per logged step: step, epoch, images, seconds, losses
  command.txt         the exact command
  samples.png         generated samples (ddpm, gan) or reconstructions (vae, vqvae)
  checkpoint.*        full state (all modules + optimizers) for resuming; not shipped

Killing a run and rerunning the same command resumes from `checkpoint.safetensors`. Batch order
and noise come from generators seeded by (seed, epoch) and (seed, step), so a resumed run sees the
same data it would have seen.
"""

from __future__ import annotations

import contextlib
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
from safetensors.torch import load_file, save_file

from genclf.atomic import atomic_write, write_json
from genclf.backbones.ops import Progress, autocast, device, to_unit
from genclf.errors import GenclfError

if TYPE_CHECKING:  # the backbone calls this loop from its fit(); only the type is needed here
    from genclf.backbones.base import Backbone

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 1
    batch_size: int = 128
    lr: float | None = None  # None: the backbone's default
    seed: int = 0
    max_steps: int | None = None  # stop early (tests, smoke runs)
    hflip: bool = False
    checkpoint_every_s: float = float(os.environ.get("GENCLF_CHECKPOINT_EVERY_S", 120))
    log_every: int = 25
    limit: int | None = None  # train on the first N (shuffled, seeded) images only


def _flatten_optim(opts: dict[str, torch.optim.Optimizer]) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, meta = {}, {}
    for name, opt in opts.items():
        sd = opt.state_dict()
        meta[name] = {"param_groups": sd["param_groups"], "scalars": {}}
        for idx, st in sd["state"].items():
            for k, v in st.items():
                if isinstance(v, torch.Tensor):
                    tensors[f"optim.{name}.{idx}.{k}"] = v.detach().cpu().contiguous()
                else:
                    meta[name]["scalars"][f"{idx}.{k}"] = v
    return tensors, meta


def _restore_optim(opts, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    for name, opt in opts.items():
        state: dict[int, dict] = {}
        for key, v in tensors.items():
            if key.startswith(f"optim.{name}."):
                idx, k = key[len(f"optim.{name}.") :].split(".", 1)
                state.setdefault(int(idx), {})[k] = v
        for key, v in meta[name]["scalars"].items():
            idx, k = key.split(".", 1)
            state.setdefault(int(idx), {})[k] = v
        opt.load_state_dict({"state": state, "param_groups": meta[name]["param_groups"]})


def save_checkpoint(out: Path, bb: Backbone, opts, step: int, images_seen: int, seconds: float) -> None:
    tensors = {f"model.{k}": v for k, v in bb.state_tensors(export=False).items()}
    otensors, ometa = _flatten_optim(opts)
    tensors.update(otensors)
    atomic_write(out / "checkpoint.safetensors", lambda tmp: save_file(tensors, tmp))
    write_json(out / "checkpoint.json", {"step": step, "images_seen": images_seen, "seconds": seconds, "optim": ometa})


def load_checkpoint(out: Path, bb: Backbone, opts) -> tuple[int, int, float]:
    try:
        doc = json.loads((out / "checkpoint.json").read_text())
        tensors = load_file(str(out / "checkpoint.safetensors"))
    except Exception as e:
        raise GenclfError(f"checkpoint in {out} is damaged ({e}); delete checkpoint.* there to start over") from None
    bb.load_state_tensors({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, export=False, where=str(out))
    _restore_optim(opts, tensors, doc["optim"])
    return doc["step"], doc["images_seen"], doc["seconds"]


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows written after the checkpoint we resume from (they will be redone)."""
    if path.is_file():
        rows = [r for r in path.read_text().splitlines() if r.strip() and json.loads(r)["step"] <= step]
        atomic_write(path, lambda tmp: Path(tmp).write_text("".join(r + "\n" for r in rows)))


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
    """Train `bb` on unlabeled uint8 images (N, C, H, W). With `out_dir`, checkpoint and resume there."""
    with run_lock(out_dir):
        return _train(bb, images, cfg, out_dir, progress, meta)


def _train(bb, images, cfg, out_dir, progress, meta) -> Backbone:
    bb.check_images(images)
    if cfg.limit:
        images = images[np.random.default_rng(cfg.seed).permutation(len(images))[: cfg.limit]]
    n = len(images)
    if n < cfg.batch_size:
        raise GenclfError(f"{n} images is fewer than one batch of {cfg.batch_size}; lower --batch-size")
    steps_per_epoch = n // cfg.batch_size
    total = math.ceil(cfg.epochs * steps_per_epoch)
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    dev = device()
    for m in bb.modules().values():
        m.to(dev)
    opts = bb.make_optimizers(cfg.lr)
    step, seen, seconds = 0, 0, 0.0
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        if (out_dir / "checkpoint.json").is_file():
            step, seen, seconds = load_checkpoint(out_dir, bb, opts)
            _truncate_log(out_dir / "train_log.jsonl", step)
            log.info("resuming %s at step %d/%d", out_dir, step, total)
    t_start, last_ckpt = time.time() - seconds, time.time()
    wall_start, seen_at_start = time.time(), seen
    perm_epoch, perm = -1, None
    window: list[dict] = []
    for m in bb.modules().values():
        m.train()
    while step < total:
        epoch = step // steps_per_epoch
        if epoch != perm_epoch:
            perm = np.random.default_rng([cfg.seed, epoch]).permutation(n)
            perm_epoch = epoch
        i = step % steps_per_epoch
        idx = np.sort(perm[i * cfg.batch_size : (i + 1) * cfg.batch_size])
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        x = bb.augment(to_unit(images[idx]), gen, cfg.hflip).to(dev)
        with autocast():
            losses = bb.train_step(x, opts, gen, step)
        if not all(math.isfinite(v) for v in losses.values()):
            raise GenclfError(f"training diverged at step {step} (loss {losses}); lower --lr and rerun")
        step += 1
        seen += len(idx)
        window.append(losses)
        elapsed = time.time() - t_start
        if progress:
            rate = (seen - seen_at_start) / max(time.time() - wall_start, 1e-9)
            progress(step, total, {**losses, "epoch": round(step / steps_per_epoch, 3), "img/s": round(rate, 1)})
        if out_dir is not None and (step % cfg.log_every == 0 or step == total):
            row = {"step": step, "epoch": round(step / steps_per_epoch, 4), "images": seen, "seconds": round(elapsed, 2)}
            row.update({k: round(float(np.mean([w[k] for w in window])), 6) for k in window[0]})
            window = []
            with open(out_dir / "train_log.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
        if out_dir is not None and (time.time() - last_ckpt > cfg.checkpoint_every_s or step == total):
            save_checkpoint(out_dir, bb, opts, step, seen, time.time() - t_start)
            if step < total:  # a usable model at every checkpoint, marked unfinished
                bb.meta.update({**(meta or {}), "steps": step, "images_seen": seen, "status": "training"})
                bb.save(out_dir)
            last_ckpt = time.time()
    for m in bb.modules().values():
        m.eval()
    bb.meta.update(
        {
            "train": asdict(cfg),
            "steps": step,
            "images_seen": seen,
            "train_seconds": round(time.time() - t_start, 1),
            **(meta or {}),
        }
    )
    if out_dir is not None:
        bb.save(out_dir)
    return bb
