"""Layouts that ship with the package, so a fresh clone draws its default Explore view without computing anything.

    genclf/pretrained/<dataset>/layouts/
      <backbone>.safetensors   one (N, dim) float32 array per layout, named by its projection cache key
      index.json               what each key is (the View), and the best validation t per backbone
      command.txt              the `genclf prepare ... --ship` command that wrote them

A shipped layout is served only under its exact cache key (data and weights fingerprints, view, code
version), so a retrained backbone or a changed projection never shows a stale layout; it falls back to
the disk cache and the background service like any other view.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from genclf.atomic import atomic_write, write_json
from genclf.backbones.io import PRETRAINED

log = logging.getLogger(__name__)

_LOADED: dict[str, tuple[tuple, dict[str, np.ndarray], dict]] = {}  # dataset -> (stamp, arrays by key, index)


def folder(dataset: str) -> Path:
    return PRETRAINED / dataset / "layouts"


def _stamp(d: Path) -> tuple:
    return tuple((p.name, p.stat().st_mtime_ns) for p in sorted(d.glob("*"))) if d.is_dir() else ()


def _load(dataset: str) -> tuple[dict[str, np.ndarray], dict]:
    if dataset.startswith("folder:"):
        return {}, {}
    d = folder(dataset)
    stamp = _stamp(d)
    hit = _LOADED.get(dataset)
    if hit is None or hit[0] != stamp:
        arrays: dict[str, np.ndarray] = {}
        for f in sorted(d.glob("*.safetensors")):
            try:
                arrays.update(load_file(str(f)))
            except Exception as e:  # a damaged file only costs the shortcut
                log.warning("ignoring shipped layouts %s (%s)", f, e)
        index = json.loads((d / "index.json").read_text()) if (d / "index.json").is_file() else {}
        _LOADED[dataset] = hit = (stamp, arrays, index)
    return hit[1], hit[2]


def lookup(dataset: str, key: str) -> np.ndarray | None:
    """The shipped layout with this projection cache key, or None."""
    return _load(dataset)[0].get(key)


def best_t(dataset: str, backbone: str) -> int | None:
    """The best validation t recorded when the layouts were made (the default Timestep sweep), or None."""
    t = _load(dataset)[1].get("best_t", {}).get(backbone)
    return None if t is None else int(t)


def write(dataset: str, backbone: str, entries: list[tuple[str, dict, np.ndarray]], best: int | None, command: str) -> Path:
    """Write <backbone>.safetensors (replacing it) and merge its entries into index.json."""
    d = folder(dataset)
    d.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.ascontiguousarray(xy, np.float32) for k, _, xy in entries}
    atomic_write(d / f"{backbone}.safetensors", lambda tmp: save_file(arrays, tmp))
    index = json.loads((d / "index.json").read_text()) if (d / "index.json").is_file() else {}
    index.setdefault("layouts", {})
    index["layouts"] = {k: v for k, v in index["layouts"].items() if v.get("file") != f"{backbone}.safetensors"}
    for k, view, _ in entries:
        index["layouts"][k] = {"file": f"{backbone}.safetensors", **view}
    if best is not None:
        index.setdefault("best_t", {})[backbone] = int(best)
    order = lambda kv: (kv[1]["backbone"], kv[1]["n"], kv[1]["method"], kv[1]["dim"], -1 if kv[1]["t"] is None else kv[1]["t"])
    index["layouts"] = dict(sorted(index["layouts"].items(), key=order))
    write_json(d / "index.json", index)
    atomic_write(d / "command.txt", lambda tmp: Path(tmp).write_text(command.rstrip() + "\n"))
    _LOADED.pop(dataset, None)
    return d
