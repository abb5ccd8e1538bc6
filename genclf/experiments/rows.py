"""Tidy result rows: CSV in and out, the seed protocol, and statistics of one pipeline at one k.

The seed protocol: shot sets that score on test use seeds 0..n-1 (`scoring_seeds`); every choice made on
validation (t, blocks, head, the best pipeline per k) uses its own seeds from VAL_SEED0 on (`val_seeds`),
so no choice is tuned to a shot set that is later scored. A paired lead compares two pipelines on the
same seeds, hence the same shots.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from genclf.experiments.fewshot import ROW_FIELDS, VAL_SEED0, scoring_seeds, val_seeds  # noqa: F401 (re-exported)

SELECT_SHOTS = 10  # auto choices are made at this k, on validation
SELECT_SEEDS = 3  # validation seeds of the t and block sweeps
CHOICE_SEEDS = 5  # validation seeds behind the best pipeline per k
SEEDS_SMALL, SEEDS_LARGE, SMALL_K = 20, 5, 10  # test seeds for k <= SMALL_K and above
BASELINE = "pixels + logreg"
# learned backbones that compete but are not generative: never the "best generative" pipeline (a backbone class
# may also say so itself with `generative = False`)
NOT_GENERATIVE = ("pixels", "cnn", "simclr")


def generative(backbone_or_label: str) -> bool:
    """Whether a backbone (or a pipeline label such as 'ddpm fusion + knn') has generative features."""
    name = str(backbone_or_label).rstrip("/").split("/")[-1].split(" ")[0]
    if name in NOT_GENERATIVE:
        return False
    from genclf.backbones import BACKBONES

    return bool(getattr(BACKBONES.get(name), "generative", True))


def seeds_for(k: int, small: int = SEEDS_SMALL, large: int = SEEDS_LARGE) -> int:
    """How many test seeds at k shots per class: many where the spread is wide (k <= SMALL_K), fewer above."""
    return small if k <= SMALL_K else large


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


def write_table(rows: list[dict], path: Path | str) -> Path:
    """A plain CSV of summary rows (columns in first-seen order), written atomically."""
    path = Path(path)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: cell(r.get(c)) for c in cols})
    tmp.replace(path)
    return path


def points(v: float, sign: bool = True) -> str:
    """An accuracy difference in [0, 1] as points with one decimal ('+7.5'), never '-0.0'."""
    x = round(100 * v, 1) + 0.0
    return f"{x:+.1f}" if sign else f"{x:.1f}"


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


def _select(rows: list[dict], label: str, k: int, split: str, strategy: str) -> dict[int, float]:
    want = (label, k, split, strategy)
    return {int(r["seed"]): float(r["accuracy"]) for r in rows
            if (r["pipeline"], r["shots"], r["split"], r.get("strategy") or "random") == want}  # fmt: skip


def stats(rows: list[dict], label: str, k: int, split: str, strategy: str = "random") -> tuple[float, float, int]:
    """(mean, std, n seeds) of one pipeline's accuracy at k on `split`; NaNs when it did not run."""
    a = list(_select(rows, label, k, split, strategy).values())
    return (float(np.mean(a)), float(np.std(a)), len(a)) if a else (float("nan"), float("nan"), 0)


def t_interval(diffs) -> tuple[float, float, int]:
    """(mean, half-width of the 95% t-interval, n) of paired differences; half-width NaN when n < 2."""
    d = np.asarray(list(diffs), float)
    if len(d) == 0:
        return float("nan"), float("nan"), 0
    if len(d) < 2:
        return float(d.mean()), float("nan"), 1
    from scipy.stats import t

    return float(d.mean()), float(t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))), len(d)


def paired_lead(
    rows: list[dict], label: str, k: int, base: str = BASELINE, split: str = "test", strategy: str = "random"
) -> tuple[float, float, int]:
    """Lead of `label` over `base` at k: the mean over seeds both ran (same seed, so the same shots) of the
    accuracy difference, with its 95% t-interval half-width and the number of pairs (see t_interval)."""
    a, b = _select(rows, label, k, split, strategy), _select(rows, base, k, split, strategy)
    return t_interval(a[s] - b[s] for s in sorted(set(a) & set(b)))


def best_on_val(rows: list[dict], labels: list[str], k: int) -> str | None:
    """The pipeline with the best mean validation accuracy at k (ties: the first in `labels`)."""
    scored = [(stats(rows, lab, k, "val")[0], -i, lab) for i, lab in enumerate(labels)]
    scored = [s for s in scored if not np.isnan(s[0])]
    return max(scored)[2] if scored else None


def head_of(label: str) -> str:
    """'ddpm fusion + knn' -> 'knn' (the head is what follows the last ' + ')."""
    return label.rsplit(" + ", 1)[-1] if " + " in label else label


def lead_text(mean: float, half: float, base: str = BASELINE) -> str:
    """'+7.5 ± 1.3 points over pixels + logreg on the same shots' (accuracies in [0, 1])."""
    if np.isnan(mean):
        return "–"
    ci = "" if np.isnan(half) else f" ± {points(half, False)}"
    return f"{points(mean)}{ci} points over {base} on the same shots"
