"""Compute helpers behind the dashboard pages (never imports streamlit).

Pages read widgets, call these, and draw what comes back: layouts, pandas tables, uint8 images. The plotly figures
(and the compare PNG) are built in genclf.figures; zip uploads are unpacked by genclf.upload; the Compare and
Timestep tables come from genclf.tables.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from genclf import data, explore, features
from genclf.app import prepare
from genclf.backbones import available
from genclf.data import images

N_RANGE = (1000, 10000)
DEFAULT_N = prepare.DEFAULT_N
TABLE_ROWS = 300  # thumbnails in the selection table; the count above it says how many were selected

# ------------------------------------------------------------------ memo

_REMEMBERED: dict[str, OrderedDict] = {}  # kind -> LRU of its results
_REMEMBER_LOCK = threading.Lock()  # sessions run in threads of one process


def remember(kind: str, params: tuple, fn, max_entries: int = 64):
    """Process-wide LRU memo of a result by (kind, hashable params), shared by sessions; `max_entries` per kind.

    Used instead of st.cache_data where the call reports progress into the page (Streamlit cannot replay that)."""
    with _REMEMBER_LOCK:
        memo = _REMEMBERED.setdefault(kind, OrderedDict())
        if params in memo:
            memo.move_to_end(params)
            return memo[params]
    out = fn()  # outside the lock: two sessions may compute the same thing once each, never wait on each other
    with _REMEMBER_LOCK:
        memo[params] = out
        while len(memo) > max_entries:
            memo.popitem(last=False)
    return out


# ------------------------------------------------------------------ pickers


def dataset_choices() -> list[str]:
    """Datasets present on this machine, then uploaded folders (data/uploads/<name>)."""
    names = [n for n, s in data.REGISTRY.items() if s.present()]
    up = data.data_dir() / "uploads"
    if up.is_dir():
        names += [f"folder:{p}" for p in sorted(up.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    return names


def backbone_info(folder: Path | str) -> dict:
    f = Path(folder) / "config.json"
    return json.loads(f.read_text()) if f.is_file() else {}


# ------------------------------------------------------------------ data


def training(folder: Path) -> bool:
    """Whether a backbone folder holds an unfinished run (its weights still change at every checkpoint)."""
    return backbone_info(folder).get("status") == "training"


def backbone_choices(dataset: str) -> dict[str, str]:
    """Picker label -> what to pass as `backbone` (a name, or a folder when a run shadows a shipped one).

    Runs still training are left out: their weights change under the cache keys every checkpoint."""
    out = {}
    for label, folder in available(dataset).items():
        if not training(folder):
            out[label] = label if label == folder.name else str(folder)
    order = {"ddpm": 0, "vae": 1, "vqvae": 2, "gan": 3}
    out = dict(sorted(out.items(), key=lambda kv: (order.get(kv[0].split(" ")[0], 9), kv[0])))
    out["pixels"] = "pixels"
    return out


_LOADING = threading.Lock()


def block_choices(dataset: str, backbone: str) -> tuple[list[str], list[str], bool]:
    """(all blocks, default blocks, has_t) of a backbone. Loads it, one thread at a time: at server start the preload
    thread and the first page run both ask, and the second should find it loaded, not load it again."""
    with _LOADING:
        bb = features.backbone(backbone, dataset)
    return bb.block_names(), bb.default_blocks(), bb.has_t


# ------------------------------------------------------------------ explore


@dataclass
class Points:
    """The explored points: positions 0..N-1 into the sample; `idx` into x_test."""

    idx: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]


def points(v: explore.View) -> Points:
    ds = data.load(v.dataset)
    idx = explore.sample(v)
    return Points(idx, ds.y_test[idx], ds.classes)


@dataclass
class Shown:
    """What a chart shows for a requested view: `status` is 'ready', 'preview' (PCA while its UMAP
    computes) or 'nearest' (the nearest ready timestep `t` while features for the new one are computed)."""

    xy: np.ndarray
    status: str
    t: int | None
    method: str
    error: str = ""


def nearest_ready(v: explore.View) -> tuple[int, np.ndarray] | None:
    """The aligned layout of the ready grid timestep nearest to v.t (same kind of view), or None."""
    if v.t is None:
        return None
    ready = [t for t in explore.ready_grid(v) if t is not None]
    if not ready:
        return None
    t = min(ready, key=lambda r: abs(r - v.t))
    return t, explore.aligned_layout(v.at(t))


def explore_layout(v: explore.View, owner: str | None = None) -> Shown:
    """A layout to draw for view `v` now; never waits on feature extraction or UMAP (cache-first).

    Ready (memory, disk or shipped) -> drawn. Features on disk -> its PCA is computed here (a fraction of a
    second, never queued behind background work), shown as a preview while UMAP computes. Otherwise the
    view is requested from the background service and the nearest ready timestep is shown ('nearest'),
    or nothing yet ('pending', an empty layout)."""
    svc = explore.service()
    xy = explore.layout(v)
    if xy is not None:
        return Shown(explore.align(v, xy), "ready", v.t, v.method)
    pca_view = replace(v, method="pca")
    pca_xy = explore.layout(pca_view)
    if pca_xy is None and explore.features_ready(v):
        pca_xy = explore.compute(pca_view)
    if pca_xy is not None:
        if v.method == "pca":
            return Shown(explore.align(v, pca_xy), "ready", v.t, "pca")
        svc.request([v], owner)
        if explore.layout(v) is not None:  # inline service: computed just now
            return Shown(explore.align(v, explore.layout(v)), "ready", v.t, v.method)
        shown = Shown(explore.align(pca_view, pca_xy, ref_method=v.method), "preview", v.t, "pca")
    else:
        svc.request([pca_view] if v.method == "pca" else [pca_view, v], owner)
        if explore.layout(v) is not None:
            return Shown(explore.align(v, explore.layout(v)), "ready", v.t, v.method)
        near = nearest_ready(v)
        if near is not None:
            shown = Shown(near[1], "nearest", near[0], v.method)
        else:
            shown = Shown(np.zeros((0, v.dim), np.float32), "pending", v.t, v.method)
    errors = [s for s in (svc.state(v), svc.state(pca_view)) if (s or "").startswith("error")]
    shown.error = errors[0].removeprefix("error: ") if errors else ""
    return shown


def pending_progress(v: explore.View) -> tuple[int, int] | None:
    """(images extracted, total) of the background job behind a view on screen, when it is extracting."""
    svc = explore.service()
    return svc.progress(replace(v, method="pca")) or svc.progress(v)


def scatter(v: explore.View, shown: Shown, pts: Points, sel: list[int], uirevision: str):
    """The Explore chart, memoised process-wide by what it draws: sessions showing the same view share one figure
    object (building a plotly figure costs more than the rest of a slider move)."""
    from genclf.app import explore_figures

    key = (v, shown.status, shown.t, shown.method, hash(shown.xy.tobytes()), tuple(sel), uirevision)
    make = lambda: explore_figures.scatter(shown.xy, pts, None, sel, view_title(v, shown), uirevision=uirevision)
    return remember("scatter", key, make, 256)


def note(v: explore.View, shown: Shown) -> str:
    """The caption suffix saying what the chart shows while the requested view computes."""
    return {
        "ready": "",
        "preview": " · UMAP is computing in the background; this is PCA meanwhile",
        "nearest": f" · t={v.t} is computing in the background; this is the nearest ready t",
        "pending": " · computing in the background",
    }[shown.status]


def progress_of(v: explore.View) -> str:
    """'ready', 'preview' (PCA on disk) or 'pending': what the background fragment polls for."""
    if explore.layout(v) is not None:
        return "ready"
    return "preview" if explore.layout(replace(v, method="pca")) is not None else "pending"


def selected_positions(event) -> list[int]:
    """Positions picked in a plotly selection event (st.plotly_chart on_select), via customdata[0].

    Plotly sends a point's customdata row as a list, or as {"0": .., "1": ..} when the figure carried it as a
    typed array."""
    try:
        pts = event["selection"]["points"]
    except (KeyError, TypeError):
        return []
    out = set()
    for p in pts:
        cd = p.get("customdata")
        if isinstance(cd, dict):
            cd = cd.get("0", cd.get(0))
        elif isinstance(cd, list | tuple):
            cd = cd[0] if cd else None
        if cd is not None:
            out.add(int(cd))
    return sorted(out)


def linked_selection(events: list[list[int]], seen: list[list[int]], current: list[int]) -> tuple[list[int], list]:
    """(selection, seen events) after this run's chart events: a chart whose event changed to a non-empty
    selection sets it for every chart. Empty events are ignored: a redrawn chart (new t, new layout mode)
    reports one, and the selection should survive scrubbing; the page's "Clear selection" clears it."""
    seen = list(seen) + [[]] * (len(events) - len(seen))
    for i, got in enumerate(events):
        if got != seen[i]:
            seen[i] = got
            if got:
                current = got
    return current, seen[: len(events)]


def view_title(v: explore.View, shown: Shown | None) -> str:
    """'DDPM · t=50 · UMAP' for what a chart shows, the backbone in plain words (no t when `shown` is None: an
    animation over t)."""
    from genclf.app import labels

    name = labels.backbone(v.backbone)
    if shown is None:
        return f"{name} · {v.method.upper()}"
    t = "" if shown.t is None else f" · t={shown.t}" + (f" (t={v.t} computing)" if shown.t != v.t else "")
    return f"{name}{t} · {shown.method.upper()}"


def neighbours(x: np.ndarray, query: list[int], k: int = 5) -> np.ndarray:
    """(len(query), k) positions of each query's nearest neighbours in feature space (cosine), itself excluded."""
    z = explore.prep(x)
    z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-9
    sims = z[query] @ z.T
    sims[np.arange(len(query)), query] = -np.inf
    k = min(k, len(x) - 1)
    return np.argsort(-sims, axis=1)[:, :k]


def thumb(img: np.ndarray, size: int = 56) -> str:
    """(C, H, W) uint8 -> PNG data URI about `size` px wide."""
    return images.data_uri(img, scale=max(1, size // img.shape[-1]))


def big(img: np.ndarray, size: int = 168) -> np.ndarray:
    """One image upscaled (nearest) for st.image."""
    return images.to_hwc(img).repeat(max(1, size // img.shape[-1]), 0).repeat(max(1, size // img.shape[-1]), 1)


def selection_table(v: explore.View, pts: Points, positions: list[int], pred: dict[int, int] | None = None) -> pd.DataFrame:
    """Rows for the selected points: thumbnail, test index, label, 5 nearest neighbours, agreement, prediction."""
    ds = data.load(v.dataset)
    positions = positions[:TABLE_ROWS]
    if not positions:
        return pd.DataFrame(columns=["image", "test index", "label", "neighbours", "same-label neighbours", "prediction"])
    x = explore.feats(v).x
    nn = neighbours(x, positions)
    rows = []
    for p, ns in zip(positions, nn):
        i = int(pts.idx[p])
        rows.append(
            {
                "image": thumb(ds.x_test[i]),
                "test index": i,
                "label": pts.classes[pts.y[p]],
                "neighbours": ", ".join(f"{int(pts.idx[n])} ({pts.classes[pts.y[n]]})" for n in ns),
                "same-label neighbours": f"{int((pts.y[ns] == pts.y[p]).sum())}/{len(ns)}",
                "prediction": pts.classes[pred[i]] if pred and i in pred else "",
            }
        )
    return pd.DataFrame(rows)


def neighbour_strip(v: explore.View, pts: Points, position: int, k: int = 8) -> tuple[np.ndarray, list[str]]:
    """A clicked point's image plus its k nearest neighbours: (images (k+1, C, H, W), captions)."""
    ds = data.load(v.dataset)
    ns = neighbours(explore.feats(v).x, [position], k)[0]
    order = [position, *ns.tolist()]
    caps = [f"#{int(pts.idx[p])} {pts.classes[pts.y[p]]}" for p in order]
    return ds.x_test[pts.idx[order]], caps
