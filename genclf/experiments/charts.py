"""PNG charts of the `results/<dataset>/` report, drawn with PIL (no matplotlib needed).

line_chart draws mean ± std series on a warped x axis; report_charts draws the report's label_efficiency.png
and timestep.png from its run rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genclf.experiments.rows import BASELINE, SELECT_SHOTS, stats
from genclf.experiments.sweeps import summarize

# Okabe & Ito's colour-blind-safe set (black first, yellow last: it reads poorly on white), then three of Paul Tol's;
# a chart never repeats a colour while it draws at most len(PALETTE) lines
PALETTE = ["#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#882255", "#999999", "#44AA99",
           "#332288", "#F0E442"]  # fmt: skip


def line_chart(series: list[dict], path: Path, title: str, xlabel: str, ylabel: str, xticks: list, xmap=np.log1p) -> Path:
    """PNG line chart with shaded bands. series: {name, x, y, lo, hi}; `xmap` warps x (log-like by default)."""
    from PIL import Image, ImageColor, ImageDraw, ImageFont

    W, H, L, R, T, B = 1000, 600, 70, 280, 50, 60
    font, small = ImageFont.load_default(size=16), ImageFont.load_default(size=13)
    img = Image.new("RGBA", (W, H), "white")
    d = ImageDraw.Draw(img)
    xs = xmap(np.asarray([v for s in series for v in s["x"]] + list(xticks), float))
    ys = np.asarray([v for s in series for v in list(s["lo"]) + list(s["hi"])], float)
    x0, x1 = xs.min(), xs.max()
    y0, y1 = np.floor(np.nanmin(ys) * 20) / 20, np.ceil(np.nanmax(ys) * 20) / 20
    px = lambda v: L + (xmap(v) - x0) / max(x1 - x0, 1e-9) * (W - L - R)
    py = lambda v: H - B - (v - y0) / max(y1 - y0, 1e-9) * (H - T - B)
    for yv in np.arange(y0, y1 + 1e-9, 0.05):
        d.line([(L, py(yv)), (W - R, py(yv))], fill="#e5e5e5")
        d.text((L - 8, py(yv)), f"{100 * yv:.0f}", fill="black", font=small, anchor="rm")
    for xv in xticks:
        d.line([(px(xv), T), (px(xv), H - B)], fill="#f0f0f0")
        d.text((px(xv), H - B + 8), str(xv), fill="black", font=small, anchor="mt")
    d.rectangle([L, T, W - R, H - B], outline="black")
    d.text((L + (W - L - R) / 2, 20), title, fill="black", font=font, anchor="mm")
    d.text((L + (W - L - R) / 2, H - 20), xlabel, fill="black", font=small, anchor="mm")
    d.text((12, T - 20), ylabel, fill="black", font=small)
    for i, s in enumerate(series):
        rgb = ImageColor.getrgb(s.get("color") or PALETTE[i % len(PALETTE)])
        band = [(px(x), py(v)) for x, v in zip(s["x"], s["hi"], strict=True)] + [
            (px(x), py(v)) for x, v in zip(s["x"][::-1], s["lo"][::-1], strict=True)
        ]
        layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
        ImageDraw.Draw(layer).polygon(band, fill=(*rgb, 45))
        img.alpha_composite(layer)
        d = ImageDraw.Draw(img)
        pts = [(px(x), py(v)) for x, v in zip(s["x"], s["y"], strict=True)]
        d.line(pts, fill=rgb, width=3 if s.get("bold") else 2)
        for p in pts:
            d.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=rgb)
        ly = T + 10 + 22 * i
        d.line([(W - R + 15, ly), (W - R + 40, ly)], fill=rgb, width=3)
        d.text((W - R + 46, ly), s["name"][:34], fill="black", font=small, anchor="lm")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.convert("RGB").save(path)
    return path


def report_charts(out: Path, rows, pipes, best, shots, t_rows) -> dict:
    """Write label_efficiency.png (test accuracy per k: the baselines, each backbone's head chosen on val, the best
    generative pipeline) and, when t was swept, timestep.png (validation accuracy per t) into `out`; returns their paths."""

    paths, series = {}, []
    # one line per backbone: its head with the best validation accuracy at k=SELECT_SHOTS
    ref_k = SELECT_SHOTS if SELECT_SHOTS in shots else shots[0]
    groups: dict[str, list[str]] = {}
    for p in pipes:
        groups.setdefault(p["label"].rsplit(" + ", 1)[0], []).append(p["label"])
    # the baseline, then each backbone (and fusion) with its head chosen on validation; cnn from scratch is its own
    # group and has no validation runs, so it keeps its one label. The other pixel heads stay in the tables.
    labels = [BASELINE] + [
        max(labs, key=lambda lab: np.nan_to_num(stats(rows, lab, ref_k, "val")[0], nan=-1.0))
        for g, labs in groups.items()
        if g != "pixels"
    ]
    for i, lab in enumerate(labels):
        st = [stats(rows, lab, k, "test") for k in shots]
        m, s = np.array([v[0] for v in st]), np.array([v[1] for v in st])
        series.append({"name": lab, "x": list(shots), "y": m, "lo": m - s, "hi": m + s, "color": PALETTE[i % len(PALETTE)]})
    if best:
        st = [stats(rows, best[k], k, "test") for k in shots]
        m, s = np.array([v[0] for v in st]), np.array([v[1] for v in st])
        series.append({"name": "best generative (chosen on val)", "x": list(shots), "y": m, "lo": m - s, "hi": m + s,
                       "bold": True, "color": PALETTE[len(series) % len(PALETTE)]})  # fmt: skip
    paths["label_efficiency"] = line_chart(
        series,
        out / "label_efficiency.png",
        "Test accuracy vs labeled images per class",
        "shots per class (log scale)",
        "accuracy (%)",
        list(shots),
        np.log,
    )
    if t_rows:
        tseries = []
        for b in dict.fromkeys(r["backbone"] for r in t_rows):
            curve = [
                c
                for c in summarize([{"candidate": r["t"], **r} for r in t_rows if r["backbone"] == b])
                if not isinstance(c["candidate"], list)
            ]
            m, s = np.array([c["accuracy"] for c in curve]), np.array([c["std"] for c in curve])
            tseries.append(
                {
                    "name": f"{b} (val, k={SELECT_SHOTS})",
                    "x": [c["candidate"] for c in curve],
                    "y": m,
                    "lo": m - s,
                    "hi": m + s,
                }
            )
        ticks = [0, 10, 20, 50, 100, 200, 500, 750]
        paths["timestep"] = line_chart(
            tseries,
            out / "timestep.png",
            "Validation accuracy vs diffusion timestep",
            "t (0..999, log(1+t) axis)",
            "accuracy (%)",
            ticks,
        )
    return paths
