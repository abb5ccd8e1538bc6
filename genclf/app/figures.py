"""Plotly figures the dashboard pages draw (few-shot, timestep, compare, training loss), and the compare page's
static PNG of the curves (PIL). Inputs are arrays and the tables genclf.app.tables builds. The Explore scatter is
genclf.app.explore_figures.scatter, the one builder of every Explore chart.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from genclf.app.explore_figures import PALETTE  # the class colours, the same on every page
from genclf.experiments.charts import PALETTE as CHART_LINES

LINES = tuple(CHART_LINES)  # curves: colour-blind safe, black first (the baseline), no repeats up to len(LINES)


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


T_TICKS = (0, 5, 10, 20, 50, 100, 200, 500, 999)


def t_curve_figure(df: pd.DataFrame, x: str = "t", y: str = "accuracy", std: str | None = None) -> go.Figure:
    """Validation accuracy (%) against t on a log(1 + t) axis (so t <= 100 gets room), the best t marked with a star."""
    df = df.sort_values(x)
    acc = df[y].to_numpy()
    t = df[x].to_numpy()
    xs = np.log1p(t.astype(float))
    hover = "t=%{customdata}<br>%{y:.1f}%<extra></extra>"
    fig = go.Figure(go.Scatter(x=xs, y=acc, customdata=t, mode="lines+markers", name="validation accuracy",
                               hovertemplate=hover, line={"color": LINES[1]}))  # fmt: skip
    if std and std in df:
        s = df[std].to_numpy()
        fig.add_trace(
            go.Scatter(
                x=np.r_[xs, xs[::-1]],
                y=np.r_[acc + s, (acc - s)[::-1]],
                fill="toself",
                mode="lines",
                line={"width": 0},
                fillcolor=_rgba(LINES[1], 0.15),
                hoverinfo="skip",
                showlegend=False,
            )
        )
    b = int(np.nanargmax(acc))
    fig.add_trace(
        go.Scatter(
            x=[xs[b]],
            y=[acc[b]],
            customdata=[t[b]],
            mode="markers+text",
            text=[f"best t={t[b]}"],
            textposition="top center",
            hovertemplate=hover,
            marker={"size": 16, "symbol": "star", "color": LINES[2]},
            name="best",
        )
    )
    ticks = [v for v in T_TICKS if v <= max(int(t.max()), 1) or v == T_TICKS[0]]
    fig.update_layout(
        height=420,
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        xaxis={
            "title": "timestep t (0 = clean … 999 = pure noise; log(1 + t) scale)",
            "tickvals": np.log1p(ticks),
            "ticktext": [str(v) for v in ticks],
        },
        yaxis_title="validation accuracy (%)",
    )
    return fig


# ------------------------------------------------------------------ compare


def _rgba(c: str, alpha: float) -> str:
    return "rgba({}, {}, {}, {})".format(*(int(c[j : j + 2], 16) for j in (1, 3, 5)), alpha)


def line_colors(methods: list[str], baseline: tuple[str, ...] = ("pixels + logreg", "pixels + logreg (baseline)")) -> dict:
    """A colour per method, none repeated: the baseline black, the others down the colour-blind-safe LINES in order."""
    rest = iter(c for c in LINES if c != LINES[0])
    out = {}
    for m in methods:
        out[m] = LINES[0] if m in baseline else next(rest, None) or "#777777"
    return out


def curves_figure(df: pd.DataFrame, title: str = "", height: int = 520, name=str, font: int = 14) -> go.Figure:
    """Label-efficiency curves: columns method, shots, mean, std (accuracy in %), optional `chosen` (which pipeline a
    composite curve used at each k) and `n`; mean ± std bands, log shots axis. `name` maps a method to its legend text.
    The baseline is black and dashed, a 'best …' curve is drawn thick; colours never repeat (see line_colors)."""
    fig = go.Figure()
    methods = list(dict.fromkeys(df["method"]))
    colors = line_colors(methods)
    for method in methods:
        g = df[df["method"] == method].sort_values("shots")
        c = colors[method]
        x, m, s = g["shots"].to_numpy(), g["mean"].to_numpy(), g["std"].fillna(0).to_numpy()
        fig.add_trace(
            go.Scatter(
                x=np.r_[x, x[::-1]],
                y=np.r_[m + s, (m - s)[::-1]],
                fill="toself",
                mode="lines",
                line={"width": 0},
                fillcolor=_rgba(c, 0.12),
                hoverinfo="skip",
                showlegend=False,
                legendgroup=method,
            )
        )
        base = c == LINES[0]
        best = method.startswith("best")
        extra = g["chosen"].map(lambda v: f"<br>{name(v)}") if "chosen" in g else pd.Series("", index=g.index)
        seeds = g["n"].map(lambda v: f", {int(v)} seeds") if "n" in g else pd.Series("", index=g.index)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=m,
                mode="lines+markers",
                name=name(method),
                customdata=np.stack([extra.to_numpy(), seeds.to_numpy()], 1),
                line={"color": c, "dash": "dash" if base else None, "width": 4 if best else 2},
                marker={"size": 9 if best else 6},
                legendgroup=method,
                hovertemplate=f"{name(method)}%{{customdata[0]}}<br>%{{x}} per class: %{{y:.1f}}%%{{customdata[1]}}"
                "<extra></extra>",
            )
        )
    fig.update_layout(
        title={"text": title, "font": {"size": font + 4}},
        height=height,
        font={"size": font},
        margin={"l": 0, "r": 0, "t": 50 if title else 10, "b": 0},
        xaxis={
            "type": "log",
            "title": {"text": "labeled images per class (log scale)", "font": {"size": font}},
            "tickvals": sorted(df["shots"].unique().tolist()) if len(df) else None,
            "tickfont": {"size": font},
        },
        yaxis={"title": {"text": "test accuracy (%)", "font": {"size": font}}, "tickfont": {"size": font}},
        legend={"title": None, "orientation": "h", "yanchor": "top", "y": -0.15, "x": 0, "font": {"size": font}},
    )
    return fig


def curves_png(table: pd.DataFrame, title: str = "", size: tuple[int, int] = (1200, 720), name=str, font: int = 16) -> bytes:
    """A static PNG of the label-efficiency curves (mean ± std bands, log x, the colours of curves_figure) drawn with
    PIL; `font` scales every text (the presentation view uses a large one)."""
    from PIL import Image, ImageColor, ImageDraw, ImageFont

    w, h = size
    f, small = ImageFont.load_default(size=font), ImageFont.load_default(size=int(font * 0.85))
    methods = list(dict.fromkeys(table["method"])) if len(table) else []
    colors = line_colors(methods)
    legend_w = min(int(w * 0.4), max([int(small.getlength(name(m))) for m in methods] + [0]) + 60)
    left, right, top, bottom = int(font * 4), legend_w + 20, int(font * 3.2) if title else int(font), int(font * 4)
    img = Image.new("RGBA", size, "white")
    d = ImageDraw.Draw(img)
    ks = table["shots"].astype(float).clip(lower=1) if len(table) else pd.Series([1.0, 10.0])
    x0, x1 = float(np.log(ks.min())), float(max(np.log(ks.max()), np.log(ks.min()) + 1e-3))
    lo = float((table["mean"] - table["std"].fillna(0)).min()) if len(table) else 0
    hi = float((table["mean"] + table["std"].fillna(0)).max()) if len(table) else 100
    y0, y1 = max(0.0, np.floor(lo / 10) * 10), min(100.0, np.ceil(hi / 10) * 10) or 100.0
    px = lambda v: left + (np.log(max(v, 1)) - x0) / (x1 - x0) * (w - left - right)
    py = lambda v: h - bottom - (v - y0) / max(y1 - y0, 1e-9) * (h - top - bottom)
    for v in np.arange(y0, y1 + 1e-6, 10):
        d.line([left, py(v), w - right, py(v)], fill="#e5e5e5")
        d.text((left - 8, py(v)), f"{v:.0f}%", fill="#333", font=small, anchor="rm")
    for k in sorted(table["shots"].unique()) if len(table) else []:
        d.text((px(k), h - bottom + 8), str(int(k)), fill="#333", font=small, anchor="mt")
    d.rectangle([left, top, w - right, h - bottom], outline="#444")
    d.text(((left + w - right) / 2, h - font * 1.2), "labeled images per class (log scale)", fill="#333", font=small,
           anchor="mm")  # fmt: skip
    if title:
        d.text((left, font * 0.8), title, fill="#111", font=f)
    for i, method in enumerate(methods):
        g = table[table["method"] == method].sort_values("shots")
        rgb = ImageColor.getrgb(colors[method])
        best = method.startswith("best")
        up = [(px(k), py(m + s)) for k, m, s in zip(g["shots"], g["mean"], g["std"].fillna(0), strict=True)]
        dn = [(px(k), py(m - s)) for k, m, s in zip(g["shots"], g["mean"], g["std"].fillna(0), strict=True)]
        band = Image.new("RGBA", size, (0, 0, 0, 0))
        if len(up) > 1:
            ImageDraw.Draw(band).polygon(up + dn[::-1], fill=(*rgb, 35))
        img.alpha_composite(band)
        d = ImageDraw.Draw(img)
        pts = [(px(k), py(m)) for k, m in zip(g["shots"], g["mean"], strict=True)]
        width = max(2, font // (4 if best else 7))
        if len(pts) > 1 and colors[method] == LINES[0]:  # the baseline: dashed
            for (xa, ya), (xb, yb) in zip(pts, pts[1:]):
                at = lambda a, xa=xa, ya=ya, xb=xb, yb=yb: (xa + (xb - xa) * a, ya + (yb - ya) * a)
                for a in np.arange(0, 1, 0.1):
                    d.line([at(a), at(a + 0.06)], fill=rgb, width=width)
        elif len(pts) > 1:
            d.line(pts, fill=rgb, width=width)
        r = max(4, font // 4) + (2 if best else 0)
        for x, y in pts:
            d.ellipse([x - r, y - r, x + r, y + r], fill=rgb)
        ly = top + i * font * 1.6 + font * 0.5
        d.line([(w - right + 15, ly), (w - right + 45, ly)], fill=rgb, width=width)
        d.text((w - right + 52, ly), name(method), fill="#111", font=small, anchor="lm")
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG")
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
