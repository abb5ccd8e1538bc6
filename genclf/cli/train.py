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
    from genclf.backbones.io import load_backbone, run_dir
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
    resume = has_checkpoint(out)
    if resume and (out / "config.json").is_file():
        prev = json.loads((out / "config.json").read_text()).get("config", {})
        if prev and prev != json.loads(json.dumps(bb.config_dict())):
            raise GenclfError(f"{out} holds a run with a different config; pass --out elsewhere or delete {out}")
    elif (out / "model.safetensors").is_file() and not resume and not a.force:
        raise GenclfError(f"{out} already holds a finished model; pass --out elsewhere, or --force to retrain")
    d = distributed.get()
    main = d is None or d.main
    world = d.world if d else 1
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


def _write_command(path: Path, cmd: str, resume: bool) -> None:
    """The command that made the run; a resume with a different command adds its own line."""
    lines = path.read_text().splitlines() if resume and path.is_file() else []
    if not lines or lines[-1] != cmd:
        lines.append(cmd)
    path.write_text("".join(line + "\n" for line in lines))


def _write_samples(bb, ds, out: Path) -> None:
    import numpy as np

    from genclf.data import images

    idx = np.random.default_rng(0).choice(len(ds.x_train), 32, replace=False)
    imgs = bb.samples(64, seed=0) if bb.name in ("ddpm", "gan") else bb.samples(32, images=ds.x_train[np.sort(idx)])
    images.save_png(out / "samples.png", images.grid(imgs, cols=16 if bb.name in ("vae", "vqvae") else 8, scale=2))


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
