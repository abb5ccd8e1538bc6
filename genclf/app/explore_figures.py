"""The Explore scatter: colour groups (class, prediction, correct/wrong, confidence), a search that fades what
does not match, the clicked point marked, and an image mode that draws thumbnails as the points.

Every point carries customdata = (position in the view's sample, test index), whatever trace it lands in, so a
selection maps back to images the same way in every mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from genclf.app.explore_tools import Group

if TYPE_CHECKING:
    from genclf.app.views import Points

# Tableau 10: distinct hues, readable under the common colour-vision deficiencies, no repeats for 10 classes
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
FADED = "#d0d0d0"
CONFIG = {"displaylogo": False, "scrollZoom": False}  # the wheel scrolls the page; zoom stays on the toolbar


def class_colour(c: int) -> str:
    return PALETTE[c % len(PALETTE)]


def _trace(xy, pos, pts, name, colour, dim, *, size, opacity, showlegend=True, legendgroup=None, hover=True, **marker):
    cd = np.stack([pos, pts.idx[pos]], 1) if len(pos) else np.zeros((0, 2), int)
    tip = "<b>%{text}</b><br>test image %{customdata[1]}<extra></extra>" if hover else None
    text = [pts.classes[pts.y[p]] for p in pos]
    common = {
        "mode": "markers",
        "name": name,
        "customdata": cd,
        "text": text,
        "hovertemplate": tip,
        "hoverinfo": None if hover else "skip",
        "showlegend": showlegend,
        "legendgroup": legendgroup or name,
    }
    mk = {"size": size, "color": colour, "opacity": opacity, **marker}
    if dim == 2:
        return go.Scattergl(x=xy[pos, 0], y=xy[pos, 1], marker=mk, **common)
    return go.Scatter3d(x=xy[pos, 0], y=xy[pos, 1], z=xy[pos, 2], marker={**mk, "size": size / 2}, **common)


def scatter(
    xy: np.ndarray,
    pts: Points,
    groups: list[Group],
    selected: list[int] | None = None,
    title: str = "",
    uirevision: str = "",
    height: int = 560,
    match: np.ndarray | None = None,
    marked: int | None = None,
    confidence: np.ndarray | None = None,
    thumbs: list[str] | None = None,
    showlegend: bool = True,
) -> go.Figure:
    """A WebGL (2D) or 3D scatter of `xy` (N, 2|3), one trace per group.

    match: bool (N,) from a search; points outside it are drawn faded, in grey, behind the rest.
    marked: the clicked point's position, ringed.  thumbs: data URIs for every point (image mode, 2D only);
    the markers then stay (invisible) for hover and selection."""
    dim = xy.shape[1]
    sel = set(selected or [])
    image_mode = thumbs is not None and dim == 2
    fig = go.Figure()
    if match is not None and not match.all():
        out = np.flatnonzero(~match)
        fig.add_trace(_trace(xy, out, pts, "not matching", FADED, dim, size=4, opacity=0.25, hover=True))
    for g in groups:
        pos = g.positions if match is None else g.positions[match[g.positions]]
        if len(pos) == 0:
            continue
        extra = {}
        colour = g.color or class_colour(g.index)
        if g.color == "confidence":
            c = np.nan_to_num(confidence[pos] if confidence is not None else np.zeros(len(pos)), nan=0.0)
            colour = c
            extra = {"colorscale": "Viridis", "cmin": 0, "cmax": 1, "colorbar": {"title": "confidence", "thickness": 12}}
        opacity = 0.0 if image_mode else 0.8
        tr = _trace(xy, pos, pts, g.name, colour, dim, size=5, opacity=opacity, **extra)
        if sel and dim == 2 and not image_mode:
            tr.selectedpoints = [i for i, p in enumerate(pos) if p in sel]
            tr.unselected = {"marker": {"opacity": 0.12}}
        fig.add_trace(tr)
    if marked is not None and 0 <= marked < len(xy):
        ring = {"symbol": "circle-open", "line": {"width": 3, "color": "#111111"}}
        fig.add_trace(_trace(xy, np.array([marked]), pts, "clicked", "#111111", dim, size=18, opacity=1.0,
                             showlegend=False, hover=False, **ring))  # fmt: skip
    axis = {"showticklabels": False, "title": None, "zeroline": False, "showgrid": False}
    layout = {
        "title": {"text": title, "x": 0.01, "font": {"size": 14}},
        "height": height,
        "margin": {"l": 0, "r": 0, "t": 36, "b": 0},
        "legend": {"itemsizing": "constant", "title": None},
        "showlegend": showlegend,
        "uirevision": uirevision or None,
        "dragmode": None if dim == 2 else "orbit",
        "xaxis": axis,
        "yaxis": {**axis, "scaleanchor": "x"},
        "scene": {"xaxis": axis, "yaxis": axis, "zaxis": axis},
    }
    if image_mode:
        layout["images"] = _thumb_layer(xy, thumbs, match)
    fig.update_layout(**layout)
    return fig


def _thumb_layer(xy: np.ndarray, thumbs: list[str], match: np.ndarray | None) -> list[dict]:
    """Each point's image centred on it, sized so that about sqrt(N) fit across the plot."""
    span = float(max(np.ptp(xy[:, 0]), np.ptp(xy[:, 1]), 1e-6))
    size = span / max(np.sqrt(len(xy)), 1) * 0.9
    out = []
    for p, src in enumerate(thumbs):
        if match is not None and not match[p]:
            continue
        out.append({"source": src, "xref": "x", "yref": "y", "x": float(xy[p, 0]), "y": float(xy[p, 1]),
                    "sizex": size, "sizey": size, "xanchor": "center", "yanchor": "middle", "layer": "above"})  # fmt: skip
    return out
