"""Pictures and words for the denoising panel (ui/denoise_panel.py): upscaled tiles, the SNR line, the
per-class error bars, and the validation accuracy at t from a Timestep sweep. Never imports streamlit.

The maths and the cache are in genclf.explore.denoise; this module only arranges its results.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from genclf.app import views
from genclf.explore.denoise import ClassError, Denoised

TILE = 112  # px of one image as sent; the panel fits three side by side to its column
STRIP_TILE = 56


def tiles(d: Denoised, k: int = 0, size: int = TILE) -> tuple[list[np.ndarray], list[str]]:
    """Row k of `d` as upscaled images with captions: x0 | x_t | x̂0 (ddpm) or x0 | reconstruction."""
    err = f"error {d.error[k]:.4f}"
    if d.mode == "denoise":
        t = int(d.ts[k])
        imgs = [d.x0[k], d.xt[k], d.x0_hat[k]]
        caps = ["x₀ (clean)", f"x_t (t={t})", f"x̂₀ ({err})"]
    else:
        imgs, caps = [d.x0[k], d.x0_hat[k]], ["x₀ (clean)", f"reconstruction ({err})"]
    return [views.big(im, size) for im in imgs], caps


def strip_rows(d: Denoised, size: int = STRIP_TILE) -> tuple[list[np.ndarray], list[np.ndarray], list[str], list[str]]:
    """A strip over t: (x_t images, x̂0 images, x_t captions 't=..', x̂0 captions with the error)."""
    xt = [views.big(im, size) for im in d.xt]
    x0_hat = [views.big(im, size) for im in d.x0_hat]
    return xt, x0_hat, [f"t={int(t)}" for t in d.ts], [f"{e:.3f}" for e in d.error]


def snr_text(snr: float) -> str:
    """'SNR 32.3 (15.1 dB)': abar/(1-abar) and its decibels."""
    db = 10 * math.log10(snr) if snr > 0 else -math.inf
    value = f"{snr:.3g}" if snr < 1000 else f"{snr:,.0f}"
    return f"SNR {value} ({db:+.1f} dB)"


def status_line(d: Denoised, acc: tuple[int, float, str] | None, k: int = 0) -> str:
    """The one line under the panel: SNR at t, and the validation accuracy there when a sweep has it."""
    if d.mode != "denoise":
        return "No timestep: the model encodes x₀ and decodes it back (error: mean squared, pixels in [0, 1])."
    t = int(d.ts[k])
    line = f"t={t} · {snr_text(float(d.snr[k]))}"
    if acc is None:
        return line + " · no Timestep sweep yet for the validation accuracy at t"
    at, value, source = acc
    return line + f" · validation accuracy {'' if at == t else f'at the nearest swept t={at} '}**{value:.1f}%** ({source})"


def class_error_figure(ce: ClassError, t: int | None, height: int = 280) -> go.Figure:
    """Horizontal bars: mean error of x̂0 (or of the reconstruction) per class over the scored images."""
    from genclf.app.figures import PALETTE

    keep = np.flatnonzero(ce.count > 0)
    names = [f"{ce.classes[c]} ({ce.count[c]})" for c in keep]
    fig = go.Figure(
        go.Bar(
            x=ce.mean[keep],
            y=names,
            orientation="h",
            marker={"color": [PALETTE[c % len(PALETTE)] for c in keep]},
            hovertemplate="%{y}: %{x:.4f}<extra></extra>",
        )
    )
    what = "denoising error of x̂₀" if ce.mode == "denoise" else "reconstruction error"
    title = f"Mean {what} per class" + (f" at t={t}" if t is not None else "")
    fig.update_layout(
        title=title,
        height=max(height, 40 + 22 * len(keep)),
        margin={"l": 0, "r": 0, "t": 36, "b": 0},
        xaxis_title="mean squared error (pixels in [0, 1])",
        yaxis={"autorange": "reversed"},
        showlegend=False,
    )
    return fig


# ------------------------------------------------------------------ validation accuracy at t


def session_sweep(params: tuple | None) -> dict | None:
    """The Timestep page's sweep result for `params` if this process already computed it (never computes).

    The page memoises `experiments.sweep_t` with `views.remember("sweep_t", params, ...)`; this peeks at that memo."""
    if not params:
        return None
    return views._REMEMBERED.get(("sweep_t", params))  # a peek: remember() would compute on a miss


def _nearest(curve: dict[int, tuple[float, str]], t: int) -> tuple[int, float, str] | None:
    if not curve:
        return None
    at = min(curve, key=lambda s: (abs(s - t), s))
    return at, *curve[at]


def sweep_accuracy(
    dataset: str, backbone: str, blocks: list[str] | tuple[str, ...] | None, t: int, params: tuple | None = None
) -> tuple[int, float, str] | None:
    """(swept t nearest to t, validation accuracy in %, where it comes from), or None without a sweep.

    First this session's Timestep sweep (`params`: st.session_state.sweep_params) for the same dataset, backbone
    and blocks; else the validation rows of results/<dataset>/timestep.csv (`genclf report`) for the same
    weights (config hash) and blocks. Fused candidates are skipped: they have no single t."""
    from genclf import features

    bb = features.backbone(backbone, dataset)
    blocks = bb.check_blocks(list(blocks) if blocks else None)
    p = dict(params or ())
    res = session_sweep(params)
    same = (p.get("dataset"), p.get("backbone")) == (dataset, backbone)
    if res is not None and same and bb.check_blocks(list(p["blocks"]) if p.get("blocks") else None) == blocks:
        curve = {
            int(c["candidate"]): (100 * c["accuracy"], f"Timestep sweep, {res['head']}, {res['shots']} shots")
            for c in res["curve"]
            if not isinstance(c["candidate"], list | tuple)
        }
        if curve:
            return _nearest(curve, t)
    return _report_accuracy(dataset, bb, blocks, t)


def _report_accuracy(dataset: str, bb, blocks: list[str], t: int) -> tuple[int, float, str] | None:
    from genclf import experiments
    from genclf.app import tables

    f = tables.results_dir(dataset) / "timestep.csv"
    if not f.is_file():
        return None
    df = pd.DataFrame()
    with contextlib.suppress(Exception):  # a half-written or foreign CSV is no sweep
        df = pd.read_csv(f)
    need = {"backbone", "config_hash", "t", "blocks", "split", "accuracy", "head", "shots", "time"}
    if df.empty or not need <= set(df.columns):
        return None
    df = df[
        (df["split"] == "val")
        & (df["backbone"].astype(str) == bb.name)
        & (df["config_hash"].astype(str) == experiments.config_hash(bb))
        & (df["blocks"].astype(str) == "+".join(blocks))
        & df["t"].astype(str).str.fullmatch(r"\d+")
    ]
    if df.empty:
        return None
    df = df[df["time"] == df["time"].max()]  # the latest report's sweep
    g = df.assign(t=df["t"].astype(int)).groupby(["t", "head", "shots"])["accuracy"].mean().reset_index()
    curve = {int(r.t): (100 * r.accuracy, f"genclf report, {r.head}, {r.shots} shots") for r in g.itertuples()}
    return _nearest(curve, t)
