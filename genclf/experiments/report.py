"""Result tables: the eval grid, `--t auto`, tidy CSVs and the `results/<dataset>/` report.

    rows = run_eval("fashion-mnist", ["pixels", "ddpm"], ["logreg"], [1, 10], seeds=5, t="auto")
    report("fashion-mnist")   # results/fashion-mnist/{*.csv, label_efficiency.png, timestep.png, README.md}

Every choice -- t, blocks, head, and the "best generative pipeline" at each k -- is made on the
validation split; the test split only scores.
"""

from __future__ import annotations

import time
from pathlib import Path

from genclf import data, experiments, features, heads
from genclf.backbones import BACKBONES, available
from genclf.backbones.ops import Progress
from genclf.errors import GenclfError
from genclf.experiments.charts import report_charts
from genclf.experiments.markdown import lead_rows, write_markdown
from genclf.experiments.rows import (
    BASELINE,
    CHOICE_SEEDS,
    SEEDS_LARGE,
    SEEDS_SMALL,
    SELECT_SEEDS,
    SELECT_SHOTS,
    best_on_val,
    cell,
    generative,
    read_csv,
    scoring_seeds,
    seeds_for,
    val_seeds,
    write_csv,
    write_table,
)

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
                for s in scoring_seeds(seeds):
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


def _run_pipeline(ds, p: dict, k: int, seed: int, strategy: str, split: str, limit) -> dict:
    """One shot set, one fitted head, scored on `split`: 'val' (seeds from VAL_SEED0, for choices) or 'test'."""
    E = experiments
    t0 = time.time()
    name = "pixels" if p["backbone"] == CNN else p["backbone"]
    bb = features.backbone(name, ds.name)
    xe, ie = E.eval_features(ds, name, split, limit, p["t"], p["blocks"])
    sidx, xs = E.choose_shots(ds, bb, k, seed, strategy, p["t"], p["blocks"])
    xu = E.unlabeled_features(ds, bb, sidx, p["t"], p["blocks"]) if p["head"] == "labelprop" else None
    src_x, src_y = (ds.x_test, ds.y_test) if split == "test" else (ds.x_train, ds.y_train)
    if p["backbone"] == CNN:
        pred = heads.cnn_fit_predict(ds.x_train[sidx], ds.y_train[sidx], src_x[ie], seed=seed, hflip=ds.hflip)
    else:
        std = bb.name != "pixels"
        pred = heads.fit_predict(p["head"], xs, ds.y_train[sidx], xe, seed=seed, x_unlabeled=xu, standardize=std)
    chash = CNN if p["backbone"] == CNN else E.config_hash(bb)
    return {"dataset": ds.name, "backbone": p["backbone"], "config_hash": chash, "t": p["t"], "blocks": p["blocks"],
            "head": p["head"], "shots": k, "seed": seed, "strategy": strategy, "split": split, "n_eval": len(ie),
            "accuracy": float((pred == src_y[ie]).mean()),
            "baseline_accuracy": E.baseline_accuracy(ds, sidx, split, ie, seed), "seconds": round(time.time() - t0, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "pipeline": p["label"]}  # fmt: skip


def _key(r: dict) -> tuple:
    """What makes a run the same run (for --resume): pipeline, its config, the shots and where it scored."""
    return (r["pipeline"], str(r["config_hash"]), cell(r["t"]), cell(r["blocks"]), int(r["shots"]), int(r["seed"]),
            r["split"], r["strategy"], int(r["n_eval"]))  # fmt: skip


def report(
    dataset: str,
    backbones: list[str] | None = None,
    head_names: list[str] | tuple[str, ...] = heads.HEADS,
    shots: list[int] | tuple[int, ...] = experiments.SHOTS,
    seeds: int = SEEDS_SMALL,
    test_limit: int | None = None,
    out: Path | str | None = None,
    progress: Progress | None = None,
    command: str | None = None,
    cnn: bool = True,
    seeds_large: int = SEEDS_LARGE,
    resume: bool = False,
) -> dict:
    """Regenerate results/<dataset>/ from the shipped backbones (see module docstring). Returns paths and the table.

    Test scoring uses seeds 0..seeds-1 at k <= SMALL_K and 0..seeds_large-1 above; the best pipeline per k is
    chosen on validation shot sets of their own (CHOICE_SEEDS seeds from VAL_SEED0), never on a scored one.
    `command`: how to regenerate, written into the markdown (default: the equivalent `genclf report` line).
    `cnn`: include the from-scratch CNN baseline (the slowest part on a CPU).
    `resume`: reuse the runs already in `out`/runs.csv with the same pipeline, config, shots and split."""
    ds = data.load(dataset)
    shots = experiments.check_shots(ds, shots)
    for h in head_names:
        heads.check_head(h)
    n_test = {k: len(scoring_seeds(seeds_for(k, seeds, seeds_large))) for k in shots}
    out = Path(out or Path("results") / data.slug(ds.name))
    # every shipped or trained backbone registered for this dataset (a new one, e.g. simclr, joins by itself)
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
    out.mkdir(parents=True, exist_ok=True)
    old = {}
    if resume and (out / "runs.csv").is_file():
        old = {_key(r): r for r in read_csv(out / "runs.csv")}
    rows: list[dict] = []
    gen = [p["label"] for p in pipes if generative(p["backbone"])]  # simclr competes, but is not "best generative"
    jobs = [(p, k, s, "random", "val", val_limit) for k in shots for s in val_seeds(CHOICE_SEEDS) for p in pipes
            if p["backbone"] != CNN]  # fmt: skip
    jobs += [(p, k, s, "random", "test", test_limit) for k in shots for s in range(n_test[k]) for p in pipes]

    def run(job) -> None:
        p, k, s, strategy, split, limit = job
        r = None
        if old:
            chash = CNN if p["backbone"] == CNN else experiments.config_hash(features.backbone(p["backbone"], ds.name))
            n_eval = len(experiments.eval_indices(ds, split, limit))
            r = old.pop((p["label"], chash, cell(p["t"]), cell(p["blocks"]), k, s, split, strategy, n_eval), None)
        rows.append(r or _run_pipeline(ds, p, k, s, strategy, split, limit))
        if r is None and len(rows) % 50 == 0:  # partial results survive an interrupted run (see `resume`)
            write_csv(rows + list(old.values()), out / "runs.csv")

    for i, job in enumerate(jobs):
        run(job)
        if progress:
            progress(i + 1, len(jobs), {"k": job[1], "split": job[4]})
    best = {k: b for k in shots if (b := best_on_val(rows, gen, k))}
    # representative vs random at the same budget, for the baseline and the pipeline chosen at k=SELECT_SHOTS
    ref_k = SELECT_SHOTS if SELECT_SHOTS in best else shots[0]
    strat_pipes = [p for p in pipes if p["label"] in (BASELINE, best.get(ref_k))]
    jobs = [(p, k, s, "representative", "test", test_limit) for k in shots for s in range(n_test[k]) for p in strat_pipes]
    for i, job in enumerate(jobs):
        run(job)
        if progress:
            progress(i + 1, len(jobs), {"k": job[1], "strategy": "representative"})
    paths = {"runs": write_csv(rows, out / "runs.csv")}
    if t_rows:
        paths["timestep_csv"] = write_csv(t_rows, out / "timestep.csv")
    if b_rows:
        paths["blocks_csv"] = write_csv(b_rows, out / "blocks.csv")
    paths["leads_csv"] = write_table(lead_rows(rows, [p["label"] for p in pipes], best, shots), out / "leads.csv")
    paths.update(report_charts(out, rows, pipes, best, shots, t_rows))
    if command is None:
        command = f"genclf report --dataset {ds.name}" + (f" --backbone {','.join(backbones)}" if backbones else "")
        command += "" if tuple(head_names) == heads.HEADS else f" --head {','.join(head_names)}"
        command += "" if tuple(shots) == experiments.SHOTS else f" --shots {','.join(map(str, shots))}"
        command += "" if seeds == SEEDS_SMALL else f" --seeds {seeds}"
        command += "" if seeds_large == SEEDS_LARGE else f" --seeds-large {seeds_large}"
        command += "" if test_limit is None else f" --test-limit {test_limit}"
        command += "" if cnn else " --no-cnn"
    ctx = dict(name=ds.name, rows=rows, pipes=pipes, best=best, shots=shots, t_rows=t_rows, b_rows=b_rows,
               strat_pipes=strat_pipes, n_test=n_test, choices=choices, command=command)  # fmt: skip
    paths["markdown"] = write_markdown(out, **ctx)
    return {"paths": paths, "best": best, "rows": rows, "choices": choices}
