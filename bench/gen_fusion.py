"""Do the other generative backbones add to the DDPM? Fused features, validation only.

    .venv/bin/python bench/gen_fusion.py [--t 20] [--shots 1,5,10] [--seeds 5]

Each partner's features (the blocks bench/features_quality.py chose on validation) are fused with the
DDPM's (t, `up_blocks.0@7`) as bench/simclr.py fuses SimCLR's: each z-scored on the shots and scaled to a
share of the norm (equal, or the DDPM 2:1). Logistic regression, validation shot seeds 1000 and up, the
fixed validation subset; the test split is not touched. Pixels are a partner too (is the DDPM missing
anything the raw image has?).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's genclf, not an installed one
sys.path.insert(0, str(Path(__file__).parent))
from simclr import fuse  # noqa: E402  (the same weighting as the contrastive fusion)

from genclf import data, experiments, features, heads  # noqa: E402
from genclf.experiments import VAL_LIMIT, train_features  # noqa: E402
from genclf.experiments.fewshot import eval_indices  # noqa: E402

PARTNERS = {"gan": ["d.1", "d.2"], "vae": ["mu", "enc.1"], "vqvae": ["enc.0"], "pixels": None}
SHARES = {"equal": 0.5, "ddpm 2:1": 2 / 3}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--t", type=int, default=20)
    p.add_argument("--shots", default="1,5,10")
    p.add_argument("--seeds", type=int, default=5)
    a = p.parse_args()
    ds = data.load(a.dataset)
    val_idx = eval_indices(ds, "val", VAL_LIMIT)
    yv, vtag = ds.y_train[val_idx], {"split": "val", "limit": len(val_idx)}
    cfg = {"ddpm": (a.t, ["up_blocks.0@7"])}
    for n, blocks in PARTNERS.items():
        bb = features.backbone(n, a.dataset)
        cfg[n] = (None, bb.check_blocks(blocks) if blocks else bb.default_blocks())
    bbs = {n: features.backbone(n, a.dataset) for n in cfg}
    feat = lambda n, idx, tag: train_features(ds, bbs[n], idx, cfg[n][0], cfg[n][1], tag)  # noqa: E731
    xv = {n: feat(n, val_idx, vtag) for n in cfg}
    ks, seeds = [int(k) for k in a.shots.split(",")], experiments.val_seeds(a.seeds)
    acc: dict[str, dict[int, list[float]]] = {}
    for k in ks:
        for s in seeds:
            sidx = data.shot_indices(ds, k, s)
            xs, ys = {n: feat(n, sidx, {"split": "shots"}) for n in cfg}, ds.y_train[sidx]
            rows = {"ddpm": heads.fit_predict("logreg", xs["ddpm"], ys, xv["ddpm"], seed=s)}
            for n in PARTNERS:
                for sname, share in SHARES.items():
                    shots = [xs["ddpm"], xs[n]]
                    x_s, x_e = fuse(shots, shots, share), fuse([xv["ddpm"], xv[n]], shots, share)
                    rows[f"ddpm + {n} ({sname})"] = heads.fit_predict("logreg", x_s, ys, x_e, seed=s, standardize=False)
            for name, pred in rows.items():
                acc.setdefault(name, {}).setdefault(k, []).append(100 * float((pred == yv).mean()))
    print(f"{a.dataset}, ddpm t={a.t} up_blocks.0@7, logreg, validation ({len(val_idx)} images), seeds {seeds[0]}-{seeds[-1]}")
    print(
        "| pipeline | "
        + " | ".join(f"k={k}" for k in ks)
        + " | paired gain over ddpm at "
        + ", ".join(f"k={k}" for k in ks)
        + " |"
    )
    print("|---|" + "---|" * (2 * len(ks)))
    for name, by_k in acc.items():
        cells = [f"{np.mean(by_k[k]):.1f} ± {np.std(by_k[k]):.1f}" for k in ks]
        gains = [np.array(by_k[k]) - np.array(acc["ddpm"][k]) for k in ks]
        print(
            f"| {name} | " + " | ".join(cells) + " | " + " | ".join(f"{g.mean():+.1f} ± {g.std():.1f}" for g in gains) + " |"
        )


if __name__ == "__main__":
    main()
