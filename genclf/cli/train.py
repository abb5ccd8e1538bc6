"""`genclf train` and `genclf features`."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

from genclf.cli.common import _str_list, _tqdm_progress  # noqa: F401
from genclf.errors import GenclfError


def _overrides(text: str | None) -> object:
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError as e:
        raise GenclfError(f"--config is not valid JSON ({e}); write an object, e.g. --config '{{\"latent\": 16}}'") from None


def cmd_train(a) -> int:
    from genclf import data
    from genclf.atomic import write_json
    from genclf.backbones import distributed, get, names
    from genclf.backbones.checkpoint import has_checkpoint
    from genclf.backbones.io import load_backbone, read_config, run_dir
    from genclf.backbones.train import TrainConfig, check_overrides, train

    cls = get(a.backbone)
    if not cls.trainable:
        valid = ", ".join(n for n in names() if get(n).trainable)
        raise GenclfError(f"backbone {a.backbone!r} has nothing to train; valid: {valid}")
    overrides = check_overrides(cls, _overrides(a.config))
    ds = data.load(a.dataset)
    # every argument is checked before anything is written: a bad one leaves no run folder behind
    cfg = TrainConfig(
        epochs=a.epochs,
        batch_size=a.batch_size,
        lr=a.lr,
        seed=a.seed,
        limit=a.limit,
        hflip=ds.hflip and not a.no_flip,
        max_steps=a.max_steps,
        max_minutes=a.max_minutes,
    )
    try:
        bb = cls.from_preset(a.preset, ds.shape, seed=a.seed, **overrides)
    except (ValueError, TypeError, RuntimeError, NotImplementedError, AssertionError, ZeroDivisionError) as e:
        what = f"preset {a.preset!r} with --config {json.dumps(overrides)}"
        raise GenclfError(f"{what} does not build a {a.backbone} ({e}); change those values") from None
    bb.check_blocks(None)
    out = Path(a.out) if a.out else run_dir(a.dataset, a.backbone)
    d = distributed.get()
    main = d is None or d.main
    world = d.world if d else 1
    resume = has_checkpoint(out)
    remedy = f"restore it, pass --out elsewhere, or delete {out}"
    prev = read_config(out, remedy) if (out / "config.json").is_file() else None  # an invalid one is refused here
    finished = (
        prev is not None
        and (out / "model.safetensors").is_file()
        and prev.get("status", "done" if "train" in prev else None) == "done"  # runs of earlier versions had no status
        and "stopped_at_time_limit" not in prev  # a run stopped by --max-minutes goes on with the same command
    )
    if finished and not a.force:  # never rewrite the record of a finished run with settings it was not trained with
        fixed, extend = _differences(prev, bb, ds, a.preset, cfg, world)
        steps, total = prev.get("steps"), _total_steps(ds, cfg, world)
        more = steps is None or total > steps  # more epochs (or steps): the run goes on, as a resume does
        if more and not resume:  # nothing to go on from
            raise GenclfError(f"{out} already holds a finished model; pass --out elsewhere, or --force to retrain")
        if fixed or (extend and not more):
            why = "" if fixed else f"; this command stops at step {total} and the run has {steps}, so it would train nothing"
            raise GenclfError(
                f"{out} holds a finished run with other settings ({'; '.join(fixed + extend)}){why}; it stays as it is: "
                f"pass --out elsewhere for a new run, --force to retrain this one with these settings, or delete {out}"
            )
        if not more:
            if main:
                print(f"{out} already holds this finished run ({steps} steps); nothing to do (--force retrains it)")
            return 0
    if finished and resume and a.force:  # retrain from scratch: the checkpoint would only resume the finished run
        resume = False
        if main:
            for name in ("checkpoint.safetensors", "checkpoint.json", "train_log.jsonl"):
                (out / name).unlink(missing_ok=True)
    elif resume and prev is not None:
        if prev.get("config") and (prev.get("backbone"), prev["config"]) != (bb.name, _plain(bb.config_dict())):
            raise GenclfError(f"{out} holds a run with a different config; pass --out elsewhere or delete {out}")
    elif (out / "model.safetensors").is_file() and not resume and not a.force:
        raise GenclfError(f"{out} already holds a finished model; pass --out elsewhere, or --force to retrain")
    cmd = "genclf " + " ".join(shlex.quote(v) for v in sys.argv[1:])
    if main:
        out.mkdir(parents=True, exist_ok=True)
        _write_command(out / "command.txt", cmd, resume)
        # config.json first, so a resume can verify the config before the model exists
        if not (out / "config.json").is_file():
            write_json(out / "config.json", {"backbone": bb.name, "config": bb.config_dict(), "status": "training"})
        how = f"{cfg.batch_size} per process x {world} processes, mixed precision {d.mixed_precision}" if d else "one process"
        print(
            f"training {a.backbone} ({a.preset}) on {ds.name} [{ds.fingerprint}]: {len(ds.unlabeled_pool())} unlabeled "
            f"images, global batch {cfg.batch_size * world} ({how}), train config {cfg}"
        )
    if d:
        d.barrier()  # the run folder exists before any process looks into it
    t0 = time.time()
    meta = {"dataset": ds.name, "data_fingerprint": ds.fingerprint, "preset": a.preset, "command": cmd, "status": "done"}
    progress = _tqdm_progress(f"train {a.backbone}", "step") if main else None
    train(bb, ds.unlabeled_pool(), cfg, out_dir=out, progress=progress, meta=meta)
    if not main:
        return 0
    _write_samples(load_backbone(out), ds, out)
    print(f"done in {time.time() - t0:.0f}s -> {out} (model {(out / 'model.safetensors').stat().st_size / 1e6:.2f} MB)")
    return 0


def _plain(v):
    """As the value reads back from config.json (tuples become lists)."""
    return json.loads(json.dumps(v))


# TrainConfig field -> the flag that sets it
_FLAGS = {"epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "seed": "--seed", "limit": "--limit",
          "max_steps": "--max-steps", "max_minutes": "--max-minutes", "hflip": "flips"}  # fmt: skip


def _total_steps(ds, cfg, world: int) -> int:
    """The step count genclf.backbones.train runs for this command."""
    from genclf.backbones.train import planned_steps

    n = len(ds.unlabeled_pool())
    return planned_steps(min(n, cfg.limit) if cfg.limit else n, cfg.epochs, cfg.batch_size * world, cfg.max_steps)


# TrainConfig fields a finished run may go on with (more epochs or steps; a new --lr from here on, as a resume takes it)
_EXTEND = ("epochs", "max_steps", "max_minutes", "lr")


def _differences(prev: dict, bb, ds, preset: str, cfg, world: int) -> tuple[list[str], list[str]]:
    """What this command would train differently from the finished run recorded in `prev` (its config.json): what
    would change the run itself (the model, the data, the seed, the batches), and what only extends it (_EXTEND)."""
    from dataclasses import asdict

    def show(k, v):
        if k == "hflip":
            return "on" if v else "off (--no-flip)"
        return "the backbone's default" if k == "lr" and v is None else "none" if v is None else f"{v:g}"

    fixed, extend = [], []
    if prev.get("backbone") != bb.name:
        fixed.append(f"backbone {prev.get('backbone')} (this command: {bb.name})")
    elif prev.get("config") and prev["config"] != (new := _plain(bb.config_dict())):
        keys = sorted(k for k in {*prev["config"], *new} if prev["config"].get(k) != new.get(k))
        fixed.append(f"--preset/--config: {', '.join(keys)}")
    if prev.get("preset") not in (None, preset):
        fixed.append(f"--preset {prev['preset']} (this command: {preset})")
    if prev.get("data_fingerprint") not in (None, ds.fingerprint):
        fixed.append(f"the dataset's images (fingerprint {prev['data_fingerprint']}, now {ds.fingerprint})")
    train = prev.get("train") if isinstance(prev.get("train"), dict) else {}
    now = asdict(cfg)
    for k, flag in _FLAGS.items():
        if k in train and train[k] != now[k]:
            (extend if k in _EXTEND else fixed).append(f"{flag} {show(k, train[k])} (this command: {show(k, now[k])})")
    if train.get("processes", world) != world:
        fixed.append(f"{train['processes']} processes (this command: {world})")
    return fixed, extend


def _write_command(path: Path, cmd: str, resume: bool) -> None:
    """The command that made the run; a resume with a different command adds its own line."""
    lines = path.read_text().splitlines() if resume and path.is_file() else []
    if not lines or lines[-1] != cmd:
        lines.append(cmd)
    path.write_text("".join(line + "\n" for line in lines))


def _write_samples(bb, ds, out: Path) -> None:
    import numpy as np

    from genclf.data import images

    cols = 16 if bb.name in ("vae", "vqvae") else 8
    if bb.name in ("ddpm", "gan"):
        imgs = bb.samples(64, seed=0)
    else:  # 32 train images, or as many whole rows as a small dataset holds
        n = min(32, len(ds.x_train))
        cols = min(cols, n)
        n -= n % cols
        idx = np.sort(np.random.default_rng(0).choice(len(ds.x_train), n, replace=False))
        kw = {"cols": cols} if bb.name == "simclr" else {}
        imgs = bb.samples(n, images=ds.x_train[idx], **kw)
    images.save_png(out / "samples.png", images.grid(imgs, cols=cols, scale=2))


def cmd_features(a) -> int:
    from genclf import features
    from genclf.backbones import distributed

    d = distributed.get()  # under accelerate launch every process extracts a slice; the main one reports
    main = d is None or d.main
    t0 = time.time()
    res = features.extract(
        a.dataset,
        a.backbone,
        t=a.t,
        blocks=a.blocks,
        split=a.split,
        limit=a.limit,
        seed=a.seed,
        progress=_tqdm_progress(f"features {a.backbone}", "img") if main else None,
    )
    if not main:
        return 0
    dt = time.time() - t0
    n = res.x.shape[0]
    how = "cached" if res.cached else f"{n / max(res.seconds, 1e-9):.0f} images/s"
    print(
        f"{a.backbone} t={a.t} blocks={','.join(res.blocks)} split={a.split}: features {res.x.shape} float32 "
        f"({how}, {dt:.2f}s total) key {res.key[:12]}"
    )
    return 0
