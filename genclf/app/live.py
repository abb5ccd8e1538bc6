"""What keeps the dashboard live (cache-first): the default t, which grid t are ready, and the glue to the background work.

Pages call these to decide what to draw now and what to hand to the background: the preparation at server
start (genclf.app.prepare, run as a task), Few-shot's test features at a t not prepared yet, the timestep
slider's ready marks. Never imports streamlit.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from genclf import data, experiments, explore, features
from genclf.app import prepare, views

FEWSHOT_DEFAULTS = prepare.FEWSHOT  # the Few-shot page's default choices, which `genclf prepare` reads ahead
log = logging.getLogger(__name__)
VAL_SEEDS = prepare.FEWSHOT["val_seeds"]  # validation shot sets behind the Few-shot page's validation figure


def default_t(dataset: str, backbone: str) -> int | None:
    """Explore's and Few-shot's default timestep: the best validation t of the default Timestep sweep."""
    return prepare.default_t(dataset, backbone)


def grid_marks(v: explore.View) -> tuple[tuple[int, ...], set[int]]:
    """(the timestep grid, the grid t whose layout for this view is ready)."""
    return tuple(explore.grid(True)), set(explore.ready_grid(v))


def snap(t: int, ready: set[int]) -> int:
    """The ready t nearest to t (t itself when ready or when nothing is)."""
    return t if t in ready or not ready else min(ready, key=lambda r: (abs(r - t), r))


def fewshot_test_limit(dataset: str, backbone: str, t, blocks) -> int | None:
    """How many test images a Few-shot run can score on at once: None (the whole split) when its features at t are
    cached, or when too few are (then the run extracts them); else the largest cached prefix of the test split's
    order (at least views.N_RANGE[0] images: Explore's samples, prepared at every grid t)."""
    if features.is_cached(dataset, backbone, t, blocks, "test", None):
        return None
    ds, bb = data.load(dataset), features.backbone(backbone, dataset)
    n = 0
    for i in range(features.n_chunks(ds, len(ds.y_test))):
        if not features.chunk_cached(bb, ds, i, t, blocks):
            break
        n = min(len(ds.y_test), (i + 1) * features.CHUNK)
    return n if n >= views.N_RANGE[0] else None


def fewshot_key(dataset: str, backbone: str, head: str, shots: int, seed: int, t, blocks, strategy: str) -> tuple:
    """A Few-shot run's parameters as the hashable key of its memo (sessions share results by it), with the test
    subset it can score on now (`fewshot_test_limit`)."""
    p = {"dataset": dataset, "backbone": backbone, "head": head, "shots": int(shots), "seed": int(seed),
         "t": None if t is None else int(t), "blocks": tuple(blocks) if blocks else None, "strategy": strategy}  # fmt: skip
    p["test_limit"] = fewshot_test_limit(dataset, backbone, p["t"], p["blocks"])
    return tuple(p.items())


def few_shot(key: tuple, progress=None) -> dict:
    """experiments.few_shot for a `fewshot_key`, memoised process-wide (its features are cached on disk too)."""
    p = {k: list(v) if isinstance(v, tuple) else v for k, v in key}
    return views.remember("few_shot", key, lambda: experiments.few_shot(**p, progress=progress))


def validate(key: tuple, progress=None) -> dict:
    """The validation figure of the same choices (head, k, t, blocks, strategy) on VAL_SEEDS validation shot sets of
    their own (never a set scored on test), memoised like `few_shot`."""
    p = {k: list(v) if isinstance(v, tuple) else v for k, v in key}
    args = {k: p[k] for k in ("dataset", "backbone", "head", "shots", "t", "blocks", "strategy")}
    # the test seed and test subset do not enter the figure: another seed reuses it instead of refitting
    memo_key = tuple((k, v) for k, v in key if k in args)
    return views.remember("validate", memo_key, lambda: experiments.validate(**args, seeds=VAL_SEEDS, progress=progress))


def fewshot_ready(key: tuple) -> bool:
    """Whether `few_shot` and `validate` of this key only read features (test, validation, the shots), never extract."""
    p = dict(key)
    if p["strategy"] != "random" or p["head"] == "labelprop" or p["test_limit"]:
        return False
    ds, bb = data.load(p["dataset"]), features.backbone(p["backbone"], p["dataset"])
    t, blocks = p["t"], list(p["blocks"]) if p["blocks"] else None
    shot_sets = [data.shot_indices(ds, p["shots"], s) for s in (p["seed"], *experiments.val_seeds(VAL_SEEDS))]
    return (
        features.is_cached(p["dataset"], p["backbone"], t, blocks, "test", None)
        and prepare.validation_cached(ds, bb, t, blocks)
        and all(features.array_cached(bb, ds, ds.x_train[i], t, blocks, 0, prepare.SHOT_TAG) for i in shot_sets)
    )


def warm_fewshot(dataset: str, backbone: str) -> None:
    """At server start: read the prepared Few-shot features at the default t into memory and, when everything it
    reads is prepared, run the page's default choices once (k=10, logreg, random shots, seed 0), so the first Train
    shows its result at once. Never extracts features in the server."""
    import sklearn.linear_model  # noqa: F401  (the logreg head; imported once, not on a user's first click)

    t = default_t(dataset, backbone)
    if not features.is_cached(dataset, backbone, t, None, "test", None):
        return
    features.extract(dataset, backbone, t=t, split="test")
    d = FEWSHOT_DEFAULTS
    key = fewshot_key(dataset, backbone, d["head"], d["shots"], 0, t, views.block_choices(dataset, backbone)[1], d["strategy"])
    if fewshot_ready(key):
        t0 = time.perf_counter()
        few_shot(key)
        validate(key)
        log.info("Few-shot's default run at t=%s computed at start in %.1f s", t, time.perf_counter() - t0)


def default_view(dataset: str, backbone: str) -> explore.View:
    """Explore's first view of a backbone: its default t and blocks, 2D UMAP of the default sample."""
    t = default_t(dataset, backbone)
    return explore.View(dataset, backbone, t, tuple(views.block_choices(dataset, backbone)[1]), views.DEFAULT_N)


def warm_explore(dataset: str, backbone: str) -> None:
    """At server start: build the default view's 2D and 3D charts (memoised, shared by sessions); the first 3D
    figure of a process also pays plotly's one-time set-up of its 3D classes (about 0.3 s), here and not on a click."""
    v = default_view(dataset, backbone)
    pts = views.points(v)
    for dim in (2, 3):
        w = replace(v, dim=dim)
        if explore.layout(w) is not None:  # shipped or on disk; never computed here
            views.scatter(w, views.explore_layout(w), pts, [], uirevision=f"{dataset}{dim}0")


def prepare_test_split(dataset: str, backbone: str, t, blocks):
    """Extract the whole test split's features at t in the background (shared; returns the task)."""
    from genclf.app import tasks

    spec = {"dataset": dataset, "backbone": backbone, "t": t, "blocks": list(blocks) if blocks else None, "split": "test"}
    return tasks.start("features", spec)


_AUTOPREPARED: set[str] = set()


def autoprepare(dataset: str) -> None:
    """Start (once per server process) the background preparation of a dataset's backbones; shared by every session.

    The task process checks what is on disk and computes only what is missing (genclf.app.prepare)."""
    from genclf.app import tasks

    if dataset in _AUTOPREPARED or dataset not in views.dataset_choices():
        return
    _AUTOPREPARED.add(dataset)
    tasks.start("prepare", {"dataset": dataset, "backbones": list(views.backbone_choices(dataset).values())})


def preparing(dataset: str, backbone: str) -> bool:
    """Whether a background preparation of this dataset and backbone is running (it computes the grid)."""
    from genclf.app import tasks

    return any(t.spec.get("dataset") == dataset and backbone in t.spec.get("backbones", []) for t in tasks.running("prepare"))
