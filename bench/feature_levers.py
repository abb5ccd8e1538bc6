"""Feature-side levers for the DDPM's few-shot lead, on validation only (never the test split).

    .venv/bin/python bench/feature_levers.py [--t 20] [--shots 1,5,10] [--seeds 5]

`bench/head_levers.py` tries the head (C, cosine, self-training); this tries what goes into it, with
logistic regression (C=1) on the same validation shot sets (seeds 1000.., `experiments.val_seeds`) for
the DDPM at its validation t and `up_blocks.0@7`, and the same treatment for raw pixels where it applies:

- `pool z-score`: the standardization fitted on the 5k unlabeled pool instead of the shots;
- `pool PCA-256 (whitened)` / `pool PCA-256`: a PCA fitted on the (z-scored) pool, with and without whitening;
- `4 noise draws`: DDPM features averaged over 4 noise draws of x_t (`noise_draws=4`);
- `shots shifted ±1 px`: each shot's four 1-pixel translations added as extra labeled rows;
- `shots at t=10,35,50 too`: each shot's features at three more timesteps as extra rows (DDPM only);
- `blocks ...`: other block sets at the 7x7 grid.

Prints mean ± std accuracy over the seeds; the README's figures come from this script.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's genclf, not an installed one

from head_levers import print_header, print_rows  # noqa: E402  (bench/ is on sys.path: this script's folder)

from genclf import data, experiments, features, heads  # noqa: E402
from genclf.backbones.io import with_options  # noqa: E402

SHIFTS = ((0, 1), (0, -1), (1, 0), (-1, 0))
EXTRA_T = (10, 35, 50)
BLOCK_SETS = (["up_blocks.0@8"], ["mid_block@7", "up_blocks.0@7"], ["up_blocks.0@7", "up_blocks.1@7"])


def shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """(N, C, H, W) images moved by (dy, dx) pixels, zero-filled."""
    out = np.zeros_like(x)
    h, w = x.shape[2:]
    src_y, dst_y = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    src_x, dst_x = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[:, :, dst_y, dst_x] = x[:, :, src_y, src_x]
    return out


def logreg(a, y, b, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(random_state=seed, max_iter=1000).fit(a, y).predict(b)


def scores(ds, name: str, t: int | None, shots: list[int], seeds: int) -> dict[tuple[str, int], list[float]]:
    from sklearn.decomposition import PCA

    bb = features.backbone(name, ds.name)
    blocks = bb.check_blocks(["up_blocks.0@7"] if name == "ddpm" else None)
    ev = features.subset_indices(ds, "val", experiments.VAL_LIMIT)
    yv = ds.y_train[ev]

    def feat(images, t=t, blocks=blocks, bb=bb):
        return features.extract_array(bb, ds, images, t, blocks)[0]

    xv = feat(ds.x_train[ev])
    _, xp = experiments.pool_features(ds, bb, t, blocks)
    mu, sd = heads.standardizer(xp)
    pca = PCA(256, random_state=0).fit((xp - mu) / sd)
    pca_w = PCA(256, whiten=True, random_state=0).fit((xp - mu) / sd)
    learned = name != "pixels"  # the report z-scores learned features with the shots' statistics, never pixels
    out: dict[tuple[str, int], list[float]] = {}
    for k in shots:
        for s in experiments.val_seeds(seeds):
            si = data.shot_indices(ds, k, s)
            y, xi = ds.y_train[si], ds.x_train[si]
            xs = feat(xi)

            def fit(a, yy, b, zscore=learned, s=s):
                if zscore:
                    m, sc = heads.standardizer(a)
                    a, b = (a - m) / sc, (b - m) / sc
                return float((logreg(a, yy, b, s) == yv).mean())

            rows = {"default (as the report: z-scored on the shots, pixels raw)": fit(xs, y, xv)}
            rows["pool z-score"] = fit((xs - mu) / sd, y, (xv - mu) / sd, zscore=False)
            rows["pool PCA-256"] = fit(pca.transform((xs - mu) / sd), y, pca.transform((xv - mu) / sd), zscore=False)
            rows["pool PCA-256 (whitened)"] = fit(
                pca_w.transform((xs - mu) / sd), y, pca_w.transform((xv - mu) / sd), zscore=False
            )
            aug = [feat(shifted(xi, dy, dx)) for dy, dx in SHIFTS]
            rows["shots shifted ±1 px"] = fit(np.concatenate([xs, *aug]), np.tile(y, 1 + len(aug)), xv)
            if name == "ddpm":
                more = [feat(xi, t=u) for u in EXTRA_T]
                rows["shots at t=10,35,50 too"] = fit(np.concatenate([xs, *more]), np.tile(y, 1 + len(more)), xv)
                drawn = with_options(bb, noise_draws=4)
                rows["4 noise draws"] = fit(feat(xi, bb=drawn), y, feat(ds.x_train[ev], bb=drawn))
                for bs in BLOCK_SETS:
                    bs = bb.check_blocks(bs)
                    rows[f"blocks {'+'.join(bs)}"] = fit(feat(xi, blocks=bs), y, feat(ds.x_train[ev], blocks=bs))
            for label, acc in rows.items():
                out.setdefault((label, k), []).append(acc)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--t", type=int, default=20, help="the DDPM's timestep (the report's validation choice)")
    p.add_argument("--shots", default="1,5,10")
    p.add_argument("--seeds", type=int, default=5)
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    ds = data.load(a.dataset)
    shots = [int(k) for k in a.shots.split(",")]
    print_header(a.dataset, shots, a.seeds, "lever (logreg)")
    for name, t in (("pixels", None), ("ddpm", a.t)):
        print_rows(name, scores(ds, name, t, shots, a.seeds), shots)


if __name__ == "__main__":
    main()
