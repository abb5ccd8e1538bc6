"""Result tables: the eval grid, `--t auto`, tidy CSVs and the `results/<dataset>/` report.

    rows = run_eval("fashion-mnist", ["pixels", "ddpm"], ["logreg"], [1, 10], seeds=5, t="auto")
    report("fashion-mnist")   # results/fashion-mnist/{*.csv, label_efficiency.png, timestep.png, README.md}

Every choice -- t, blocks, head, and the "best generative pipeline" at each k -- is made on the
validation split; the test split only scores.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from genclf import data, experiments, features, heads
from genclf.backbones import BACKBONES, available
from genclf.backbones.ops import Progress
from genclf.errors import GenclfError
from genclf.experiments.charts import report_charts
from genclf.experiments.rows import SELECT_SEEDS, SELECT_SHOTS, cell, stats, write_csv

CNN = experiments.CNN


# ------------------------------------------------------------------ choices on validation


def select_config(dataset: str, backbone: str, head: str = "logreg", progress: Progress | None = None) -> dict:
    """t (if the backbone has one) then blocks, each by validation accuracy at k=SELECT_SHOTS."""
    bb = features.backbone(backbone, dataset)
    val_limit = experiments.VAL_LIMIT  # read at call time (tests shrink it)
    out = {"t": None, "blocks": bb.check_blocks(None), "sweep_t": None, "sweep_blocks": None}
    if bb.name == "pixels":
        return out
    if bb.has_t:
        out["sweep_t"] = experiments.sweep_t(
            dataset, backbone, head, SELECT_SHOTS, SELECT_SEEDS, experiments.T_GRID, val_limit=val_limit, progress=progress
        )
        out["t"] = out["sweep_t"]["best_t"]
    out["sweep_blocks"] = experiments.sweep_blocks(
        dataset, backbone, head, SELECT_SHOTS, SELECT_SEEDS, t=out["t"], val_limit=val_limit, progress=progress
    )
    out["blocks"] = out["sweep_blocks"]["best_blocks"]
    return out


def plan_t(dataset: str, backbones: list[str], t) -> dict[str, object]:
    """Per backbone, the t to run ('auto' is resolved later). An explicit t applies to backbones with t;
    if none of them has one it is an error (pixels, vae... take no t)."""
    bbs = {b: features.backbone("pixels" if b == experiments.CNN else b, dataset) for b in backbones}
    if t is None or t == "auto":
        return {b: (t if t == "auto" else experiments.resolve_t(bb, None)) for b, bb in bbs.items()}
    with_t = [b for b, bb in bbs.items() if bb.has_t]
    if not with_t:
        return {b: experiments.resolve_t(bb, t) for b, bb in bbs.items()}  # raises the right error
    return {b: (experiments.resolve_t(bb, t) if bb.has_t else None) for b, bb in bbs.items()}


def run_eval(
    dataset: str,
    backbones: list[str],
    head_names: list[str],
    shots: list[int],
    seeds: int,
    t=None,
    blocks: list[str] | None = None,
    strategy: str = "random",
    test_limit: int | None = None,
    progress: Progress | None = None,
    feature_progress: Progress | None = None,
) -> list[dict]:
    """few_shot over backbones x heads x shots x seeds; every input is checked before any compute."""
    ds = data.load(dataset)
    if not backbones:
        raise GenclfError("empty list of backbones; pass e.g. --backbone pixels,ddpm")
    for h in head_names or [None]:
        if h is None:
            raise GenclfError("empty list of heads; pass e.g. --head logreg,knn")
        heads.check_head(h)
    experiments.check_strategy(strategy)
    experiments.check_shots(ds, shots)
    if seeds < 1:
        raise GenclfError(f"--seeds must be at least 1, got {seeds}")
    ts = plan_t(dataset, backbones, t)
    if blocks:
        for b in backbones:
            features.backbone(b, dataset).check_blocks(blocks)
    per_b = {b: [experiments.CNN] if b == experiments.CNN else head_names for b in backbones}
    rows, total = [], sum(len(hs) for hs in per_b.values()) * len(shots) * seeds
    for b in backbones:
        for h in per_b[b]:
            tb, bl = ts[b], blocks
            if tb == "auto":
                sel = select_config(
                    dataset, b, h if h != "labelprop" else "logreg"
                )  # labelprop would need pool features per t
                tb, bl = sel["t"], blocks or sel["blocks"]
            for k in shots:
                for s in range(seeds):
                    r = experiments.row_of(
                        experiments.few_shot(dataset, b, h, k, s, tb, bl, strategy, test_limit, feature_progress)
                    )
                    r["t_choice"] = "auto" if ts[b] == "auto" else ("default" if t is None and tb is not None else "given")
                    rows.append(r)
                    if progress:
                        progress(len(rows), total, {"acc": r["accuracy"]})
    return rows


# ------------------------------------------------------------------ the report


def _pipelines(dataset: str, names: list[str], head_names: list[str], progress) -> tuple[list, list, list, list]:
    """Val-chosen (t, blocks) per backbone, plus a fusion of its 3 best t.

    Returns (pipelines, t sweep rows, block sweep rows, choices)."""
    pipes, t_rows, b_rows, choices = [], [], [], []
    for b in names:
        sel = select_config(dataset, b, "logreg", progress)
        st, sb = sel["sweep_t"], sel["sweep_blocks"]
        t_rows += st["rows"] if st else []
        b_rows += sb["rows"] if sb else []
        variants = [(sel["t"], b)]
        if st:
            top = sorted(st["curve"], key=lambda c: -c["accuracy"])[:3]
            variants.append((sorted(c["candidate"] for c in top), f"{b} fusion"))
        choices.append({"backbone": b, "t": sel["t"], "t_cv": st and st["best_t_cv"], "blocks": sel["blocks"],
                        "blocks_cv": sb["best_blocks_cv"], "fusion": variants[1][0] if st else None})  # fmt: skip
        for tv, label in variants:
            pipes += [dict(backbone=b, t=tv, blocks=sel["blocks"], head=h, label=f"{label} + {h}") for h in head_names]
    return pipes, t_rows, b_rows, choices


def _run_pipeline(ds, p: dict, k: int, seed: int, strategy: str, test_limit, val_limit) -> list[dict]:
    """One shot set, one fitted head, scored on val (for choices) and test (for the table)."""
    E = experiments
    t0 = time.time()
    name = "pixels" if p["backbone"] == CNN else p["backbone"]
    bb = features.backbone(name, ds.name)
    xv, iv = E.eval_features(ds, name, "val", val_limit, p["t"], p["blocks"])
    xt, it = E.eval_features(ds, name, "test", test_limit, p["t"], p["blocks"])
    sidx, xs = E.choose_shots(ds, bb, k, seed, strategy, p["t"], p["blocks"])
    xu = E.unlabeled_features(ds, bb, sidx, p["t"], p["blocks"]) if p["head"] == "labelprop" else None
    if p["backbone"] == CNN:
        images = np.concatenate([ds.x_train[iv], ds.x_test[it]])
        pred = heads.cnn_fit_predict(ds.x_train[sidx], ds.y_train[sidx], images, seed=seed, hflip=ds.hflip)
    else:
        std = bb.name != "pixels"
        pred = heads.fit_predict(
            p["head"], xs, ds.y_train[sidx], np.concatenate([xv, xt]), seed=seed, x_unlabeled=xu, standardize=std
        )
    chash = CNN if p["backbone"] == CNN else E.config_hash(bb)
    base = {"dataset": ds.name, "backbone": p["backbone"], "config_hash": chash, "t": p["t"],
            "blocks": p["blocks"], "head": p["head"], "shots": k, "seed": seed, "strategy": strategy}  # fmt: skip
    secs, stamp = round(time.time() - t0, 3), time.strftime("%Y-%m-%dT%H:%M:%S")
    out = []
    for split, idx, pr, y in (("val", iv, pred[: len(xv)], ds.y_train), ("test", it, pred[len(xv) :], ds.y_test)):
        acc, base_acc = float((pr == y[idx]).mean()), E.baseline_accuracy(ds, sidx, split, idx, seed)
        out.append({**base, "split": split, "n_eval": len(idx), "accuracy": acc, "baseline_accuracy": base_acc,
                    "seconds": secs, "time": stamp, "pipeline": p["label"]})  # fmt: skip
    return out


def report(
    dataset: str,
    backbones: list[str] | None = None,
    head_names: list[str] | tuple[str, ...] = heads.HEADS,
    shots: list[int] | tuple[int, ...] = experiments.SHOTS,
    seeds: int = 5,
    test_limit: int | None = None,
    out: Path | str | None = None,
    progress: Progress | None = None,
    command: str | None = None,
    cnn: bool = True,
) -> dict:
    """Regenerate results/<dataset>/ from the shipped backbones (see module docstring). Returns paths and the table.

    `command`: how to regenerate, written into the markdown (default: the equivalent `genclf report` line).
    `cnn`: include the from-scratch CNN baseline (the slowest part on a CPU)."""
    ds = data.load(dataset)
    shots = experiments.check_shots(ds, shots)
    for h in head_names:
        heads.check_head(h)
    out = Path(out or Path("results") / data.slug(ds.name))
    names = backbones or [n for n in available(dataset) if n in BACKBONES and n != "pixels"]
    names = [n for n in names if n != "pixels"]
    pipes, t_rows, b_rows, choices = _pipelines(dataset, names, list(head_names), progress)
    # the baselines: REFERENCE.md's pixels + logreg and + 1-NN, and pixels + labelprop when generative features get it
    pixel_heads = ["logreg", "knn"] + (["labelprop"] if "labelprop" in head_names else [])
    pipes = [{"backbone": "pixels", "t": None, "blocks": ["pixels"], "head": h, "label": f"pixels + {h}"}
             for h in pixel_heads] + pipes  # fmt: skip
    if cnn:
        cnn_pipe = {"backbone": CNN, "t": None, "blocks": ["pixels"], "head": CNN, "label": "cnn from scratch"}
        pipes.insert(len(pixel_heads), cnn_pipe)
    val_limit = experiments.VAL_LIMIT
    rows, total, done = [], len(pipes) * len(shots) * seeds, 0
    for k in shots:
        for s in range(seeds):
            for p in pipes:
                rows += _run_pipeline(ds, p, k, s, "random", test_limit, val_limit)
                done += 1
                if progress:
                    progress(done, total, {"k": k})
    gen = [p["label"] for p in pipes if p["backbone"] not in ("pixels", CNN)]
    best = {k: max(gen, key=lambda lab, k=k: stats(rows, lab, k, "val")[0]) for k in shots} if gen else {}
    # representative vs random at the same budget, for the baseline and the pipeline chosen at k=SELECT_SHOTS
    ref_k = SELECT_SHOTS if SELECT_SHOTS in best else shots[0]
    strat_pipes = [p for p in pipes if p["label"] in ("pixels + logreg", best.get(ref_k))]
    for k in shots:
        for s in range(seeds):
            for p in strat_pipes:
                rows += _run_pipeline(ds, p, k, s, "representative", test_limit, val_limit)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"runs": write_csv(rows, out / "runs.csv")}
    if t_rows:
        paths["timestep_csv"] = write_csv(t_rows, out / "timestep.csv")
    if b_rows:
        paths["blocks_csv"] = write_csv(b_rows, out / "blocks.csv")
    paths.update(report_charts(out, rows, pipes, best, shots, t_rows))
    if command is None:
        command = f"genclf report --dataset {ds.name}" + (f" --backbone {','.join(backbones)}" if backbones else "")
        command += "" if tuple(head_names) == heads.HEADS else f" --head {','.join(head_names)}"
        command += "" if tuple(shots) == experiments.SHOTS else f" --shots {','.join(map(str, shots))}"
        command += "" if seeds == 5 else f" --seeds {seeds}"
        command += "" if test_limit is None else f" --test-limit {test_limit}"
        command += "" if cnn else " --no-cnn"
    ctx = dict(name=ds.name, rows=rows, pipes=pipes, best=best, shots=shots, t_rows=t_rows, b_rows=b_rows,
               strat_pipes=strat_pipes, seeds=seeds, choices=choices, command=command)  # fmt: skip
    paths["markdown"] = _markdown(out, **ctx)
    return {"paths": paths, "best": best, "rows": rows, "choices": choices}


# ------------------------------------------------------------------ markdown


def _pct(m: float, s: float) -> str:
    return "–" if np.isnan(m) else f"{100 * m:.1f} ± {100 * s:.1f}"


def _markdown(out: Path, name, rows, pipes, best, shots, t_rows, b_rows, strat_pipes, seeds, choices, command) -> Path:
    head = " | ".join(str(k) for k in shots)
    lines = [
        f"# Few-shot results on {name}",
        "",
        f"Regenerate with `{command}` ({time.strftime('%Y-%m-%d')}). Test accuracy (%), mean ± std over "
        f"{seeds} seeds of random stratified k-shot sets; t, blocks and the best pipeline per k are chosen on the "
        "validation split, never on test.",
        "",
        "![label efficiency](label_efficiency.png)",
        "",
        f"| pipeline (test) | {head} |",
        "|---|" + "---|" * len(shots),
    ]
    for p in pipes:
        lines.append(f"| {p['label']} | " + " | ".join(_pct(*stats(rows, p["label"], k, "test")[:2]) for k in shots) + " |")
    if best:
        lines.append(
            "| **best generative (chosen on val)** | "
            + " | ".join(_pct(*stats(rows, best[k], k, "test")[:2]) for k in shots)
            + " |"
        )
        lines.append("| chosen pipeline | " + " | ".join(best[k] for k in shots) + " |")
        base = {k: stats(rows, "pixels + logreg", k, "test")[0] for k in shots}
        gap = {k: stats(rows, best[k], k, "test")[0] - base[k] for k in shots}
        lines.append("| lead over pixels + logreg (points) | " + " | ".join(f"{100 * gap[k]:+.1f}" for k in shots) + " |")
        ok = all(gap[k] >= 0.08 for k in shots if k <= 10) and all(gap[k] >= 0 for k in shots if k <= 100)
        lines += ["", f"The bar (lead >= 8 points at k <= 10, never behind up to k = 100): **{'met' if ok else 'not met'}**."]
    if choices:
        lines += ["", f"## Choices (validation split, logreg, k = {SELECT_SHOTS}, {SELECT_SEEDS} seeds)", "",
                  "| backbone | t (val) | t (CV inside shots only) | blocks (val) | blocks (CV inside shots) | fusion |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for c in choices:
            cells = [cell(c[k]) or "–" for k in ("backbone", "t", "t_cv", "blocks", "blocks_cv", "fusion")]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Choosing the labeled images", "", f"| pipeline, strategy | {head} |", "|---|" + "---|" * len(shots)]
    for p in strat_pipes:
        for st in experiments.STRATEGIES:
            cells = " | ".join(_pct(*stats(rows, p["label"], k, "test", st)[:2]) for k in shots)
            lines.append(f"| {p['label']}, {st} | {cells} |")
    if t_rows:
        lines += [
            "",
            f"## Timestep (validation, logreg, k = {SELECT_SHOTS})",
            "",
            "![timestep](timestep.png)",
            "",
            "| backbone | t | val accuracy | CV inside shots |",
            "|---|---|---|---|",
        ]
        for b in dict.fromkeys(r["backbone"] for r in t_rows):
            for c in experiments.summarize([{"candidate": r["t"], **r} for r in t_rows if r["backbone"] == b]):
                cv = "–" if c["cv_accuracy"] is None else f"{100 * c['cv_accuracy']:.1f}"
                lines.append(f"| {b} | {cell(c['candidate'])} | {_pct(c['accuracy'], c['std'])} | {cv} |")
    if b_rows:
        lines += [
            "",
            f"## Blocks (validation, logreg, k = {SELECT_SHOTS})",
            "",
            "| backbone | blocks | val accuracy |",
            "|---|---|---|",
        ]
        for b in dict.fromkeys(r["backbone"] for r in b_rows):
            for c in experiments.summarize([{"candidate": r["blocks"], **r} for r in b_rows if r["backbone"] == b]):
                lines.append(f"| {b} | {cell(c['candidate'])} | {_pct(c['accuracy'], c['std'])} |")
    path = out / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path
