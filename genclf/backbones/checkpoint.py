"""Resumable training state and the training log, written so that a kill at any moment loses nothing.

`checkpoint.safetensors` is the one file a run resumes from: every module's weights (`model.*`), the
optimizers' tensors (`optim.*`), and in its metadata the step, images seen, seconds, global batch,
the optimizers' other state and a sha256 of all tensors. It is replaced by one rename, so a reader
sees the old state or the new one, never a mix, and the digest is checked before anything is loaded.
The two-file format of earlier versions (`checkpoint.safetensors` + `checkpoint.json`) still loads;
the next checkpoint replaces it.

`train_log.jsonl` gets one JSON row per logged step, each appended with a single `write`; a row torn
by a kill is skipped when read and dropped when a run resumes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from genclf.atomic import atomic_write
from genclf.errors import GenclfError

if TYPE_CHECKING:
    from genclf.backbones.base import Backbone

log = logging.getLogger(__name__)

FORMAT = "genclf-checkpoint/2"
CHECKPOINT = "checkpoint.safetensors"
LEGACY_JSON = "checkpoint.json"


def has_checkpoint(out: Path) -> bool:
    """Whether `out` holds resumable state (this format or the old two-file one)."""
    return (out / CHECKPOINT).is_file() or (out / LEGACY_JSON).is_file()


def digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes of `tensors`: written into the metadata of checkpoint.safetensors
    and model.safetensors, checked before either is used."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        v = tensors[k].contiguous()
        h.update(f"{k}:{v.dtype}:{tuple(v.shape)};".encode())
        if v.numel():
            h.update(v.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


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


def save_checkpoint(out: Path, bb: Backbone, opts: dict | None, state: dict) -> None:
    """One atomic file: weights of every module, optimizer state, and `state` (step, images_seen, seconds, ...)."""
    tensors = {f"model.{k}": v for k, v in bb.state_tensors(export=False).items()}
    ometa: dict = {}
    if opts is not None:
        otensors, ometa = _flatten_optim(opts)
        tensors.update(otensors)
    meta = {k: json.dumps(v) for k, v in state.items()}
    meta.update(
        {"format": FORMAT, "optim": json.dumps(ometa), "optimizer": "saved" if opts else "absent", "digest": digest(tensors)}
    )
    atomic_write(out / CHECKPOINT, lambda tmp: save_file(tensors, tmp, metadata=meta))
    (out / LEGACY_JSON).unlink(missing_ok=True)  # the safetensors file is the whole checkpoint now


def read_checkpoint(out: Path) -> tuple[dict[str, torch.Tensor], dict, dict | None]:
    """(tensors, state, optimizer meta or None when absent), verified; a damaged checkpoint is one GenclfError."""
    path = out / CHECKPOINT
    remedy = f"delete {path.name} (and {LEGACY_JSON}) in {out} to start over"
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except Exception as e:
        raise GenclfError(f"checkpoint {path} is damaged ({e}); {remedy}") from None
    if meta.get("format") != FORMAT:
        return _read_legacy(out, tensors, remedy)
    try:
        if meta["digest"] != digest(tensors):
            raise ValueError("its tensors do not match the digest written with them")
        state = {k: json.loads(v) for k, v in meta.items() if k not in ("format", "optim", "optimizer", "digest")}
        for k in ("step", "images_seen", "seconds"):
            if not isinstance(state.get(k), int | float):
                raise ValueError(f"metadata has no {k}")
        optim = json.loads(meta["optim"]) if meta.get("optimizer") == "saved" else None
    except (ValueError, KeyError, TypeError) as e:
        raise GenclfError(f"checkpoint {path} is damaged ({e}); {remedy}") from None
    (out / LEGACY_JSON).unlink(missing_ok=True)  # left by a kill right after the switch to this format
    return tensors, state, optim


def _read_legacy(out: Path, tensors: dict, remedy: str) -> tuple[dict, dict, dict]:
    try:
        doc = json.loads((out / LEGACY_JSON).read_text())
        state = {"step": int(doc["step"]), "images_seen": int(doc["images_seen"]), "seconds": float(doc["seconds"])}
        optim = doc["optim"]
    except Exception as e:
        raise GenclfError(f"checkpoint in {out} has no valid metadata ({e}); {remedy}") from None
    log.warning("%s holds a two-file checkpoint of an earlier genclf; the next checkpoint replaces it", out)
    return tensors, state, optim


def load_checkpoint(out: Path, bb: Backbone, opts: dict) -> dict:
    """Restore weights and optimizers from `out`; returns the saved state (step, images_seen, seconds, ...)."""
    tensors, state, optim = read_checkpoint(out)
    bb.load_state_tensors({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, export=False, where=str(out))
    if optim is None:
        log.warning("%s has no optimizer state (%s); the optimizer starts fresh", out, state.get("note", "not saved"))
    else:
        try:
            _restore_optim(opts, tensors, optim)
        except (KeyError, ValueError) as e:
            where = out / CHECKPOINT
            raise GenclfError(f"optimizer state in {where} does not fit this model ({e}); delete it to start over") from None
    return state


# ---- the training log


def read_log(path: Path) -> list[dict]:
    """The rows of a train_log.jsonl; a line that does not parse (torn by a kill) is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
    return rows


def truncate_log(path: Path, step: int) -> None:
    """Keep the rows up to `step` (later ones are redone after a resume) and drop torn ones, atomically."""
    if path.is_file():
        rows = [r for r in read_log(path) if r["step"] <= step]
        atomic_write(path, lambda tmp: Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in rows)))


def append_log(path: Path, row: dict) -> None:
    """Append one row with one write(2) on an O_APPEND file: a reader sees the whole row or a torn tail it skips."""
    data = (json.dumps(row) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if os.write(fd, data) != len(data):
            raise OSError(f"short write to {path} (disk full?)")
    finally:
        os.close(fd)
