"""`genclf train` and `genclf features`."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

from genclf.cli.common import _str_list, _tqdm_progress  # noqa: F401
from genclf.errors import GenclfError


def cmd_train(a) -> int:
    from genclf import data
    from genclf.backbones import get
    from genclf.backbones.io import load_backbone, runs_dir
    from genclf.backbones.train import TrainConfig, train

    ds = data.load(a.dataset)
    cls = get(a.backbone)
    if not cls.trainable:
        raise GenclfError(f"backbone {a.backbone!r} has nothing to train; valid: ddpm, vae, vqvae, gan")
    out = Path(a.out) if a.out else runs_dir() / a.dataset / a.backbone
    overrides = json.loads(a.config) if a.config else {}
    bb = cls.from_preset(a.preset, ds.shape, seed=a.seed, **overrides)
    if (out / "checkpoint.json").is_file() and (out / "config.json").is_file():
        prev = json.loads((out / "config.json").read_text()).get("config", {})
        if prev and prev != json.loads(json.dumps(bb.config_dict())):
            raise GenclfError(f"{out} holds a run with a different config; pass --out elsewhere or delete {out}")
    elif (out / "model.safetensors").is_file() and not (out / "checkpoint.json").is_file() and not a.force:
        raise GenclfError(f"{out} already holds a finished model; pass --out elsewhere, or --force to retrain")
    cfg = TrainConfig(
        epochs=a.epochs,
        batch_size=a.batch_size,
        lr=a.lr,
        seed=a.seed,
        limit=a.limit,
        hflip=ds.hflip and not a.no_flip,
        max_steps=a.max_steps,
    )
    out.mkdir(parents=True, exist_ok=True)
    cmd = "genclf " + " ".join(shlex.quote(v) for v in sys.argv[1:])
    (out / "command.txt").write_text(cmd + "\n")
    # config.json first, so a resume can verify the config before the model exists
    from genclf.atomic import write_json

    if not (out / "config.json").is_file():
        write_json(out / "config.json", {"backbone": bb.name, "config": bb.config_dict(), "status": "training"})
    print(
        f"training {a.backbone} ({a.preset}) on {ds.name} [{ds.fingerprint}]: {len(ds.unlabeled_pool())} unlabeled "
        f"images, train config {cfg}"
    )
    t0 = time.time()
    meta = {"dataset": ds.name, "data_fingerprint": ds.fingerprint, "preset": a.preset, "command": cmd, "status": "done"}
    train(bb, ds.unlabeled_pool(), cfg, out_dir=out, progress=_tqdm_progress(f"train {a.backbone}", "step"), meta=meta)
    _write_samples(load_backbone(out), ds, out)
    print(f"done in {time.time() - t0:.0f}s -> {out} (model {(out / 'model.safetensors').stat().st_size / 1e6:.2f} MB)")
    return 0


def _write_samples(bb, ds, out: Path) -> None:
    import numpy as np

    from genclf.data import images

    idx = np.random.default_rng(0).choice(len(ds.x_train), 32, replace=False)
    imgs = bb.samples(64, seed=0) if bb.name in ("ddpm", "gan") else bb.samples(32, images=ds.x_train[np.sort(idx)])
    images.save_png(out / "samples.png", images.grid(imgs, cols=16 if bb.name in ("vae", "vqvae") else 8, scale=2))


def cmd_features(a) -> int:
    from genclf import features

    t0 = time.time()
    res = features.extract(
        a.dataset,
        a.backbone,
        t=a.t,
        blocks=a.blocks,
        split=a.split,
        limit=a.limit,
        seed=a.seed,
        progress=_tqdm_progress(f"features {a.backbone}", "img"),
    )
    dt = time.time() - t0
    n = res.x.shape[0]
    how = "cached" if res.cached else f"{n / max(res.seconds, 1e-9):.0f} images/s"
    print(
        f"{a.backbone} t={a.t} blocks={','.join(res.blocks)} split={a.split}: features {res.x.shape} float32 "
        f"({how}, {dt:.2f}s total) key {res.key[:12]}"
    )
    return 0
