"""Saving, loading and finding trained backbones.

A trained backbone is a folder with `config.json` (name, config, provenance) and `model.safetensors`
(the weights features need). Loading never unpickles: safetensors only, and every failure -- a
missing file, a truncated file, weights that do not match the config -- is one clear GenclfError.

Where `ddpm` etc. resolve for a dataset, first match wins:
  1. `genclf/pretrained/<dataset>/<name>/`  (shipped, trained by `genclf train`)
  2. `runs/<dataset>/<name>/`               (your own `genclf train` output)
A path to a folder holding `config.json` is taken as is.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file

from genclf.backbones.base import Backbone, config_from_dict
from genclf.backbones.registry import BACKBONES, get
from genclf.errors import GenclfError

PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"


def runs_dir() -> Path:
    return Path(os.environ.get("GENCLF_RUNS_DIR", "runs"))


def read_config(folder: Path) -> dict:
    f = folder / "config.json"
    if not f.is_file():
        raise GenclfError(f"{folder} has no config.json; point at a folder written by `genclf train`")
    try:
        doc = json.loads(f.read_text())
    except ValueError as e:
        raise GenclfError(f"{f} is not valid JSON ({e}); restore it or retrain") from None
    if doc.get("backbone") not in BACKBONES:
        raise GenclfError(f"{f} names backbone {doc.get('backbone')!r}; valid backbones: {', '.join(BACKBONES)}")
    return doc


def load_backbone(folder: Path | str, **feature_options) -> Backbone:
    """Load a trained backbone from a folder; `feature_options` override feature-time config (pool, blocks)."""
    folder = Path(folder)
    doc = read_config(folder)
    cls = get(doc["backbone"])
    cfg = config_from_dict(cls.Config, {**doc.get("config", {}), **feature_options})
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise GenclfError(f"{folder} has no model.safetensors; the training run did not finish -- rerun genclf train")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise GenclfError(f"{weights} is damaged or truncated ({e}); delete it and rerun genclf train") from None
    bb = cls(cfg)
    bb.load_state_tensors(tensors, where=str(weights))
    bb.meta = {k: v for k, v in doc.items() if k not in ("backbone", "config")}
    bb.meta["path"] = str(folder)
    return bb


def with_options(bb: Backbone, **feature_options) -> Backbone:
    """Same weights, different feature-time options (pool, blocks, noise_draws); shares modules."""
    if not feature_options:
        return bb
    clone = object.__new__(type(bb))
    clone.__dict__.update(bb.__dict__)
    clone.config = dataclasses.replace(bb.config, **feature_options)
    return clone


def find(name: str, dataset: str) -> Path:
    """Folder of the backbone `name` for `dataset` (see module docstring for the order)."""
    p = Path(name)
    if (p / "config.json").is_file():
        return p
    if name == "pixels":
        return p
    get(name)  # unknown names fail here with the valid list
    for cand in (PRETRAINED / dataset / name, runs_dir() / dataset / name):
        if (cand / "config.json").is_file() and (cand / "model.safetensors").is_file():
            return cand
    raise GenclfError(
        f"no trained {name!r} for dataset {dataset!r}; train one with "
        f"`genclf train --dataset {dataset} --backbone {name}` (it lands in {runs_dir() / dataset / name})"
    )


def available(dataset: str) -> dict[str, Path]:
    """Backbones ready for `dataset`: shipped ones and your runs (label -> folder)."""
    out: dict[str, Path] = {}
    for root, tag in ((PRETRAINED / dataset, ""), (runs_dir() / dataset, " (run)")):
        if root.is_dir():
            for d in sorted(root.iterdir()):
                if (d / "config.json").is_file() and (d / "model.safetensors").is_file():
                    label = d.name if d.name not in out else f"{d.name}{tag}"
                    out.setdefault(label, d)
    return out


def resolve(name: str, dataset: str, **feature_options) -> Backbone:
    """A ready-to-use backbone for `dataset`: 'pixels', a registered name, or a folder path."""
    if name == "pixels":
        from genclf.backbones.pixels import Pixels

        ds_shape = feature_options.pop("shape", None)
        return Pixels.for_shape(ds_shape) if ds_shape else Pixels()
    return load_backbone(find(name, dataset), **feature_options)
