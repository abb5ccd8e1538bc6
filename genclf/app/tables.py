"""Tables behind the Compare and Timestep pages (never imports streamlit): saved report rows, on-demand
compare runs, mean ± std curves per method, and sweep results as tables.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd

from genclf import features


def results_dir(dataset: str) -> Path:
    """results/<dataset>/ (GENCLF_RESULTS_DIR overrides results/)."""
    import os

    from genclf import data

    return Path(os.environ.get("GENCLF_RESULTS_DIR", "results")) / data.slug(dataset)


def results_rows(dataset: str) -> pd.DataFrame:
    """Every run row in results/<dataset>/*.csv (written by `genclf report`); empty when there are none."""
    d = results_dir(dataset)
    frames = []
    for f in sorted(d.glob("*.csv")) if d.is_dir() else []:
        with contextlib.suppress(Exception):  # a half-written or foreign CSV is skipped
            df = pd.read_csv(f)
            if {"backbone", "head", "shots", "accuracy"} <= set(df.columns):
                frames.append(df)
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(df) and "split" in df:
        df = df[df["split"].fillna("test") == "test"]
    return df


def compare_rows(
    dataset: str,
    backbones: list[str],
    head: str,
    shots: list[int],
    seeds: int,
    strategy: str = "random",
    t: int | None = None,
    test_limit: int | None = None,
    progress=None,
) -> pd.DataFrame:
    """Run few_shot for every backbone x shots x seed (features come from the disk cache)."""
    from genclf import experiments

    jobs = [(b, k, s) for b in backbones for k in shots for s in range(seeds)]
    rows = []
    for i, (b, k, s) in enumerate(jobs):
        bt = t if features.backbone(b, dataset).has_t else None
        r = experiments.few_shot(dataset, b, head, k, s, t=bt, strategy=strategy, test_limit=test_limit)
        rows.append(experiments.row_of(r))
        if progress:
            progress(i + 1, len(jobs), {})
    return pd.DataFrame(rows)


def curves_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows -> method, shots, mean, std, n (accuracy in %); the pixel baseline on the same shots is its own method."""
    if rows.empty:
        return pd.DataFrame(columns=["method", "shots", "mean", "std", "n"])
    r = rows.copy()
    r["strategy"] = r["strategy"].fillna("random") if "strategy" in r else "random"
    r["method"] = r["backbone"].astype(str).map(lambda b: b.rstrip("/").split("/")[-1]) + " + " + r["head"].astype(str)
    r.loc[r["strategy"] != "random", "method"] += " (" + r["strategy"] + ")"
    parts = [r[["method", "shots", "accuracy"]]]
    has_pixels = (r["method"] == "pixels + logreg").any()  # the same runs as the baseline: drawn once
    if "baseline_accuracy" in r and r["baseline_accuracy"].notna().any() and not has_pixels:
        b = r[r["baseline_accuracy"].notna()].drop_duplicates(["shots", "seed", "strategy"] if "seed" in r else ["shots"])
        parts.append(
            pd.DataFrame({"method": "pixels + logreg (baseline)", "shots": b["shots"], "accuracy": b["baseline_accuracy"]})
        )
    long = pd.concat(parts, ignore_index=True)
    long["accuracy"] = long["accuracy"].astype(float) * 100
    g = long.groupby(["method", "shots"], sort=False)["accuracy"]
    out = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=0), "n": g.size()}).reset_index()
    return out.sort_values(["method", "shots"], kind="stable").reset_index(drop=True)


def sweep_table(result: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A sweep_t result -> (single-t curve: t, accuracy, std, cv_accuracy in %; fused candidates, same columns)."""
    rows = [
        {
            "t": c["candidate"],
            "accuracy": c["accuracy"] * 100,
            "std": c["std"] * 100,
            "cv_accuracy": None if c["cv_accuracy"] is None else c["cv_accuracy"] * 100,
        }
        for c in result["curve"]
    ]
    df = pd.DataFrame(rows)
    fused = df["t"].map(lambda t: isinstance(t, list | tuple))
    single, multi = df[~fused].copy(), df[fused].copy()
    multi["t"] = multi["t"].map(lambda ts: "+".join(map(str, ts)))
    return single.astype({"t": int}), multi
