"""Tables behind the Compare and Timestep pages (never imports streamlit): saved report rows, on-demand compare runs,
one curve per distinct pipeline with its paired lead over pixels + logistic regression, the pipeline chosen on
validation, and sweep results as tables.

A pipeline is what `genclf report` names in its `pipeline` column ('ddpm fusion + logreg'); rows without one (an
`eval.csv`, on-demand runs) are named from backbone, t when it is a fusion, and head, so two different pipelines are
never averaged into one line. A lead is paired: `accuracy - baseline_accuracy` of the same run (same seed, same shots).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd

from genclf import features
from genclf.app import labels
from genclf.experiments import rows as rows_io

BASELINE = rows_io.BASELINE
BASELINE_ONLY = f"{BASELINE} (baseline)"  # the baseline drawn from baseline_accuracy when pixels did not run itself
BEST = "best generative (chosen on validation)"
CURVE_COLUMNS = ["method", "shots", "mean", "std", "n", "lead", "lead_ci95", "pairs"]


def results_dir(dataset: str) -> Path:
    """results/<dataset>/ (GENCLF_RESULTS_DIR overrides results/)."""
    import os

    from genclf import data

    return Path(os.environ.get("GENCLF_RESULTS_DIR", "results")) / data.slug(dataset)


def results_rows(dataset: str, split: str | None = "test") -> pd.DataFrame:
    """Run rows of results/<dataset>/runs.csv (written by `genclf report`); without it, the other run CSVs there
    (`genclf eval` writes eval.csv). `split` keeps one split (rows without a split count as test); None keeps all."""
    d = results_dir(dataset)
    files = [d / "runs.csv"] if (d / "runs.csv").is_file() else sorted(d.glob("*.csv")) if d.is_dir() else []
    frames = []
    for f in files:
        with contextlib.suppress(Exception):  # a half-written or foreign CSV is skipped
            df = pd.read_csv(f)
            if {"backbone", "head", "shots", "accuracy"} <= set(df.columns) and "candidate" not in df.columns:
                frames.append(df)
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(df):
        df["split"] = df["split"].fillna("test") if "split" in df else "test"
        if split:
            df = df[df["split"] == split]
    return df.reset_index(drop=True)


def _method(r: pd.DataFrame) -> pd.Series:
    """Each row's pipeline name (see module docstring), with ' (strategy)' for non-random shots."""
    name = r["backbone"].astype(str).map(lambda b: b.rstrip("/").split("/")[-1])
    if "t" in r:  # a fusion of timesteps is its own pipeline
        fused = r["t"].map(lambda t: isinstance(t, list | tuple) or (isinstance(t, str) and "+" in t))
        joined = r["t"].map(lambda t: "+".join(map(str, t)) if isinstance(t, list | tuple) else str(t))
        name = name.where(~fused, name + " t=" + joined)
    method = (name + " + " + r["head"].astype(str)).where(r["backbone"].astype(str) != "cnn", "cnn from scratch")
    if "pipeline" in r:
        method = r["pipeline"].where(r["pipeline"].notna() & (r["pipeline"].astype(str) != ""), method)
    strategy = r["strategy"].fillna("random") if "strategy" in r else pd.Series("random", index=r.index)
    return method.where(strategy == "random", method + " (" + strategy + ")")


def _ci(d: np.ndarray) -> float:
    return rows_io.t_interval(d)[1]


def curves_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Test rows -> one line per distinct pipeline and k: mean, std, n (seeds) of accuracy in %, and the paired lead
    over pixels + logreg in points (`lead`, `lead_ci95` the 95% t-interval half-width, `pairs`). When pixels + logreg
    did not run as a pipeline, it is drawn from the runs' `baseline_accuracy` (the same shots) as its own line."""
    if rows.empty:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    r = rows.copy()
    if "split" in r:
        r = r[r["split"].fillna("test") == "test"]
    r["method"] = _method(r)
    keys = ["method", "shots", "seed"] if "seed" in r else ["method", "shots"]
    r = r.drop_duplicates(keys, keep="last")  # a pipeline's seed counts once, whichever file it came from
    base = r["baseline_accuracy"] if "baseline_accuracy" in r else pd.Series(np.nan, index=r.index)
    r["lead"] = (r["accuracy"] - base.astype(float)) * 100
    parts = [r[["method", "shots", "accuracy", "lead"]]]
    if base.notna().any() and not (r["method"] == BASELINE).any():
        b = r[base.notna()].drop_duplicates(["shots", "seed"] if "seed" in r else ["shots"])
        parts.append(pd.DataFrame({"method": BASELINE_ONLY, "shots": b["shots"], "accuracy": b["baseline_accuracy"],
                                   "lead": 0.0}))  # fmt: skip
    long = pd.concat(parts, ignore_index=True)
    long["accuracy"] = long["accuracy"].astype(float) * 100
    out = []
    for (method, k), g in long.groupby(["method", "shots"], sort=False):
        lead = g["lead"].dropna().to_numpy()
        m, half, pairs = rows_io.t_interval(lead) if len(lead) else (np.nan, np.nan, 0)
        acc = g["accuracy"].to_numpy()
        out.append({"method": method, "shots": int(k), "mean": acc.mean(), "std": acc.std(), "n": len(acc),
                    "lead": m, "lead_ci95": half, "pairs": pairs})  # fmt: skip
    return pd.DataFrame(out, columns=CURVE_COLUMNS).sort_values(["method", "shots"], kind="stable").reset_index(drop=True)


def generative(method: str) -> bool:
    """Whether a pipeline's features come from a generative backbone (not pixels, the from-scratch CNN or SimCLR)."""
    return rows_io.generative(method)


def best_on_val(rows: pd.DataFrame) -> dict[int, str]:
    """Per k, the generative pipeline with the best mean validation accuracy ({} without validation runs). Only runs
    on validation shot sets (seed >= VAL_SEED0) count, so the choice never saw a shot set that is scored on test."""
    if rows.empty or "split" not in rows:
        return {}
    v = rows[(rows["split"] == "val") & (rows["seed"] >= rows_io.VAL_SEED0)].copy() if "seed" in rows else rows[:0]
    if v.empty:
        return {}
    v["method"] = _method(v)
    v = v[v["method"].map(generative) & ~v["method"].str.endswith(")")]
    mean = v.groupby(["shots", "method"], sort=False)["accuracy"].mean().reset_index()
    return {int(k): str(g.loc[g["accuracy"].idxmax(), "method"]) for k, g in mean.groupby("shots")}


def best_curve(table: pd.DataFrame, best: dict[int, str]) -> pd.DataFrame:
    """The curve of the pipeline chosen on validation at each k, as method BEST, with a `chosen` column naming it."""
    parts = []
    for k, method in best.items():
        hit = table[(table["method"] == method) & (table["shots"] == k)]
        parts.append(hit.assign(method=BEST, chosen=method))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*CURVE_COLUMNS, "chosen"])


def headline(table: pd.DataFrame, best: dict[int, str], k: int | None = None) -> dict | None:
    """The lead to put in a headline: the chosen pipeline at k (default rows.SELECT_SHOTS if it ran, else the largest
    k <= 10, else the smallest): method, shots, lead and lead_ci95 (points), n seeds, accuracy and baseline (%)."""
    ks = sorted(k_ for k_ in best if not table[(table["method"] == best[k_]) & (table["shots"] == k_)].empty)
    if not ks:
        return None
    if k is None or k not in ks:
        small = [x for x in ks if x <= rows_io.SMALL_K]
        k = rows_io.SELECT_SHOTS if rows_io.SELECT_SHOTS in ks else (max(small) if small else ks[0])
    row = table[(table["method"] == best[k]) & (table["shots"] == k)].iloc[0]
    base = table[(table["method"].isin([BASELINE, BASELINE_ONLY])) & (table["shots"] == k)]
    return {"method": best[k], "shots": int(k), "lead": float(row["lead"]), "lead_ci95": float(row["lead_ci95"]),
            "n": int(row["n"]), "accuracy": float(row["mean"]), "std": float(row["std"]),
            "baseline": float(base["mean"].iloc[0]) if len(base) else float("nan")}  # fmt: skip


def headline_text(h: dict) -> str:
    """'+7.5 ± 1.3 points at 10 labels per class (20 seeds)' (the ± is the 95% interval over seeds)."""
    ci = "" if np.isnan(h["lead_ci95"]) else f" ± {h['lead_ci95']:.1f}"
    lead = round(h["lead"], 1) + 0.0
    labels = "label" if h["shots"] == 1 else "labels"
    return f"{lead:+.1f}{ci} points at {h['shots']} {labels} per class ({h['n']} seeds)"


def pm(m: float, s: float, sign: bool = False) -> str:
    """'78.7 ± 1.2' (or '+7.5 ± 1.3'); '–' when missing; never '-0.0'."""
    if m is None or np.isnan(m):
        return "–"
    v = round(float(m), 1) + 0.0
    head = f"{v:+.1f}" if sign else f"{v:.1f}"
    return head if s is None or np.isnan(s) else f"{head} ± {float(s):.1f}"


def numbers_table(table: pd.DataFrame, methods: list[str], name=str) -> pd.DataFrame:
    """The numbers behind a chart, formatted alike: one row per method (accuracy % mean ± std over seeds) and, for
    every method but the baseline, a row with its paired lead in points (± 95% interval); columns are k; `name`
    maps a method to what the row says. A last row gives the seeds per k."""
    shots = sorted(table["shots"].unique())
    out = {}
    for m in methods:
        g = table[table["method"] == m].set_index("shots")
        if g.empty:
            continue
        out[name(m)] = [pm(g["mean"].get(k, np.nan), g["std"].get(k, np.nan)) for k in shots]
        if m not in (BASELINE, BASELINE_ONLY) and g["lead"].notna().any():
            lead, ci = g["lead"], g["lead_ci95"]
            out[f"{name(m)}: lead over pixels, points"] = [pm(lead.get(k, np.nan), ci.get(k, np.nan), True) for k in shots]
    if out:
        n = table[table["method"].isin(methods)].groupby("shots")["n"].max()
        out["seeds"] = [str(int(n.get(k, 0))) for k in shots]
    return pd.DataFrame(out, index=[int(k) for k in shots]).T.rename_axis(columns="labeled images per class")


def rivals(table: pd.DataFrame) -> list[str]:
    """The learned non-generative pipelines with logistic regression in `table` (e.g. 'simclr + logreg'): the
    competitors a user would otherwise pick; pixels and the from-scratch CNN are baselines, not rivals."""
    names = dict.fromkeys(table["method"]) if len(table) else {}
    return [m for m in names if m.endswith(" + logreg") and not generative(m) and m.split(" ")[0] not in ("pixels", "cnn")]


def paired_diff(rows: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Per k, the paired difference a − b of test accuracy in points over the seeds both pipelines ran (same seed,
    same shots; rows.paired_lead): columns shots, lead, lead_ci95, pairs."""
    cols = ["shots", "lead", "lead_ci95", "pairs"]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    r = rows.assign(pipeline=_method(rows), split=rows["split"].fillna("test") if "split" in rows else "test")
    records = r.to_dict("records")
    ks = sorted(set(r.loc[r["pipeline"] == a, "shots"]) & set(r.loc[r["pipeline"] == b, "shots"]))
    out = []
    for k in ks:
        m, half, n = rows_io.paired_lead(records, a, int(k), base=b)
        out.append((int(k), 100 * m, 100 * half, n))
    return pd.DataFrame(out, columns=cols)


def diff_sentence(diff: pd.DataFrame, a: str, b: str) -> str:
    """Where `a` wins, ties and loses against `b`: a k counts as a win or a loss only when its 95% interval excludes
    zero (one seed: no interval, so never)."""
    lo, hi = diff["lead"] - diff["lead_ci95"], diff["lead"] + diff["lead_ci95"]
    ks = lambda mask: ", ".join(str(k) for k in diff.loc[mask.fillna(False), "shots"])  # noqa: E731
    parts = [(f"{a} leads {b} at k = {ks(lo > 0)}", (lo > 0).any()), (f"trails it at k = {ks(hi < 0)}", (hi < 0).any()),
             (f"they tie at k = {ks(~(lo > 0) & ~(hi < 0))}", (~(lo > 0) & ~(hi < 0)).any())]  # fmt: skip
    said = [t for t, any_ in parts if any_]
    return ("; ".join(said) + " (a lead counts where its 95% interval over seeds excludes zero).") if said else ""


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
    """Runs for every backbone x shots x seed: on test (seeds 0..seeds-1) and on validation shot sets of their own
    (seeds from VAL_SEED0), so that the best pipeline can be chosen on validation (features come from the disk cache)."""
    from genclf import experiments

    jobs = [(b, k, s, "test") for b in backbones for k in shots for s in experiments.scoring_seeds(seeds)]
    jobs += [(b, k, s, "val") for b in backbones for k in shots for s in experiments.val_seeds(seeds)]
    rows = []
    for i, (b, k, s, split) in enumerate(jobs):
        bt = t if features.backbone(b, dataset).has_t else None
        limit = test_limit if split == "test" else experiments.VAL_LIMIT
        r = experiments.evaluate(dataset, b, head, k, s, t=bt, strategy=strategy, split=split, limit=limit)
        rows.append({**experiments.row_of(r), "pipeline": f"{b.rstrip('/').split('/')[-1]} + {head}"})
        if progress:
            progress(i + 1, len(jobs), {})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ few-shot runs of a session


def lead_delta(lead: float, ci: float) -> tuple[str, str]:
    """A metric's delta for a paired lead in points and the colour to draw it in: green or red only when its 95%
    interval excludes zero, grey (Streamlit's 'off') when the lead is inside the noise or has no interval."""
    clear = not np.isnan(ci) and abs(lead) > ci
    return (f"{pm(lead, ci, True)} pts vs pixels", "normal") if clear else (f"{pm(lead, ci, True)} pts, within noise", "off")


def fewshot_title(run: dict) -> str:
    """'Run #2: DDPM + logistic regression · 10 per class · t=50 · bottleneck · random · seed 0'."""
    p = dict(run["params"])
    blocks = f" · {labels.blocks(p['blocks'])}" if p.get("blocks") and p["backbone"] != "pixels" else ""
    t = f" · t={p['t']}" if p.get("t") is not None else ""
    return (f"Run #{run['n']}: {labels.backbone(run['label'])} + {labels.head(p['head'])} · {_per_class(p)}{t}"
            f"{blocks} · {p['strategy']} · seed {p['seed']}")  # fmt: skip


def _per_class(p: dict, short: bool = False) -> str:
    """Representative picks spend a total budget of shots × classes over clusters: per class only on average."""
    if p["strategy"] != "representative":
        return str(p["shots"]) if short else f"{p['shots']} per class"
    return f"{p['shots']} on avg." if short else f"{p['shots']} per class on average"


def fewshot_history(runs: list[dict]) -> pd.DataFrame:
    """The Few-shot page's run history in plain words: validation first (what to choose by), then the held-out test
    score; leads are points over pixels + logreg on the same shots, left empty on the pixels backbone itself."""
    out = []
    for h in runs:
        p = dict(h["params"])
        own = p["backbone"] == "pixels"
        t = p.get("t")
        t = "–" if t is None else "+".join(map(str, t)) if isinstance(t, tuple | list) else str(t)
        out.append({"run": h["n"], "backbone": labels.backbone(h["label"]), "head": labels.head(p["head"]),
                    "per class": _per_class(p, short=True), "t": t,
                    "blocks": "–" if own else labels.blocks(p.get("blocks")) or "default",
                    "labeling": p["strategy"], "seed": p["seed"],
                    "validation %": pm(h["val"], None) if "val" in h else "–",
                    "val. lead": "–" if own or "val" not in h else pm(h["val_lead"], None, True),
                    "test %": pm(h["accuracy"], None),
                    "test lead": "–" if own else pm(h["accuracy"] - h["baseline"], None, True),
                    "seconds": round(h["seconds"], 1)})  # fmt: skip
    return pd.DataFrame(out)


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
