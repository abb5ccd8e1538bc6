"""Tidy result rows: CSV in and out, and mean/std/count of one pipeline's accuracy at one k."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from genclf.experiments.fewshot import ROW_FIELDS

SELECT_SHOTS = 10  # auto choices are made at this k, on validation
SELECT_SEEDS = 3


def cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, list | tuple):
        return "+".join(str(x) for x in v)
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def write_csv(rows: list[dict], path: Path | str) -> Path:
    """Tidy CSV: ROW_FIELDS first, then extra keys; lists (t fusion, blocks) joined with '+'."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = list(ROW_FIELDS) + [k for r in rows for k in r if k not in ROW_FIELDS and not isinstance(r[k], np.ndarray)]
    cols = list(dict.fromkeys(cols))
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: cell(r.get(c)) for c in cols})
    tmp.replace(path)
    return path


def read_csv(path: Path | str) -> list[dict]:
    """Rows back from write_csv: numbers parsed; t and blocks stay '+'-joined text."""
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            for k in ("shots", "seed", "n_eval"):
                r[k] = int(r[k]) if r.get(k) else None
            for k in ("accuracy", "baseline_accuracy", "cv_accuracy", "seconds"):
                if k in r:
                    r[k] = float(r[k]) if r[k] else None
            out.append(r)
    return out


def stats(rows: list[dict], label: str, k: int, split: str, strategy: str = "random") -> tuple[float, float, int]:
    want = (label, k, split, strategy)
    a = [r["accuracy"] for r in rows if (r["pipeline"], r["shots"], r["split"], r["strategy"]) == want]
    return (float(np.mean(a)), float(np.std(a)), len(a)) if a else (float("nan"), float("nan"), 0)
