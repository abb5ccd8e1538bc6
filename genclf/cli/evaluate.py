"""CLI verbs for experiments: eval, sweep-t, sweep-blocks, report (compute lives in genclf.experiments/report).

Each verb writes a tidy CSV (one row per run); `--json` prints the rows to stdout instead of a table.
Bad input exits with code 2 and one line (GenclfError, or the Parser for malformed flags).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from genclf.backbones.base import T_MAX
from genclf.cli.common import _int_list, _str_list, _tqdm_progress
from genclf.errors import GenclfError


def _t_arg(s: str):
    """'auto', one t, or a comma list (fusion); each t in [0, T_MAX]."""
    if s.strip() == "auto":
        return "auto"
    ts = _int_list(s)
    if not ts:
        raise argparse.ArgumentTypeError("empty list of timesteps; pass e.g. --t 50, --t 10,50,150 or --t auto")
    for t in ts:
        if not 0 <= t <= T_MAX:
            raise argparse.ArgumentTypeError(f"t={t} is outside [0, {T_MAX}] (diffusers counts 0..{T_MAX}); pick one in range")
    return ts if len(ts) > 1 else ts[0]


def fixed_t_arg(s: str):
    """One t or a comma list (fusion), as `_t_arg`, for verbs that take t as given: 'auto' is eval's alone."""
    if s.strip().lower() == "auto":
        raise argparse.ArgumentTypeError(
            f"'auto' is not accepted here (only `genclf eval --t auto` chooses t on validation); pass a timestep "
            f"0..{T_MAX}, e.g. --t 50"
        )
    return _t_arg(s)


def one_t_arg(s: str) -> int:
    """A single t in [0, T_MAX] (`genclf features`)."""
    t = fixed_t_arg(s)
    if isinstance(t, list):
        raise argparse.ArgumentTypeError(f"expected one timestep 0..{T_MAX}, got {s!r}; pass e.g. --t 50")
    return t


def _bars(desc: str):
    """A progress callback that opens a fresh tqdm bar for every feature extraction."""
    state = {"cb": None, "last": 0}

    def cb(done: int, total: int, info: dict) -> None:
        if state["cb"] is None or done <= state["last"]:
            state["cb"] = _tqdm_progress(desc, "img")
        state["last"] = 0 if done >= total else done
        state["cb"](done, total, info)

    return cb


def _out_path(a, default: Path) -> Path:
    """Where the CSV goes, checked before any computation: an unwritable --out fails now, not after the run."""
    return _writable(Path(a.out) if a.out else default)


def _writable(path: Path) -> Path:
    if path.is_dir():
        raise GenclfError(f"--out {path} is a folder; name a .csv file, e.g. {path / 'eval.csv'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".check"):
            pass
    except OSError as e:
        raise GenclfError(f"cannot write {path} ({e.strerror or e}); pass --out with a writable path") from None
    return path


def _results(dataset: str) -> Path:
    """results/<slug>/ (folder datasets get a readable name, not folder:/abs/path)."""
    from genclf import data

    return Path("results") / data.slug(dataset)


def _safe(name: str) -> str:
    """A backbone name, DATASET/NAME or folder as one file-name part."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "backbone"


def _emit(rows: list[dict], a, path: Path) -> Path:
    from genclf.experiments.rows import write_csv

    try:
        write_csv(rows, path)
    except OSError as e:  # checked writable before the run; still, never lose the computed rows
        sys.stdout.write(json.dumps(rows, default=_json_default) + "\n")
        raise GenclfError(
            f"cannot write {path} ({e.strerror or e}); the {len(rows)} rows were printed above as JSON, and rerunning "
            "with --out elsewhere reuses the cached features"
        ) from None
    if a.json:
        print(json.dumps(rows, default=_json_default))
    return path


def _json_default(o):
    if isinstance(o, np.integer | np.floating):
        return o.item()
    raise TypeError(type(o).__name__)


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:5.1f}"


def _count(flag: str, v: int | None, unit: str = "", most: int | None = None, remedy: str = "", why: str = "") -> None:
    """A count given by `flag` (None: not given) in 1..most, checked before any work; the message names the flag."""
    if v is None:
        return
    if v < 1:
        raise GenclfError(f"{flag} must be at least 1{' ' + unit if unit else ''}, got {v}{remedy}")
    if most is not None and v > most:
        raise GenclfError(f"{flag} must be at most {most}{' ' + unit if unit else ''}, got {v}{why}")


def _seeds(flag: str, n: int) -> None:
    from genclf.experiments import VAL_SEED0

    _count(flag, n, most=VAL_SEED0, why=f" (seeds from {VAL_SEED0} on are kept for validation shot sets)")


_WHOLE_SPLIT = "; leave it out to score the whole test split"


# ------------------------------------------------------------------ verbs


def cmd_eval(a) -> int:
    from genclf import data
    from genclf.experiments import report

    _count("--test-limit", a.test_limit, "image", remedy=_WHOLE_SPLIT)
    _seeds("--seeds", a.seeds)
    ds = data.load(a.dataset)
    out = _out_path(a, _results(ds.name) / "eval.csv")
    rows = report.run_eval(
        ds.name, a.backbone, a.head, a.shots, a.seeds, t=a.t, blocks=a.blocks, strategy=a.strategy,
        test_limit=a.test_limit, progress=_tqdm_progress("eval", "run"), feature_progress=_bars("features"),
    )  # fmt: skip
    path = _emit(rows, a, out)
    if a.json:
        return 0
    print(f"{'backbone':10} {'t':>10} {'head':10} {'shots':>5}  {'accuracy (%)':>13}  {'pixels+logreg':>13}  seeds")
    for key in dict.fromkeys((r["backbone"], str(r["t"]), r["head"], r["shots"]) for r in rows):
        rs = [r for r in rows if (r["backbone"], str(r["t"]), r["head"], r["shots"]) == key]
        acc = np.array([r["accuracy"] for r in rs]) * 100
        base = np.array([r["baseline_accuracy"] for r in rs]) * 100
        t = "-" if key[1] == "None" else key[1].replace(" ", "")
        print(f"{key[0]:10} {t:>10} {key[2]:10} {key[3]:5d}  {acc.mean():6.1f} ± {acc.std():4.1f}  "
              f"{base.mean():6.1f} ± {base.std():4.1f}  {len(rs)}")  # fmt: skip
    print(f"{len(rows)} runs ({a.strategy} shots, n_test={rows[0]['n_eval']}) -> {path}")
    return 0


def _print_sweep(res: dict, kind: str, path: Path) -> None:
    print(f"{kind:>28}  {'val acc (%)':>12}  {'CV in shots':>11}")
    for c in res["curve"]:
        name = "+".join(map(str, c["candidate"])) if isinstance(c["candidate"], list) else str(c["candidate"])
        print(f"{name:>28}  {100 * c['accuracy']:5.1f} ± {100 * c['std']:4.1f}  {_pct(c['cv_accuracy']):>11}")
    best, cv = res[f"best_{kind}"], res[f"best_{kind}_cv"]
    note = "" if cv is not None else " (needs at least 2 shots per class)"
    print(f"best {kind} on validation: {best}; best {kind} by cross-validation inside the {res['shots']} shots: {cv}{note}")
    print(f"{len(res['rows'])} rows -> {path}")


def _sweep(a, kind: str, run, **options) -> int:
    """sweep-t and sweep-blocks: check --out first, run `run` (experiments.sweep_<kind>), write the CSV, print the curve."""
    _count("--val-limit", a.val_limit, "image")
    _count("--seeds", a.seeds)
    out = _out_path(a, _results(a.dataset) / f"sweep_{kind}_{_safe(a.backbone)}.csv")
    res = run(a.dataset, a.backbone, a.head, a.shots, a.seeds, val_limit=a.val_limit,
              progress=_tqdm_progress(f"sweep-{kind}", "fit"), **options)  # fmt: skip
    path = _emit(res["rows"], a, out)
    if not a.json:
        _print_sweep(res, kind, path)
    return 0


def cmd_sweep_t(a) -> int:
    from genclf import experiments

    return _sweep(a, "t", experiments.sweep_t, grid=a.grid, blocks=a.blocks)


def cmd_sweep_blocks(a) -> int:
    from genclf import experiments

    seen: dict[frozenset, list[str]] = {}
    for c in a.blocks or []:  # each --blocks is one candidate set; the same set twice is the same work twice
        if frozenset(c) in seen:
            first = ",".join(seen[frozenset(c)])
            raise GenclfError(f"--blocks {','.join(c)} is repeated (as --blocks {first}); list each block set once")
        seen[frozenset(c)] = c
    return _sweep(a, "blocks", experiments.sweep_blocks, candidates=a.blocks, t=a.t)


def cmd_report(a) -> int:
    from genclf.experiments import report

    _count("--test-limit", a.test_limit, "image", remedy=_WHOLE_SPLIT)
    _seeds("--seeds", a.seeds)
    _seeds("--seeds-large", a.seeds_large)
    out = Path(a.out) if a.out else _results(a.dataset)
    _writable(out / "README.md")  # the folder must be writable before the hours of work, not after
    res = report.report(a.dataset, a.backbone, a.head, a.shots, a.seeds, test_limit=a.test_limit, out=out,
                        progress=_tqdm_progress("report", "run"), cnn=not a.no_cnn, seeds_large=a.seeds_large,
                        resume=a.resume)  # fmt: skip
    for name, path in res["paths"].items():
        print(f"{name:18} {path}")
    return 0


# ------------------------------------------------------------------ parser


def add_commands(sub) -> None:
    from genclf import data, experiments, heads
    from genclf.experiments import rows

    shots = ",".join(map(str, experiments.SHOTS))
    grid = ",".join(map(str, experiments.T_GRID))

    def common(p, many: bool) -> None:
        p.add_argument("--dataset", default=data.DEFAULT_DATASET)
        seeds = "test shot seeds 0..N-1" if many else f"validation shot seeds {rows.VAL_SEED0}..{rows.VAL_SEED0}+N-1"
        p.add_argument("--seeds", type=int, default=5 if many else 3, help=seeds)
        p.add_argument("--json", action="store_true", help="print the rows to stdout as a JSON list")
        p.add_argument("--out", help="CSV path (default results/<dataset>/...)")

    e = sub.add_parser("eval", help="few-shot accuracy for backbones x heads x shots x seeds (test split)")
    common(e, True)
    e.add_argument("--backbone", type=_str_list, default=["pixels"],
                   help="comma list, e.g. pixels,ddpm,vae; DATASET/NAME (e.g. fashion-mnist/ddpm) takes a backbone "
                        "trained on another dataset of the same image shape; 'cnn' = a small CNN trained from scratch "
                        "on the shots")  # fmt: skip
    e.add_argument("--head", type=_str_list, default=["logreg"], help=f"comma list of {', '.join(heads.HEADS)}")
    e.add_argument("--shots", type=_int_list, default=list(experiments.SHOTS), help=f"shots per class (default {shots})")
    e.add_argument("--t", type=_t_arg, default=None,
                   help=f"ddpm timestep 0..{T_MAX}, a comma list to fuse, or 'auto' (t and blocks chosen on validation); "
                        f"default {experiments.DEFAULT_T}")  # fmt: skip
    e.add_argument("--blocks", type=_str_list, default=None, help="comma-separated block names (one set)")
    e.add_argument("--strategy", default="random", help=f"how shots are chosen: {', '.join(experiments.STRATEGIES)}")
    e.add_argument("--test-limit", type=int, default=None, help="score a fixed stratified test subset of N images")
    e.set_defaults(fn=cmd_eval)

    for name, fn in (("sweep-t", cmd_sweep_t), ("sweep-blocks", cmd_sweep_blocks)):
        what = "t on a log-like grid" if name == "sweep-t" else "block sets"
        p = sub.add_parser(name, help=f"validation accuracy over {what} at fixed k and head; best by val and by CV in shots")
        common(p, False)
        p.add_argument("--backbone", default="ddpm" if name == "sweep-t" else None, required=name != "sweep-t")
        p.add_argument("--head", default="logreg", help=", ".join(heads.HEADS))
        p.add_argument("--shots", type=int, default=10, help="shots per class")
        p.add_argument("--val-limit", type=int, default=experiments.VAL_LIMIT, help="stratified validation subset size")
        if name == "sweep-t":
            p.add_argument("--grid", type=_int_list, default=list(experiments.T_GRID), help=f"timesteps (default {grid})")
            p.add_argument("--blocks", type=_str_list, default=None, help="comma-separated block names")
        else:
            p.add_argument(
                "--t", type=fixed_t_arg, default=None,
                help=f"timestep for ddpm 0..{T_MAX}, or a comma list to fuse (default {experiments.DEFAULT_T})",
            )  # fmt: skip
            p.add_argument(
                "--blocks", type=_str_list, action="append", default=None,
                help="one candidate block set (comma list); repeat for more; default: each block and pairs",
            )  # fmt: skip
        p.set_defaults(fn=fn)

    r = sub.add_parser("report", help="regenerate results/<dataset>/: CSVs, charts, markdown table")
    r.add_argument("--dataset", default=data.DEFAULT_DATASET)
    r.add_argument("--backbone", type=_str_list, default=None, help="default: every shipped backbone")
    r.add_argument("--head", type=_str_list, default=list(heads.HEADS))
    r.add_argument("--shots", type=_int_list, default=list(experiments.SHOTS))
    r.add_argument("--seeds", type=int, default=rows.SEEDS_SMALL, help=f"test seeds 0..N-1 at k <= {rows.SMALL_K}")
    r.add_argument("--seeds-large", type=int, default=rows.SEEDS_LARGE, help=f"test seeds at k > {rows.SMALL_K}")
    r.add_argument("--resume", action="store_true", help="reuse the runs already in the output folder's runs.csv")
    r.add_argument("--test-limit", type=int, default=None)
    r.add_argument("--out", help="output folder (default results/<dataset>)")
    r.add_argument("--no-cnn", action="store_true", help="skip the from-scratch CNN baseline (the slow part on a CPU)")
    r.set_defaults(fn=cmd_report)
