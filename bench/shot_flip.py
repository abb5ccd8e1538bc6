"""Does mirroring the labeled shots help, and does it help the DDPM more than pixels? Validation only.

    .venv/bin/python bench/shot_flip.py [--t 35] [--blocks up_blocks.0@7] [--shots 1,5,10] [--seeds 5]

Fashion-MNIST's classes are symmetric under a horizontal flip (the backbones train with it). Three
variants per feature set, logistic regression, validation shot seeds 1000 and up, the fixed validation
subset: the k shots as they are; the shots plus their mirror images (2k per class); and that, with each
image's features averaged with its mirror's at scoring time too. The paired lead over pixels (same shots,
same variant) says whether the lever is one for the DDPM or for everybody. The test split is not touched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's genclf, not an installed one

from genclf import data, experiments, features, heads  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--t", type=int, default=35)
    p.add_argument("--blocks", default="up_blocks.0@7")
    p.add_argument("--shots", default="1,5,10")
    p.add_argument("--seeds", type=int, default=5)
    a = p.parse_args()
    ds = data.load(a.dataset)
    ev = features.subset_indices(ds, "val", experiments.VAL_LIMIT)
    flip = lambda x: np.ascontiguousarray(x[..., ::-1])  # noqa: E731
    sets = {}
    for name in ("pixels", "ddpm"):
        bb = features.backbone(name, a.dataset)
        t, blocks = (a.t, bb.check_blocks(a.blocks.split(","))) if bb.has_t else (None, None)
        sets[name] = lambda x, bb=bb, t=t, blocks=blocks: features.extract_array(bb, ds, x, t, blocks)[0]
    variants = ("shots", "shots + mirrors", "+ mirrored at scoring")
    seeds = [1000 + s for s in range(a.seeds)]
    acc = {}  # (backbone, variant, k) -> [acc per seed]
    for name, feat in sets.items():
        xe, xe_m = feat(ds.x_train[ev]), feat(flip(ds.x_train[ev]))
        for k in [int(k) for k in a.shots.split(",")]:
            for s in seeds:
                si = data.shot_indices(ds, k, s)
                xs, xs_m, ys = feat(ds.x_train[si]), feat(flip(ds.x_train[si])), ds.y_train[si]
                aug_x, aug_y = np.concatenate([xs, xs_m]), np.concatenate([ys, ys])
                runs = {
                    variants[0]: heads.fit_predict("logreg", xs, ys, xe, seed=s),
                    variants[1]: heads.fit_predict("logreg", aug_x, aug_y, xe, seed=s),
                    variants[2]: heads.fit_predict("logreg", aug_x, aug_y, (xe + xe_m) / 2, seed=s),
                }
                for v, pred in runs.items():
                    acc.setdefault((name, v, k), []).append(100 * float((pred == ds.y_train[ev]).mean()))
    ks = sorted({k for _, _, k in acc})
    print(f"{a.dataset}, ddpm t={a.t} {a.blocks}, logreg, validation ({len(ev)} images), seeds {seeds[0]}-{seeds[-1]}")
    print("| pipeline | " + " | ".join(f"k={k}" for k in ks) + " |")
    print("|---|" + "---|" * len(ks))
    for name in sets:
        for v in variants:
            print(
                f"| {name}, {v} | "
                + " | ".join(f"{np.mean(acc[name, v, k]):.1f} ± {np.std(acc[name, v, k]):.1f}" for k in ks)
                + " |"
            )
    for v in variants:
        leads = [np.array(acc["ddpm", v, k]) - np.array(acc["pixels", v, k]) for k in ks]
        print(f"| lead ddpm − pixels, {v} | " + " | ".join(f"{d.mean():+.1f} ± {d.std():.1f}" for d in leads) + " |")


if __name__ == "__main__":
    main()
