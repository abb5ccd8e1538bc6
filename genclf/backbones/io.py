"""Saving, loading and finding trained backbones.

A trained backbone is a folder with `config.json` (name, config, provenance) and `model.safetensors`
(the weights features need, with a sha256 of them in its metadata). Loading never unpickles: safetensors
only, and every failure -- a missing file, a truncated file, a config.json that is no run's, weights that
do not match their digest or the config, NaN or inf weights -- is one clear GenclfError. Files written
before the digest (the shipped models among them) load without one.

Where `ddpm` etc. resolve for a dataset, first match wins:
  1. `genclf/pretrained/<dataset>/<name>/`  (shipped, trained by `genclf train`)
  2. `runs/<slug>/<name>/`                  (your own `genclf train` output; `data.slug`: the name, or for
                                             folder:PATH `<folder name>-<6 hex>`; older `runs/<dataset>/` too)
`<other dataset>/<name>` (e.g. `fashion-mnist/ddpm`) takes the backbone trained on another dataset, looked
up the same way; it applies when the images have the same shape. A path to a folder holding
`config.json` is taken as is.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file

from genclf import data
from genclf.backbones.base import Backbone, config_from_dict
from genclf.backbones.registry import BACKBONES, get
from genclf.errors import GenclfError

PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"


def runs_dir() -> Path:
    return Path(os.environ.get("GENCLF_RUNS_DIR", "runs"))


def read_config(folder: Path, remedy: str = "restore it or retrain") -> dict:
    f = folder / "config.json"
    if not f.is_file():
        raise GenclfError(f"{folder} has no config.json; point at a folder written by `genclf train`")
    try:
        doc = json.loads(f.read_text())
    except ValueError as e:
        raise GenclfError(f"{f} is not valid JSON ({e}); {remedy}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("config", {}), dict):
        what = f"'config': {json.dumps(doc['config'])[:40]}" if isinstance(doc, dict) else f"a JSON {_json_type(doc)}"
        raise GenclfError(f"{f} is invalid (it holds {what}, not an object with a 'config' object); {remedy}")
    if doc.get("backbone") not in BACKBONES:
        raise GenclfError(f"{f} names backbone {doc.get('backbone')!r}; valid backbones: {', '.join(BACKBONES)}")
    return doc


def _json_type(v) -> str:
    names = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
    return names.get(type(v), type(v).__name__)


def load_backbone(folder: Path | str, **feature_options) -> Backbone:
    """Load a trained backbone from a folder; `feature_options` override feature-time config (pool, blocks)."""
    folder = Path(folder)
    doc = read_config(folder)
    cls = get(doc["backbone"])
    cfg = config_from_dict(cls.Config, {**doc.get("config", {}), **feature_options})
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise GenclfError(f"{folder} has no model.safetensors; the training run did not finish -- rerun genclf train")
    tensors = read_weights(weights)
    try:
        bb = cls(cfg)
    except (TypeError, ValueError, RuntimeError, AssertionError, ZeroDivisionError) as e:
        f = folder / "config.json"
        raise GenclfError(f"{f} is invalid (its config does not build a {cls.name}: {e}); restore it or retrain") from None
    bb.load_state_tensors(tensors, where=str(weights))
    bb.meta = {k: v for k, v in doc.items() if k not in ("backbone", "config")}
    bb.meta["path"] = str(folder)
    return bb


def read_weights(weights: Path) -> dict:
    """The tensors of a model.safetensors, verified: the digest written with them (files of earlier versions have none
    and load as they are), and finite values only. Every failure is one GenclfError with the remedy."""
    import numpy as np
    import torch
    from safetensors import safe_open

    from genclf.backbones.checkpoint import digest

    retrain = "delete it and rerun genclf train"
    try:
        with safe_open(str(weights), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise GenclfError(f"{weights} is damaged or truncated ({e}); {retrain}") from None
    if "digest" in meta and meta["digest"] != digest(tensors):
        raise GenclfError(
            f"{weights} is damaged: its weights do not match the digest written with them; restore the file, or {retrain}"
        )
    for k, v in tensors.items():  # numpy: torch's threaded isfinite can stall for 100+ ms on a busy machine
        if v.is_floating_point() and not np.isfinite((v.float() if v.dtype == torch.bfloat16 else v).numpy()).all():
            raise GenclfError(f"{weights} holds non-finite weights (NaN or inf in {k}); {retrain}")
    return tensors


def with_options(bb: Backbone, **feature_options) -> Backbone:
    """Same weights, different feature-time options (pool, blocks, noise_draws); shares modules."""
    if not feature_options:
        return bb
    clone = object.__new__(type(bb))
    clone.__dict__.update(bb.__dict__)
    clone.config = dataclasses.replace(bb.config, **feature_options)
    return clone


def run_root(dataset: str) -> Path:
    """runs/<slug>/: where `genclf train` writes the backbones of `dataset`."""
    return runs_dir() / data.slug(dataset)


def run_dir(dataset: str, backbone: str) -> Path:
    return run_root(dataset) / backbone


def _candidates(name: str, dataset: str) -> list[Path]:
    legacy = runs_dir() / dataset / name  # before slugs; also a slug given as the dataset
    return list(dict.fromkeys([PRETRAINED / dataset / name, run_dir(dataset, name), legacy]))


def find(name: str, dataset: str) -> Path:
    """Folder of the backbone `name` for `dataset` (see module docstring for the order)."""
    p = Path(name)
    if (p / "config.json").is_file():
        return p
    if name == "pixels":
        return p
    src, _, bb = name.rpartition("/")
    if src and bb in BACKBONES:  # another dataset's backbone: fashion-mnist/ddpm
        dataset, name = src, bb
    elif src:
        raise GenclfError(
            f"{name!r} is neither a folder holding config.json nor DATASET/BACKBONE (e.g. fashion-mnist/ddpm); "
            "point at a folder written by `genclf train`"
        )
    get(name)  # unknown names fail here with the valid list
    for cand in _candidates(name, dataset):
        if (cand / "config.json").is_file() and (cand / "model.safetensors").is_file():
            return cand
    raise GenclfError(
        f"no trained {name!r} for dataset {dataset!r}; train one with "
        f"`genclf train --dataset {dataset} --backbone {name}` (it lands in {run_dir(dataset, name)})"
        + (f", or use another dataset's, e.g. --backbone fashion-mnist/{name}" if src == "" else "")
    )


def available(dataset: str) -> dict[str, Path]:
    """Backbones ready for `dataset`: shipped ones and your runs (label -> folder)."""
    out: dict[str, Path] = {}
    roots = [(PRETRAINED / dataset, ""), (run_root(dataset), " (run)"), (runs_dir() / dataset, " (run)")]
    for root, tag in roots:
        if root.is_dir():
            for d in sorted(root.iterdir()):
                if (d / "config.json").is_file() and (d / "model.safetensors").is_file() and d not in out.values():
                    label = d.name if d.name not in out else f"{d.name}{tag}"
                    out.setdefault(label, d)
    return out


def check_fits(bb: Backbone, dataset: str, shape: tuple[int, int, int]) -> None:
    """Refuse a backbone built for images of another shape than `dataset`'s (C, H, W)."""
    c, h, w = shape
    have = (getattr(bb.config, "channels", c), getattr(bb.config, "size", max(h, w)))
    if have != (c, max(h, w)):
        hint = ""
        if dataset.startswith("folder:"):
            mode = "L" if have[0] == 1 else "RGB"
            hint = f', or read the folder at that shape: {{"size": {have[1]}, "mode": "{mode}"}} in its genclf.json'
        raise GenclfError(
            f"backbone {bb.meta.get('path', bb.name)} was trained on {have[0]}-channel {have[1]}x{have[1]} images but "
            f"{dataset} holds {c}-channel {h}x{w} ones; train one on it (`genclf train --dataset {dataset} "
            f"--backbone {bb.name}`){hint}"
        )


def resolve(name: str, dataset: str, **feature_options) -> Backbone:
    """A ready-to-use backbone for `dataset`: 'pixels', a registered name, or a folder path."""
    if name == "pixels":
        from genclf.backbones.pixels import Pixels

        ds_shape = feature_options.pop("shape", None)
        return Pixels.for_shape(ds_shape) if ds_shape else Pixels()
    bb = load_backbone(find(name, dataset), **feature_options)
    check_fits(bb, dataset, data.load(dataset).shape)
    return bb
