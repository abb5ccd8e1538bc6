"""`genclf` / `python -m genclf`: the same calls the dashboard makes.

Bad input exits with code 2 and one line that says what was wrong and what to do instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path

from genclf.errors import GenclfError


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        sys.stderr.write(f"genclf: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)


def _int_list(s: str) -> list[int]:
    try:
        out = [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None
    return out


def _str_list(s: str) -> list[str]:
    return [v.strip() for v in s.split(",") if v.strip()]


def _tqdm_progress(desc: str, unit: str = "it"):
    from tqdm import tqdm

    bar = {"b": None}

    def cb(done: int, total: int, info: dict) -> None:
        if bar["b"] is None:
            bar["b"] = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, initial=done - 1)
        b = bar["b"]
        b.update(done - b.n)
        if info:
            b.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in info.items()}, refresh=False)
        if done >= total:
            b.close()

    return cb


# ------------------------------------------------------------------ data


def cmd_data_list(a) -> int:
    from genclf import data

    print(f"{'name':16} {'present':8} {'train':>7} {'test':>7}  description / remedy")
    for name, s in data.REGISTRY.items():
        if s.present():
            try:
                ds = data.load(name)
            except GenclfError as e:  # one damaged dataset should not hide the others
                print(f"{name:16} {'damaged':8} {'-':>7} {'-':>7}  {s.description}. {e}")
                continue
            print(f"{name:16} {'yes':8} {len(ds.y_train):7d} {len(ds.y_test):7d}  {s.description}")
        else:
            print(f"{name:16} {'no':8} {'-':>7} {'-':>7}  {s.description}. To get it: {s.remedy()}")
    print(f"{'folder:PATH':16} {'':8} {'':>7} {'':>7}  your images: PATH/<class>/*.png (+ optional PATH/unlabeled/)")
    return 0


def cmd_data_show(a) -> int:
    import numpy as np

    from genclf import data, viz

    ds = data.load(a.name)
    s = data.splits(ds)
    print(f"dataset      {ds.name}  ({ds.source})")
    print(f"image shape  {ds.shape} (C, H, W) uint8")
    print(f"fingerprint  {ds.fingerprint}")
    print(
        f"splits       train {len(ds.y_train)} = pool {len(s.pool)} + val {len(s.val)}; test {len(ds.y_test)}; "
        f"unlabeled extra {len(ds.x_unlabeled)}"
    )
    if ds.skipped:
        print(f"skipped      {ds.skipped} unreadable file(s)")
    tr = np.bincount(ds.y_train, minlength=ds.n_classes)
    te = np.bincount(ds.y_test, minlength=ds.n_classes)
    va = np.bincount(ds.y_train[s.val], minlength=ds.n_classes)
    print(f"{'class':>5} {'name':24} {'train':>6} {'val':>6} {'test':>6}")
    for i, c in enumerate(ds.classes):
        print(f"{i:5d} {c[:24]:24} {tr[i]:6d} {va[i]:6d} {te[i]:6d}")
    if a.grid:
        per, n_rows = 8, min(ds.n_classes, 20)
        blank = np.full((per, *ds.shape), 255, np.uint8)  # pads classes with fewer than `per` images
        rows = [np.concatenate([ds.x_train[np.flatnonzero(ds.y_train == c)[:per]], blank])[:per] for c in range(n_rows)]
        path = viz.save_png(Path(a.grid), viz.grid(np.concatenate(rows), cols=per, scale=3))
        which = "one row per class" if n_rows == ds.n_classes else f"one row for each of the first {n_rows} classes"
        print(f"wrote {path} ({per} train examples per class, {which})")
    return 0


def cmd_data_fetch(a) -> int:
    from genclf import data

    root = data.fetch(a.name)
    print(f"{a.name} is in {root}")
    return 0


# ------------------------------------------------------------------ cache


def cmd_cache(a) -> int:
    from genclf.cache import Cache

    c = Cache()
    if a.action == "ls":
        for e in c.entries(a.kind):
            parts = e.meta.get("parts", {})
            desc = " ".join(f"{k}={parts[k]}" for k in ("dataset", "backbone", "split", "t", "blocks") if k in parts)
            print(f"{e.kind:12} {e.key[:12]} {e.size / 1e6:8.2f} MB  {e.meta.get('created', '?')}  {desc}")
    elif a.action == "du":
        total = 0
        for kind, (n, b) in sorted(c.du().items()):
            print(f"{kind:12} {n:6d} entries {b / 1e6:10.2f} MB")
            total += b
        print(f"{'total':12} {'':6} {'':7} {total / 1e6:10.2f} MB in {c.root}")
        if left := c.leftovers():
            print(f"{len(left)} leftover temp dir(s) from interrupted writes; `genclf cache clear --yes` removes them")
    else:
        if not a.yes:
            raise GenclfError("`genclf cache clear` deletes cached artifacts; rerun with --yes to confirm")
        print(f"removed {c.clear(a.kind)} entries from {c.root}")
    return 0


# ------------------------------------------------------------------ train / features


def cmd_train(a) -> int:
    from genclf import data
    from genclf.backbones import get
    from genclf.backbones.io import load_backbone, runs_dir
    from genclf.train import TrainConfig, train

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
    from genclf.backbones.io import write_json

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

    from genclf import viz

    idx = np.random.default_rng(0).choice(len(ds.x_train), 32, replace=False)
    imgs = bb.samples(64, seed=0) if bb.name in ("ddpm", "gan") else bb.samples(32, images=ds.x_train[np.sort(idx)])
    viz.save_png(out / "samples.png", viz.grid(imgs, cols=16 if bb.name in ("vae", "vqvae") else 8, scale=2))


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


# ------------------------------------------------------------------ parser


# kept here so `genclf --help` and bad-input errors answer without importing torch;
# tests/test_backbones.py checks it matches the registry
BACKBONE_NAMES = ("ddpm", "vae", "vqvae", "gan", "pixels")


def names() -> list[str]:
    return list(BACKBONE_NAMES)


def build_parser() -> Parser:
    from genclf import data

    p = Parser(prog="genclf", description="Few-shot classification with generative features.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=Parser)

    d = sub.add_parser("data", help="list, inspect and fetch datasets")
    dsub = d.add_subparsers(dest="action", required=True, parser_class=Parser)
    dsub.add_parser("list", help="datasets, whether present, sizes, remedies").set_defaults(fn=cmd_data_list)
    s = dsub.add_parser("show", help="classes, counts per split and class, shape, fingerprint")
    s.add_argument("name", help=f"one of {', '.join(data.dataset_names())}")
    s.add_argument("--grid", metavar="PNG", help="also write a grid of example images here")
    s.set_defaults(fn=cmd_data_show)
    f = dsub.add_parser("fetch", help="download mnist/cifar10/cifar100 with torchvision (needs internet)")
    f.add_argument("name", choices=["mnist", "cifar10", "cifar100"])
    f.set_defaults(fn=cmd_data_fetch)

    c = sub.add_parser("cache", help="manage the artifact store (ls, du, clear)")
    c.add_argument("action", choices=["ls", "du", "clear"])
    c.add_argument("--kind", help="only this artifact kind (features, projection, ...)")
    c.add_argument("--yes", action="store_true", help="confirm clear")
    c.set_defaults(fn=cmd_cache)

    t = sub.add_parser("train", help="train a generative backbone on a dataset's unlabeled train split")
    t.add_argument("--dataset", default=data.DEFAULT_DATASET)
    t.add_argument("--backbone", required=True, choices=[n for n in names() if n != "pixels"])
    t.add_argument("--preset", default="small", choices=["tiny", "small"])
    t.add_argument("--epochs", type=float, default=5)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=None, help="default: the backbone's own")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--limit", type=int, default=None, help="train on N random images only")
    t.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps")
    t.add_argument("--config", help="JSON overrides of the preset, e.g. '{\"latent\": 16}'")
    t.add_argument("--out", help="output folder (default runs/<dataset>/<backbone>)")
    t.add_argument("--no-flip", action="store_true", help="no horizontal flips even where the dataset allows them")
    t.add_argument("--force", action="store_true", help="retrain over a finished model")
    t.set_defaults(fn=cmd_train)

    fe = sub.add_parser("features", help="extract (or reuse cached) (N, D) features")
    fe.add_argument("--dataset", default=data.DEFAULT_DATASET)
    fe.add_argument("--backbone", required=True, help=f"{', '.join(names())} or a trained folder")
    fe.add_argument("--t", type=int, default=None, help="diffusion timestep 0..999 (ddpm only)")
    fe.add_argument("--blocks", type=_str_list, default=None, help="comma-separated block names")
    fe.add_argument("--split", default="test", choices=["train", "val", "pool", "test"])
    fe.add_argument("--limit", type=int, default=None, help="a stratified, seeded subset of N images")
    fe.add_argument("--seed", type=int, default=0)
    fe.set_defaults(fn=cmd_features)

    from genclf import cli_eval

    cli_eval.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.fn(args) or 0
    except GenclfError as e:
        sys.stderr.write(f"genclf: error: {e}\n")
        return 2
    except BrokenPipeError:  # `genclf data list | head`
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("genclf: interrupted; rerun the same command to resume\n")
        return 130
