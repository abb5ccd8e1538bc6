"""Plotly figures the dashboard pages draw (explore scatter, few-shot, timestep, compare, training loss), and the
compare page's static PNG of the curves (PIL). Inputs are arrays and the tables genclf.dashboard builds.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go

if TYPE_CHECKING:
    from genclf.app.views import Points

# ------------------------------------------------------------------ explore

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


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


# ------------------------------------------------------------------ few-shot and timestep


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


# ------------------------------------------------------------------ compare


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


# ------------------------------------------------------------------ models


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
