"""A play button for Explore: one plotly figure whose frames are the aligned layouts of every ready timestep.

The browser animates it on its own (plotly frames), so playing costs the server one figure, shared by
every session showing the same view, and nothing per frame.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from genclf.app.explore_figures import scatter


def animated(
    layouts: dict[int, np.ndarray], pts, title: str, frame_ms: int = 700, height: int = 560, start: int | None = None
) -> go.Figure:
    """layouts: t -> (N, dim) aligned layout of the same points (ascending t). Play/pause buttons and a t slider. It
    opens at `start` (the ready t nearest to it; the first when None), and Play goes on from the frame shown."""
    ts = sorted(layouts)
    first = ts[0] if start is None else min(ts, key=lambda t: (abs(t - start), t))
    fig = scatter(layouts[first], pts, None, [], f"{title} · t={first}", uirevision="play", height=height + 60)
    dim = layouts[ts[0]].shape[1]
    classes = [c for c in range(len(pts.classes)) if (pts.y == c).any()]
    frames = []
    for t in ts:
        xy = layouts[t]
        data = []
        for c in classes:
            pos = np.flatnonzero(pts.y == c)
            tr = {"x": xy[pos, 0], "y": xy[pos, 1]}
            if dim == 3:
                tr["z"] = xy[pos, 2]
            data.append(tr)
        frames.append(
            go.Frame(data=data, traces=list(range(len(classes))), name=str(t), layout={"title": {"text": f"{title} · t={t}"}})
        )
    fig.frames = frames
    play = {"frame": {"duration": frame_ms, "redraw": True}, "fromcurrent": True, "transition": {"duration": 0}}
    pause = {"frame": {"duration": 0}, "mode": "immediate"}
    fig.update_layout(
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "x": 0.0,
                "y": -0.02,
                "xanchor": "left",
                "yanchor": "top",
                "showactive": False,
                "buttons": [
                    {"label": "▶ Play", "method": "animate", "args": [None, play]},
                    {"label": "❚❚ Pause", "method": "animate", "args": [[None], pause]},
                ],
            }
        ],
        sliders=[
            {
                "active": ts.index(first),
                "x": 0.2,
                "len": 0.8,
                "y": -0.02,
                "yanchor": "top",
                "pad": {"t": 10},
                "currentvalue": {"prefix": "t = "},
                "steps": [
                    {"label": str(t), "method": "animate", "args": [[str(t)], {**play, "mode": "immediate"}]} for t in ts
                ],
            }
        ],
        margin={"l": 0, "r": 0, "t": 36, "b": 110},
    )
    return fig
