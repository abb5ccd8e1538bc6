"""Compute and figure helpers behind the dashboard pages (never imports streamlit).

Pages read widgets, call these, and draw what comes back: plotly figures, pandas tables, uint8 images.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import tempfile
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from genclf import data, features, project, viz
from genclf.backbones import available
from genclf.errors import GenclfError

N_RANGE = (1000, 10000)
DEFAULT_N = 2000
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
TABLE_ROWS = 300  # thumbnails in the selection table; the count above it says how many were selected

# ------------------------------------------------------------------ memo

_REMEMBERED: OrderedDict[tuple, object] = OrderedDict()


def remember(kind: str, params: tuple, fn, max_entries: int = 64):
    """Process-wide LRU memo of a result by (kind, hashable params), shared by sessions.

    Used instead of st.cache_data where the call reports progress into the page (Streamlit cannot replay that)."""
    k = (kind, params)
    if k in _REMEMBERED:
        _REMEMBERED.move_to_end(k)
        return _REMEMBERED[k]
    out = fn()
    _REMEMBERED[k] = out
    while len(_REMEMBERED) > max_entries:
        _REMEMBERED.popitem(last=False)
    return out


# ------------------------------------------------------------------ pickers


def dataset_choices() -> list[str]:
    """Datasets present on this machine, then uploaded folders (data/uploads/<name>)."""
    names = [n for n, s in data.REGISTRY.items() if s.present()]
    up = data.data_dir() / "uploads"
    if up.is_dir():
        names += [f"folder:{p}" for p in sorted(up.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    return names


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


def block_choices(dataset: str, backbone: str) -> tuple[list[str], list[str], bool]:
    """(all blocks, default blocks, has_t) of a backbone."""
    bb = features.backbone(backbone, dataset)
    return bb.block_names(), bb.default_blocks(), bb.has_t


# ------------------------------------------------------------------ explore


@dataclass
class Points:
    """The explored points: positions 0..N-1 into the sample; `idx` into x_test."""

    idx: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]


def points(v: project.View) -> Points:
    ds = data.load(v.dataset)
    idx = project.sample(v)
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


def nearest_ready(v: project.View) -> tuple[int, np.ndarray] | None:
    """The aligned layout of the ready grid timestep nearest to v.t (same kind of view), or None."""
    if v.t is None:
        return None
    ready = [t for t in project.ready_grid(v) if t is not None]
    if not ready:
        return None
    t = min(ready, key=lambda r: abs(r - v.t))
    return t, project.aligned_layout(v.at(t))


def explore_layout(v: project.View, progress=None, owner: str | None = None) -> Shown:
    """A layout to draw for view `v` now, never waiting on UMAP, and on feature extraction only when there
    is nothing else to show. Missing pieces are requested from the background service (see Shown)."""
    svc = project.service()
    xy = project.layout(v)
    if xy is not None:
        return Shown(project.align(v, xy), "ready", v.t, v.method)
    pca_view = replace(v, method="pca")
    pca_xy = project.layout(pca_view)
    near = nearest_ready(v) if pca_xy is None else None
    if pca_xy is None and near is None:  # nothing to show yet: extract here, with a progress bar
        pca_xy = project.compute(pca_view, progress)
    if pca_xy is not None:
        if v.method == "pca":
            return Shown(project.align(v, pca_xy), "ready", v.t, "pca")
        svc.request([v], owner)
        if project.layout(v) is not None:  # inline service: computed just now
            return Shown(project.align(v, project.layout(v)), "ready", v.t, v.method)
        shown = Shown(project.align(pca_view, pca_xy, ref_method=v.method), "preview", v.t, "pca")
    else:
        svc.request([pca_view] if v.method == "pca" else [pca_view, v], owner)
        if project.layout(v) is not None:
            return Shown(project.align(v, project.layout(v)), "ready", v.t, v.method)
        shown = Shown(near[1], "nearest", near[0], v.method)
    errors = [s for s in (svc.state(v), svc.state(pca_view)) if (s or "").startswith("error")]
    shown.error = errors[0].removeprefix("error: ") if errors else ""
    return shown


def note(v: project.View, shown: Shown) -> str:
    """The caption suffix saying what the chart shows while the requested view computes."""
    return {
        "ready": "",
        "preview": " · UMAP is computing in the background; this is PCA meanwhile",
        "nearest": f" · t={v.t} is computing in the background; this is the nearest ready t",
    }[shown.status]


def progress_of(v: project.View) -> str:
    """'ready', 'preview' (PCA on disk) or 'pending': what the background fragment polls for."""
    if project.layout(v) is not None:
        return "ready"
    return "preview" if project.layout(replace(v, method="pca")) is not None else "pending"


def _color(c: int) -> str:
    return PALETTE[c % len(PALETTE)]


def scatter(
    xy: np.ndarray, pts: Points, selected: list[int] | None = None, title: str = "", uirevision: str = "", height: int = 560
) -> go.Figure:
    """WebGL scatter, one trace per class (legend = class names); customdata = (position, test index).

    2D leaves `dragmode` to Streamlit (pan): under lasso/box dragmode a plain click also fires an empty
    selection that cancels the clicked point, and the click is how a thumbnail is shown."""
    dim = xy.shape[1]
    sel = set(selected or [])
    fig = go.Figure()
    for c, name in enumerate(pts.classes):
        pos = np.flatnonzero(pts.y == c)
        if len(pos) == 0:
            continue
        cd = np.stack([pos, pts.idx[pos]], 1)
        hover = f"<b>{name}</b><br>test image %{{customdata[1]}}<extra></extra>"
        if dim == 2:
            tr = go.Scattergl(
                x=xy[pos, 0],
                y=xy[pos, 1],
                mode="markers",
                name=name,
                customdata=cd,
                hovertemplate=hover,
                marker={"size": 5, "color": _color(c), "opacity": 0.8},
            )
            if sel:
                tr.selectedpoints = [i for i, p in enumerate(pos) if p in sel]
                tr.unselected = {"marker": {"opacity": 0.12}}
        else:
            tr = go.Scatter3d(
                x=xy[pos, 0],
                y=xy[pos, 1],
                z=xy[pos, 2],
                mode="markers",
                name=name,
                customdata=cd,
                hovertemplate=hover,
                marker={"size": 2.5, "color": _color(c), "opacity": 0.85},
            )
        fig.add_trace(tr)
    axis = {"showticklabels": False, "title": None, "zeroline": False, "showgrid": False}
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 14}},
        height=height,
        margin={"l": 0, "r": 0, "t": 36, "b": 0},
        legend={"itemsizing": "constant", "title": None},
        uirevision=uirevision or None,
        dragmode=None if dim == 2 else "orbit",
        xaxis=axis,
        yaxis={**axis, "scaleanchor": "x"},
        scene={"xaxis": axis, "yaxis": axis, "zaxis": axis},
    )
    return fig


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


def view_title(v: project.View, shown: Shown) -> str:
    name = v.backbone.rstrip("/").split("/")[-1]
    t = "" if shown.t is None else f" · t={shown.t}" + (f" (t={v.t} computing)" if shown.t != v.t else "")
    return f"{name}{t} · {shown.method.upper()}"


def neighbours(x: np.ndarray, query: list[int], k: int = 5) -> np.ndarray:
    """(len(query), k) positions of each query's nearest neighbours in feature space (cosine), itself excluded."""
    z = project.prep(x)
    z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-9
    sims = z[query] @ z.T
    sims[np.arange(len(query)), query] = -np.inf
    k = min(k, len(x) - 1)
    return np.argsort(-sims, axis=1)[:, :k]


def thumb(img: np.ndarray, size: int = 56) -> str:
    """(C, H, W) uint8 -> PNG data URI about `size` px wide."""
    return viz.data_uri(img, scale=max(1, size // img.shape[-1]))


def big(img: np.ndarray, size: int = 168) -> np.ndarray:
    """One image upscaled (nearest) for st.image."""
    return viz.to_hwc(img).repeat(max(1, size // img.shape[-1]), 0).repeat(max(1, size // img.shape[-1]), 1)


def selection_table(v: project.View, pts: Points, positions: list[int], pred: dict[int, int] | None = None) -> pd.DataFrame:
    """Rows for the selected points: thumbnail, test index, label, 5 nearest neighbours, agreement, prediction."""
    ds = data.load(v.dataset)
    positions = positions[:TABLE_ROWS]
    if not positions:
        return pd.DataFrame(columns=["image", "test index", "label", "neighbours", "same-label neighbours", "prediction"])
    x = project.feats(v).x
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


def neighbour_strip(v: project.View, pts: Points, position: int, k: int = 8) -> tuple[np.ndarray, list[str]]:
    """A clicked point's image plus its k nearest neighbours: (images (k+1, C, H, W), captions)."""
    ds = data.load(v.dataset)
    ns = neighbours(project.feats(v).x, [position], k)[0]
    order = [position, *ns.tolist()]
    caps = [f"#{int(pts.idx[p])} {pts.classes[pts.y[p]]}" for p in order]
    return ds.x_test[pts.idx[order]], caps


# ------------------------------------------------------------------ few-shot, timestep, compare figures


def confusion_figure(conf: np.ndarray, classes: tuple[str, ...]) -> go.Figure:
    conf = np.asarray(conf)
    norm = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    fig = go.Figure(
        go.Heatmap(
            z=norm,
            x=list(classes),
            y=list(classes),
            colorscale="Blues",
            zmin=0,
            zmax=1,
            text=conf,
            texttemplate="%{text}",
            hovertemplate="true %{y}<br>pred %{x}<br>%{text}<extra></extra>",
        )
    )
    fig.update_layout(
        height=460,
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        title="Confusion (row-normalised colour, counts)",
        xaxis_title="predicted",
        yaxis={"title": "true", "autorange": "reversed"},
    )
    return fig


def per_class_figure(acc: np.ndarray, classes: tuple[str, ...], base: np.ndarray | None = None) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(classes), y=np.asarray(acc) * 100, name="features", marker_color=PALETTE[0]))
    if base is not None:
        fig.add_trace(go.Bar(x=list(classes), y=np.asarray(base) * 100, name="pixel baseline", marker_color="#bbbbbb"))
    fig.update_layout(
        height=360,
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        title="Per-class test accuracy (%)",
        yaxis_range=[0, 100],
        barmode="group",
    )
    return fig


def per_class_accuracy(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    y, pred = np.asarray(y), np.asarray(pred)
    return np.array([(pred[y == c] == c).mean() if (y == c).any() else np.nan for c in range(n_classes)])


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    m = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(m, (np.asarray(y), np.asarray(pred)), 1)
    return m


def shot_grid(dataset: str, shot_idx: np.ndarray, size: int = 56) -> np.ndarray:
    """The labeled shots, one row per class (as they were drawn), each image about `size` px."""
    ds = data.load(dataset)
    scale = max(1, size // ds.shape[-1])
    y = ds.y_train[shot_idx]
    rows = [shot_idx[y == c] for c in range(ds.n_classes) if (y == c).any()]
    cols = max(len(r) for r in rows)
    imgs = np.zeros((len(rows) * cols, *ds.shape), np.uint8) + 255
    for r, row in enumerate(rows):
        imgs[r * cols : r * cols + len(row)] = ds.x_train[row]
    return viz.grid(imgs, cols=cols, scale=scale)


def mistakes(dataset: str, test_idx: np.ndarray, y: np.ndarray, pred: np.ndarray, limit: int = 40, seed: int = 0):
    """Up to `limit` misclassified test images: (list of upscaled images, captions 'true -> pred')."""
    ds = data.load(dataset)
    wrong = np.flatnonzero(np.asarray(y) != np.asarray(pred))
    wrong = np.sort(np.random.default_rng(seed).permutation(wrong)[:limit])
    imgs = [big(ds.x_test[test_idx[w]], 84) for w in wrong]
    caps = [f"{ds.classes[y[w]]} → {ds.classes[pred[w]]}" for w in wrong]
    return imgs, caps


def t_curve_figure(df: pd.DataFrame, x: str = "t", y: str = "accuracy", std: str | None = None) -> go.Figure:
    """Validation accuracy (%) against t, the best t marked with a star."""
    df = df.sort_values(x)
    acc = df[y].to_numpy()
    fig = go.Figure(go.Scatter(x=df[x], y=acc, mode="lines+markers", name="validation accuracy"))
    if std and std in df:
        s = df[std].to_numpy()
        fig.add_trace(
            go.Scatter(
                x=np.r_[df[x], df[x][::-1]],
                y=np.r_[acc + s, (acc - s)[::-1]],
                fill="toself",
                mode="lines",
                line={"width": 0},
                fillcolor="rgba(31,119,180,0.15)",
                hoverinfo="skip",
                showlegend=False,
            )
        )
    b = int(np.nanargmax(acc))
    fig.add_trace(
        go.Scatter(
            x=[df[x].iloc[b]],
            y=[acc[b]],
            mode="markers+text",
            text=[f"best t={df[x].iloc[b]}"],
            textposition="top center",
            marker={"size": 16, "symbol": "star", "color": "#d62728"},
            name="best",
        )
    )
    fig.update_layout(
        height=420,
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        xaxis_title="timestep t (0..999)",
        yaxis_title="validation accuracy (%)",
    )
    return fig


def curves_figure(df: pd.DataFrame, title: str = "", height: int = 520) -> go.Figure:
    """Label-efficiency curves: columns method, shots, mean, std (accuracy in %); mean ± std bands."""
    fig = go.Figure()
    for i, (method, g) in enumerate(df.groupby("method", sort=False)):
        g = g.sort_values("shots")
        c = PALETTE[i % len(PALETTE)]
        x, m, s = g["shots"].to_numpy(), g["mean"].to_numpy(), g["std"].fillna(0).to_numpy()
        rgb = tuple(int(c[j : j + 2], 16) for j in (1, 3, 5))
        fig.add_trace(
            go.Scatter(
                x=np.r_[x, x[::-1]],
                y=np.r_[m + s, (m - s)[::-1]],
                fill="toself",
                mode="lines",
                line={"width": 0},
                fillcolor=f"rgba{(*rgb, 0.15)}",
                hoverinfo="skip",
                showlegend=False,
                legendgroup=method,
            )
        )
        dash = "dash" if "pixel" in method or "baseline" in method else None
        fig.add_trace(
            go.Scatter(
                x=x,
                y=m,
                mode="lines+markers",
                name=method,
                line={"color": c, "dash": dash},
                legendgroup=method,
                hovertemplate=f"{method}<br>%{{x}} shots: %{{y:.1f}}%<extra></extra>",
            )
        )
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 0, "r": 0, "t": 40, "b": 0},
        xaxis={"type": "log", "title": "labeled images per class", "tickvals": sorted(df["shots"].unique().tolist())},
        yaxis_title="test accuracy (%)",
        legend={"title": None},
    )
    return fig


# ------------------------------------------------------------------ models


def train_log(folder: Path | str) -> pd.DataFrame:
    """train_log.jsonl as a table (empty when the run logged nothing yet)."""
    f = Path(folder) / "train_log.jsonl"
    if not f.is_file():
        return pd.DataFrame()
    rows = []
    for line in f.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line being written right now
    return pd.DataFrame(rows)


def loss_figure(df: pd.DataFrame, title: str = "") -> go.Figure:
    fig = go.Figure()
    for col in [c for c in df.columns if c not in ("step", "epoch", "images", "seconds")]:
        fig.add_trace(go.Scatter(x=df["step"], y=df[col], mode="lines+markers" if len(df) < 30 else "lines", name=col))
    fig.update_layout(
        title=title,
        height=300,
        margin={"l": 0, "r": 0, "t": 36, "b": 0},
        xaxis_title="step",
        yaxis={"type": "log", "title": "loss"},
    )
    return fig


def backbone_info(folder: Path | str) -> dict:
    f = Path(folder) / "config.json"
    return json.loads(f.read_text()) if f.is_file() else {}


# ------------------------------------------------------------------ data


def overview(name: str) -> pd.DataFrame:
    """Images per class and split (train = pool + val, test)."""
    ds = data.load(name)
    s = data.splits(ds)
    count = lambda y: np.bincount(y, minlength=ds.n_classes)
    return pd.DataFrame(
        {"class": ds.classes, "pool": count(ds.y_train[s.pool]), "val": count(ds.y_train[s.val]), "test": count(ds.y_test)}
    )


def examples(name: str, per: int = 10, scale: int = 2) -> np.ndarray:
    ds = data.load(name)
    rows = [ds.x_train[np.flatnonzero(ds.y_train == c)[:per]] for c in range(min(ds.n_classes, 20))]
    pad = [np.concatenate([r, np.full((per - len(r), *ds.shape), 255, np.uint8)]) for r in rows]
    return viz.grid(np.concatenate(pad), cols=per, scale=scale)


UPLOAD_LIMIT = 200 * 2**20  # compressed bytes
UNPACKED_LIMIT = 2 * 2**30
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")


@dataclass
class ImportReport:
    dataset: str
    folder: Path
    counts: dict[str, int]
    bad: list[tuple[str, str]] = field(default_factory=list)  # (path in zip, why it was skipped)


def _parts(name: str) -> list[str]:
    """Path components of a zip member; refuses absolute paths and '..' (zip-slip)."""
    n = name.replace("\\", "/")
    if n.startswith("/") or re.match(r"^[A-Za-z]:", n):
        raise GenclfError(f"the zip holds an absolute path ({name!r}); zip the class folders with relative paths")
    parts = [p for p in n.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise GenclfError(f"the zip holds a path that leaves its folder ({name!r}); rebuild the zip without '..'")
    return parts


def import_zip(src: bytes | io.BufferedIOBase, name: str, max_bytes: int = UPLOAD_LIMIT) -> ImportReport:
    """Unpack a zip of class folders (<class>/<image>, optional unlabeled/ or train/ and test/) into data/uploads/<name>."""
    from PIL import Image

    if not _NAME.match(name):
        raise GenclfError(f"dataset name {name!r} is not allowed; use letters, digits, '-' and '_' (at most 48)")
    root = data.data_dir() / "uploads"
    dest = root / name
    if dest.exists():
        raise GenclfError(f"a dataset named {name!r} already exists in {root}; pick another name (uploads never overwrite)")
    raw = src if isinstance(src, bytes) else src.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise GenclfError(f"the zip is larger than {max_bytes // 2**20} MB; split it or copy the folder to the server instead")
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise GenclfError("that file is not a zip archive; zip a folder holding one subfolder of images per class") from None
    members = [i for i in zf.infolist() if not i.is_dir()]
    paths = [_parts(i.filename) for i in members]  # validates every path before anything is written
    for i in members:
        if (i.external_attr >> 16) & 0o170000 == 0o120000:
            raise GenclfError(f"the zip holds a symbolic link ({i.filename!r}); zip real files only")
    if sum(i.file_size for i in members) > UNPACKED_LIMIT:
        raise GenclfError(f"the zip unpacks to more than {UNPACKED_LIMIT // 2**30} GB; upload a smaller dataset")
    hidden = lambda p: any(c.startswith(".") or c == "__MACOSX" for c in p)
    visible = [p for p in paths if not hidden(p) and p[-1] != "genclf.json"]
    tops = {p[0] for p in visible}
    strip = len(tops) == 1 and any(len(p) > 2 for p in visible)  # one wrapper folder around the class folders
    bad: list[tuple[str, str]] = []
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
    try:
        for info, p in zip(members, paths):
            if hidden(p):
                continue
            p = p[1:] if strip and len(p) > 1 else p
            if p == ["genclf.json"]:
                (tmp / "genclf.json").write_bytes(zf.read(info))
                continue
            ok_depth = (len(p) == 2 and p[0] not in ("train", "test")) or (len(p) == 3 and p[0] in ("train", "test"))
            if not ok_depth:
                bad.append((info.filename, "not inside a class folder"))
                continue
            if Path(p[-1]).suffix.lower() not in IMAGE_EXT:
                bad.append((info.filename, "not an image file"))
                continue
            blob = zf.read(info)
            try:
                Image.open(io.BytesIO(blob)).verify()
            except Exception as e:  # PIL raises many types for broken files
                bad.append((info.filename, f"unreadable image ({type(e).__name__})"))
                continue
            out = tmp.joinpath(*p)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(blob)
        ds = data.load_folder(tmp, f"folder:{dest}")
        counts = dict(zip(ds.classes, np.bincount(np.r_[ds.y_train, ds.y_test], minlength=ds.n_classes).tolist()))
        if dest.exists():
            raise GenclfError(f"a dataset named {name!r} appeared meanwhile; pick another name")
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ImportReport(f"folder:{dest}", dest, counts, bad)


# ------------------------------------------------------------------ compare and timestep tables


def results_dir(dataset: str) -> Path:
    """results/<dataset>/ (GENCLF_RESULTS_DIR overrides results/)."""
    import os

    return Path(os.environ.get("GENCLF_RESULTS_DIR", "results")) / dataset.replace("/", "_").replace(":", "_")


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


def curves_png(table: pd.DataFrame, title: str = "", size: tuple[int, int] = (1200, 720)) -> bytes:
    """A static PNG of the label-efficiency curves (mean ± std bands, log x) drawn with PIL."""
    from PIL import Image, ImageDraw

    w, h = size
    left, right, top, bottom = 90, 300, 60, 80
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    xs = np.log(table["shots"].astype(float).clip(lower=1)) if len(table) else pd.Series([0.0, 1.0])
    x0, x1 = float(xs.min()), float(max(xs.max(), xs.min() + 1e-3))
    lo = float((table["mean"] - table["std"].fillna(0)).min()) if len(table) else 0
    hi = float((table["mean"] + table["std"].fillna(0)).max()) if len(table) else 100
    y0, y1 = max(0.0, np.floor(lo / 10) * 10), min(100.0, np.ceil(hi / 10) * 10) or 100.0
    px = lambda v: left + (np.log(max(v, 1)) - x0) / (x1 - x0) * (w - left - right)
    py = lambda v: h - bottom - (v - y0) / max(y1 - y0, 1e-9) * (h - top - bottom)
    d.rectangle([left, top, w - right, h - bottom], outline="#444")
    for v in np.arange(y0, y1 + 1e-6, 10):
        d.line([left, py(v), w - right, py(v)], fill="#e5e5e5")
        d.text((left - 40, py(v) - 6), f"{v:.0f}%", fill="#333")
    for k in sorted(table["shots"].unique()) if len(table) else []:
        d.text((px(k) - 6, h - bottom + 8), str(int(k)), fill="#333")
    d.text((left + (w - left - right) // 2 - 70, h - bottom + 32), "labeled images per class (log)", fill="#333")
    d.text((left, 20), title or "test accuracy vs labeled images per class (mean ± std over seeds)", fill="#111")
    for i, (method, g) in enumerate(table.groupby("method", sort=False)):
        g = g.sort_values("shots")
        rgb = tuple(int(PALETTE[i % len(PALETTE)][j : j + 2], 16) for j in (1, 3, 5))
        up = [(px(k), py(m + s)) for k, m, s in zip(g["shots"], g["mean"], g["std"].fillna(0))]
        dn = [(px(k), py(m - s)) for k, m, s in zip(g["shots"], g["mean"], g["std"].fillna(0))]
        band = Image.new("RGBA", size, (0, 0, 0, 0))
        if len(up) > 1:
            ImageDraw.Draw(band).polygon(up + dn[::-1], fill=(*rgb, 45))
        img.paste(band, (0, 0), band)
        d = ImageDraw.Draw(img)
        pts = [(px(k), py(m)) for k, m in zip(g["shots"], g["mean"])]
        if len(pts) > 1:
            d.line(pts, fill=rgb, width=3)
        for x, y in pts:
            d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=rgb)
        d.rectangle([w - right + 20, top + 22 * i, w - right + 36, top + 22 * i + 12], fill=rgb)
        d.text((w - right + 44, top + 22 * i), method[:40], fill="#111")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


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
