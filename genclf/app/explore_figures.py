"""The Explore scatter, the one builder of every Explore chart (the plain class view, the animation, the tools):
colour groups (class, prediction, correct/wrong, confidence), a search that fades what does not match, the clicked
point marked, and an image mode that draws thumbnails as the points.

Every point carries customdata = (position in the view's sample, test index), whatever trace it lands in, so a
selection maps back to images the same way in every mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from genclf.app.explore_tools import Group, colour_groups

if TYPE_CHECKING:
    from genclf.app.views import Points

# Tableau 10: distinct hues, readable under the common colour-vision deficiencies, no repeats for 10 classes
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
FADED = "#d0d0d0"
CONFIG = {"displaylogo": False, "scrollZoom": False}  # the wheel scrolls the page; zoom stays on the toolbar
CONFIDENCE_SCALE = "Viridis"  # perceptually uniform and colour-blind safe: dark = unsure, yellow = sure


def class_colour(c: int) -> str:
    return PALETTE[c % len(PALETTE)]


def _trace(xy, pos, pts, name, colour, dim, *, size, opacity, showlegend=True, legendgroup=None, hover=True, note=None,
           **marker):  # fmt: skip
    """One trace of the points at `pos`. Hover: the true class (written once into the template when the trace holds
    a single class, else per point) and the test index, plus `note` (one string per point) when given."""
    cd = np.stack([pos, pts.idx[pos]], 1) if len(pos) else np.zeros((0, 2), int)
    ys = np.unique(pts.y[pos])
    text = None
    if len(ys) == 1 and note is None:
        label = pts.classes[ys[0]].replace("%", "%%")
    else:
        label = "%{text}"
        text = [pts.classes[pts.y[p]] + ("" if note is None else f"<br>{note[i]}") for i, p in enumerate(pos)]
    common = {
        "mode": "markers",
        "name": name,
        "customdata": cd,
        "text": text,
        "hovertemplate": f"<b>{label}</b><br>test image %{{customdata[1]}}<extra></extra>" if hover else None,
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
    groups: list[Group] | None = None,
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
    """A WebGL (2D) or 3D scatter of `xy` (N, 2|3), one trace per group; `groups` None: one per true class.

    match: bool (N,) from a search; points outside it are drawn faded, in grey, behind the rest.
    marked: the clicked point's position, ringed.  thumbs: data URIs for every point (image mode, 2D only);
    the markers then stay (invisible) for hover and selection.  confidence: (N,) in [0, 1] for a 'confidence'
    group, drawn on a continuous colour-blind-safe scale with a colour bar under the chart.

    2D leaves `dragmode` to Streamlit (pan): under lasso/box dragmode a plain click also fires an empty
    selection that cancels the clicked point, and the click is how a thumbnail is shown."""
    if groups is None:
        groups = colour_groups(pts, "true class", None)
    dim = xy.shape[1]
    has_bar = False
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
        extra, note = {}, None
        colour = g.color or class_colour(g.index)
        if g.color == "confidence":
            colour = np.nan_to_num(confidence[pos] if confidence is not None else np.zeros(len(pos)), nan=0.0)
            extra = {"colorscale": CONFIDENCE_SCALE, "cmin": 0, "cmax": 1, "colorbar": _colour_bar(), "showscale": True}
            note, has_bar = [f"confidence {v:.0%}" for v in colour], True
        opacity = 0.0 if image_mode else 0.8
        tr = _trace(xy, pos, pts, g.name, colour, dim, size=5, opacity=opacity, note=note, **extra)
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
        "margin": {"l": 0, "r": 0, "t": 36, "b": 64 if has_bar else 0},
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


def _colour_bar() -> dict:
    """Horizontal, under the chart: a vertical bar would sit on top of the legend on the right."""
    return {"title": {"text": "confidence: the head's probability of its predicted class", "side": "top"},
            "orientation": "h", "x": 0.5, "xanchor": "center", "y": -0.02, "yanchor": "top", "len": 0.6,
            "thickness": 12, "tickvals": [0, 0.25, 0.5, 0.75, 1], "ticktext": ["0%", "25%", "50%", "75%", "100%"]}  # fmt: skip


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
