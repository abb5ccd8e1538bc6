"""What keeps the dashboard live (cache-first): the default t, which grid t are ready, and the glue to the background work.

Pages call these to decide what to draw now and what to hand to the background: the preparation at server
start (genclf.app.prepare, run as a task), Few-shot's test features at a t not prepared yet, the timestep
slider's ready marks. Never imports streamlit.
"""

from __future__ import annotations

from genclf import data, explore, features
from genclf.app import prepare, views


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


def warm_fewshot(dataset: str, backbone: str) -> None:
    """Read the prepared Few-shot features at the default t into memory (server start), so the first Train is quick."""
    import sklearn.linear_model  # noqa: F401  (the logreg head; imported once, not on a user's first click)

    t = default_t(dataset, backbone)
    if features.is_cached(dataset, backbone, t, None, "test", None):
        features.extract(dataset, backbone, t=t, split="test")


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
