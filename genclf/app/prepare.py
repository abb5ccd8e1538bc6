"""`genclf prepare`: compute ahead everything the dashboard's pages read, so that the pages only read.

    steps = plan("fashion-mnist", ["ddpm", "vae"])      # what a demo touches, in the order a visitor meets it
    run(steps, progress)                                # idempotent and resumable: finished steps are skipped

Per backbone (the first one first): features of the Explore sample (DEFAULT_N images) at every grid t
with their 2D/3D UMAP and PCA layouts, the Few-shot features at the default t (the whole test split, the
unlabeled pool, the shots of seed 0 at every k, the validation images and shot sets behind the page's
validation figure at k=10), the default Timestep sweep, the features of Few-shot's default run at the other
grid t, then the same Explore views for the larger sample (EXPLORE_N). Every artifact lands in the
content-addressed cache (features per chunk of the test split, layouts, sweeps), so a killed run loses at
most the step it was in.

The default t is the best validation t of the default sweep (`default_t`): from the cache once the sweep
ran, else the value recorded beside the shipped layouts, else experiments.DEFAULT_T.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from genclf import data, experiments, explore, features
from genclf.atomic import write_json
from genclf.cache import Cache, cache_root, make_key
from genclf.errors import GenclfError

log = logging.getLogger(__name__)

DEFAULT_N = 2000  # the Explore sample a first visit shows
EXPLORE_N = (DEFAULT_N, 5000)  # sample sizes prepared (5,000: the "more images" step of a demo)
LAYOUTS = (("umap", 2), ("pca", 2), ("umap", 3), ("pca", 3))
SWEEP = {"head": "logreg", "shots": 10, "seeds": 3}  # the Timestep page's defaults
FEWSHOT_SEED = 0
FEWSHOT = {"head": "logreg", "shots": 10, "strategy": "random", "val_seeds": 3}  # the Few-shot page's defaults
SHOT_TAG = {"split": "shots"}  # experiments.choose_shots' cache tag for random shots
VAL_TAG = {"split": "val", "limit": experiments.VAL_LIMIT}  # experiments.validate's validation images
# rough seconds per unit on the 2-core reference machine, only for the ETA (it recalibrates as steps finish)
RATE = {"ddpm": 250.0, "pixels": 200_000.0}  # images/s of feature extraction; others: DEFAULT_RATE
DEFAULT_RATE = 4000.0
UMAP_S_PER_POINT = 0.0012


@dataclass
class Step:
    """One unit of preparation: `run(progress)` computes it; `done()` says whether it is already on disk."""

    name: str
    cost: float  # estimated seconds, for the ETA
    done: Callable[[], bool]
    run: Callable  # run(progress) with progress(done, total, info)
    order: tuple = ()


# ------------------------------------------------------------------ the default sweep, cached on disk


def sweep_params(dataset: str, backbone: str, **over) -> dict:
    """The Timestep page's default sweep for a backbone (what `prepare` computes)."""
    return {"dataset": dataset, "backbone": backbone, **SWEEP, "grid": list(experiments.T_GRID), "blocks": None, **over}


def _sweep_parts(p: dict) -> dict:
    bb = features.backbone(p["backbone"], p["dataset"])
    return {
        "data": data.load(p["dataset"]).fingerprint,
        "weights": experiments.config_hash(bb),
        "head": p["head"],
        "shots": int(p["shots"]),
        "seeds": int(p["seeds"]),
        "grid": p["grid"],
        "blocks": bb.check_blocks(list(p["blocks"]) if p.get("blocks") else None),
        "val_limit": p.get("val_limit", experiments.VAL_LIMIT),
    }


def sweep_cached(p: dict) -> dict | None:
    """A sweep_t result for these parameters from the cache (kind "sweep": its JSON as bytes), or None. Never computes."""
    hit = Cache().read("sweep", make_key("sweep", _sweep_parts(p)))
    return None if hit is None else json.loads(hit["json"].tobytes())


def sweep(p: dict, progress=None) -> dict:
    """experiments.sweep_t for these parameters (dataset, backbone, head, shots, seeds, grid, blocks), cached on disk."""

    def compute() -> dict:
        grid = [list(g) if isinstance(g, list | tuple) else int(g) for g in p["grid"]]
        res = experiments.sweep_t(
            p["dataset"],
            p["backbone"],
            p["head"],
            int(p["shots"]),
            int(p["seeds"]),
            grid,
            list(p["blocks"]) if p.get("blocks") else None,
            val_limit=p.get("val_limit", experiments.VAL_LIMIT),
            progress=progress,
        )
        blob = json.dumps(res, default=lambda o: o.item() if hasattr(o, "item") else str(o)).encode()
        return {"json": np.frombuffer(blob, np.uint8)}

    return json.loads(Cache().get_or_compute("sweep", _sweep_parts(p), compute)["json"].tobytes())


def default_t(dataset: str, backbone: str) -> int | None:
    """The best validation t of the default sweep (cached, else the one shipped with the layouts), else DEFAULT_T."""
    bb = features.backbone(backbone, dataset)
    if not bb.has_t:
        return None
    res = sweep_cached(sweep_params(dataset, backbone))
    if res is not None and isinstance(res.get("best_t"), int):
        return int(res["best_t"])
    name = Path(backbone).name if "/" in backbone else backbone
    shipped = explore.shipped.best_t(dataset, name) if backbone == name else None
    return shipped if shipped is not None else experiments.DEFAULT_T


# ------------------------------------------------------------------ the plan


def _rate(bb) -> float:
    return RATE.get(bb.name, DEFAULT_RATE)


def _explore_steps(dataset: str, backbone: str, bb, n: int, ts: list, order: tuple, layouts=LAYOUTS) -> list[Step]:
    ds = data.load(dataset)
    n = min(n, len(ds.y_test))
    steps = []
    for j, t in enumerate(ts):
        base = explore.View(dataset, backbone, t, None, n)
        tt = "" if t is None else f" t={t}"
        steps.append(
            Step(
                f"{bb.name}{tt} · features of {n:,} test images",
                n / _rate(bb),
                lambda base=base: explore.features_ready(base),
                lambda progress, base=base: explore.feats(base, progress),
                (*order, j, 0),
            )
        )
        for i, (method, dim) in enumerate(layouts):
            v = replace(base, method=method, dim=dim)
            steps.append(
                Step(
                    f"{bb.name}{tt} · {method.upper()} {dim}D of {n:,} images",
                    n * UMAP_S_PER_POINT if method == "umap" else 0.05,
                    lambda v=v: explore.layout(v) is not None,
                    lambda progress, v=v: explore.compute(v),
                    (*order, j, 1 + i),
                )
            )
    return steps


def _fewshot_steps(dataset: str, backbone: str, bb, known_t, order: tuple) -> list[Step]:
    """Few-shot's features at the default t; `known_t` is that t when a sweep (or the shipped record) knows it,
    else None: then the t is read when the step runs, after this backbone's sweep."""
    ds = data.load(dataset)
    blocks = bb.check_blocks(None)
    t_of = (lambda: known_t) if known_t is not None or not bb.has_t else (lambda: default_t(dataset, backbone))
    tt = "" if not bb.has_t else f" t={known_t}" if known_t is not None else " (best t)"
    n_test = len(ds.y_test)
    pool = experiments.pool_indices(ds)
    pool_tag = {"split": "pool-uniform", "limit": len(pool)}
    most = data.max_shots(ds.y_train, data.splits(ds).pool)
    shots = [k for k in experiments.SHOTS if k <= most]
    shot_sets = {k: data.shot_indices(ds, k, FEWSHOT_SEED) for k in shots}
    ks = ", ".join(map(str, shots))
    return [
        Step(
            f"{bb.name}{tt} · features of the whole test split ({n_test:,})",
            n_test / _rate(bb),
            lambda: features.is_cached(dataset, backbone, t_of(), blocks, "test", None),
            lambda progress: features.extract(dataset, backbone, t=t_of(), blocks=blocks, split="test", progress=progress),
            (*order, 0),
        ),
        Step(
            f"{bb.name}{tt} · features of the unlabeled pool ({len(pool):,})",
            len(pool) / _rate(bb),
            lambda: features.array_cached(bb, ds, ds.x_train[pool], t_of(), blocks, 0, pool_tag),
            lambda progress: experiments.pool_features(ds, bb, t_of(), blocks, progress),
            (*order, 1),
        ),
        Step(
            f"{bb.name}{tt} · features of the labeled shots (k = {ks}; seed {FEWSHOT_SEED})",
            sum(len(v) for v in shot_sets.values()) / _rate(bb),
            lambda: all(features.array_cached(bb, ds, ds.x_train[i], t_of(), blocks, 0, SHOT_TAG) for i in shot_sets.values()),
            lambda progress: [
                experiments.choose_shots(ds, bb, k, FEWSHOT_SEED, "random", t_of(), blocks, progress) for k in shot_sets
            ],
            (*order, 2),
        ),
        _validation_step(dataset, backbone, bb, t_of, tt, (*order, 3)),
    ]


def _val_shot_sets(ds) -> list[np.ndarray]:
    return [data.shot_indices(ds, FEWSHOT["shots"], s) for s in experiments.val_seeds(FEWSHOT["val_seeds"])]


def validation_cached(ds, bb, t, blocks) -> bool:
    """Whether the Few-shot page's validation figure at its default k reads only: the validation images and the
    validation shot sets' features at t are on disk (the default sweep computes them at its grid t)."""
    val = ds.x_train[experiments.eval_indices(ds, "val", experiments.VAL_LIMIT)]
    return features.array_cached(bb, ds, val, t, blocks, 0, VAL_TAG) and all(
        features.array_cached(bb, ds, ds.x_train[i], t, blocks, 0, SHOT_TAG) for i in _val_shot_sets(ds)
    )


def _validation_step(dataset: str, backbone: str, bb, t_of, tt: str, order: tuple) -> Step:
    ds = data.load(dataset)
    blocks = bb.check_blocks(None)
    n_val = len(experiments.eval_indices(ds, "val", experiments.VAL_LIMIT))

    def run(progress) -> None:
        experiments.eval_features(ds, backbone, "val", experiments.VAL_LIMIT, t_of(), blocks, progress)
        for idx in _val_shot_sets(ds):
            experiments.train_features(ds, bb, idx, t_of(), blocks, SHOT_TAG, progress)

    k, n = FEWSHOT["shots"], FEWSHOT["val_seeds"]
    return Step(
        f"{bb.name}{tt} · features of the validation images ({n_val:,}) and {n} validation shot sets (k = {k})",
        (n_val + n * k * ds.n_classes) / _rate(bb),
        lambda: validation_cached(ds, bb, t_of(), blocks),
        run,
        order,
    )


def _fewshot_grid_step(dataset: str, backbone: str, bb, t: int, order: tuple) -> Step:
    """Few-shot's default run at another grid t reads only, too: its seed's shots and the validation figure's images
    (the test images it scores on are the Explore sample's, prepared at every grid t)."""
    ds = data.load(dataset)
    blocks = bb.check_blocks(None)
    val = _validation_step(dataset, backbone, bb, lambda: t, f" t={t}", order)
    shots = data.shot_indices(ds, FEWSHOT["shots"], FEWSHOT_SEED)

    def run(progress) -> None:
        val.run(progress)
        experiments.train_features(ds, bb, shots, t, blocks, SHOT_TAG, progress)

    return Step(
        f"{bb.name} t={t} · Few-shot's features at k = {FEWSHOT['shots']}: shots (seed {FEWSHOT_SEED}), validation",
        val.cost + len(shots) / _rate(bb),
        lambda: val.done() and features.array_cached(bb, ds, ds.x_train[shots], t, blocks, 0, SHOT_TAG),
        run,
        order,
    )


def _sweep_step(dataset: str, backbone: str, bb, order: tuple) -> Step:
    p = sweep_params(dataset, backbone)
    n_val = min(experiments.VAL_LIMIT or 10**9, len(data.splits(data.load(dataset)).val))
    images = len(p["grid"]) * (n_val + p["seeds"] * p["shots"] * data.load(dataset).n_classes)
    return Step(
        f"{bb.name} · Timestep sweep ({len(p['grid'])} t × {p['seeds']} seeds, k={p['shots']}, {p['head']})",
        images / _rate(bb),
        lambda: sweep_cached(p) is not None,
        lambda progress: sweep(p, progress),
        order,
    )


def plan(dataset: str, backbones: list[str], sizes: tuple[int, ...] = EXPLORE_N, layouts=LAYOUTS) -> list[Step]:
    """Every step for these backbones, in the order a visitor needs them: the first backbone's default
    sample at its default t, its Few-shot features, the rest of its grid, its sweep; then the other
    backbones' default samples; then the larger samples."""
    if not backbones:
        raise GenclfError("no backbone to prepare; pass e.g. --backbones ddpm,vae")
    n_test = len(data.load(dataset).y_test)  # (and a clear error for a missing dataset before anything else)
    sizes = tuple(dict.fromkeys(min(n, n_test) for n in sizes))
    steps: list[Step] = []
    for rank, name in enumerate(backbones):
        bb = features.backbone(name, dataset)
        t0 = default_t(dataset, name)
        swept = bb.has_t and sweep_cached(sweep_params(dataset, name)) is not None
        known = not bb.has_t or swept or explore.shipped.best_t(dataset, name) is not None
        ts = [t0] + [t for t in explore.grid(True) if t != t0] if bb.has_t else [None]
        a, b = (0, 1) if rank == 0 else (2, 2)  # tiers: the first backbone's default view and Few-shot come first
        steps += _explore_steps(dataset, name, bb, sizes[0], ts[:1], (a, rank, 0), layouts)
        # Few-shot reads the best t: when no sweep says which it is yet, its features wait for the sweep
        steps += _fewshot_steps(dataset, name, bb, t0 if known else None, (a, rank, 1) if known else (b, rank, 4))
        steps += _explore_steps(dataset, name, bb, sizes[0], ts[1:], (b, rank, 2), layouts)
        if bb.has_t:
            steps.append(_sweep_step(dataset, name, bb, (b, rank, 3)))
            # after the sweep, which computes most of them (its grid t); the rest of the slider's t here
            steps += [_fewshot_grid_step(dataset, name, bb, t, (b, rank, 3, j)) for j, t in enumerate(ts[1:], 1)]
        for n in sizes[1:]:
            steps += _explore_steps(dataset, name, bb, n, ts, (3, rank, 5), layouts)
    return sorted(steps, key=lambda s: s.order)


def run(steps: list[Step], progress=None, on_step=None) -> dict:
    """Run the steps not done yet; progress(done, total, info) in estimated seconds (info: the step, the ETA).

    Returns {"steps": n, "ran": n run, "seconds": wall time}."""
    t0 = time.time()
    todo = [s for s in steps if not s.done()]
    total = sum(s.cost for s in todo) or 1.0
    spent = 0.0
    if progress:
        progress(0, total, {"step": todo[0].name if todo else "nothing to do", "ran": 0, "of": len(todo)})
    for i, s in enumerate(todo):
        if on_step:
            on_step(i, len(todo), s)
        info = {"step": s.name, "ran": i, "of": len(todo)}
        inner = None
        if progress:
            inner = lambda d, tot, _info=None, base=spent, s=s, info=info: progress(  # noqa: E731
                base + s.cost * min(1.0, d / max(tot, 1)), total, info
            )
        if not s.done():  # another process (the dashboard's own preparation) may have done it meanwhile
            s.run(inner)
        spent += s.cost
        if progress:
            progress(spent, total, {**info, "ran": i + 1})
    return {"steps": len(steps), "ran": len(todo), "seconds": round(time.time() - t0, 1)}


def prepare(dataset: str, backbones: list[str], progress=None, on_step=None, **plan_options) -> dict:
    """plan + run; a second pass covers the Few-shot features at a best t that the sweep just changed."""
    out = run(plan(dataset, backbones, **plan_options), progress, on_step)
    again = plan(dataset, backbones, **plan_options)
    if any(not s.done() for s in again):
        more = run(again, progress, on_step)
        out = {"steps": out["steps"], "ran": out["ran"] + more["ran"], "seconds": out["seconds"] + more["seconds"]}
    return out


def record(dataset: str, backbones: list[str], out: dict, seconds: float) -> Path:
    """Keep the wall time of a `genclf prepare` run beside the cache (bench/dashboard.py quotes the last full one)."""
    import os

    f = cache_root() / ".prepare" / f"{dataset}.json"
    f.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(f.read_text()) if f.is_file() else []
    runs.append({"backbones": backbones, **out, "wall_s": round(seconds, 1), "from_empty": out["ran"] >= out["steps"],
                 "load": [round(x, 1) for x in os.getloadavg()], "cpus": os.cpu_count(),
                 "when": time.strftime("%Y-%m-%dT%H:%M:%S")})  # fmt: skip
    write_json(f, runs)
    return f


def ship(dataset: str, backbones: list[str], command: str, n: int = DEFAULT_N, layouts=LAYOUTS) -> Path:
    """Write the prepared layouts of the default sample (every grid t, 2D/3D, UMAP/PCA) into the package."""
    folder = None
    for name in backbones:
        bb = features.backbone(name, dataset)
        entries = []
        for t in explore.grid(bb.has_t):
            for method, dim in layouts:
                v = explore.View(dataset, name, t, None, n, method=method, dim=dim)
                xy = explore.layout(v)
                if xy is None:
                    raise GenclfError(f"{name} t={t} {method} {dim}D is not prepared; run `genclf prepare` first")
                view = {"backbone": name, "t": t, "method": method, "dim": dim, "n": n}
                entries.append((explore.key(v), view, xy))
        folder = explore.shipped.write(dataset, name, entries, default_t(dataset, name), command)
    return folder
