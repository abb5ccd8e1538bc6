"""Does more training give better few-shot features? Validation accuracy of model folders.

    .venv/bin/python bench/ddpm_epochs.py FOLDER [FOLDER ...] [--t 35] [--blocks up_blocks.0@7]
    .venv/bin/python bench/ddpm_epochs.py SIMCLR_FOLDER ... --blocks layer3@7      (no t: --t is ignored)

Each FOLDER holds a model.safetensors + config.json, e.g. copies of a `genclf train` run's
model.safetensors taken at successive checkpoints (the run rewrites it at every checkpoint).
Scores logreg on 1, 5 and 10 shots/class on the fixed 2000-image validation subset, with the
validation shot seeds (1000.., `experiments.val_seeds`: never a seed that test scoring uses, since the
model to ship is a choice); the test split is not touched. `--seed0 0` gives the seeds 0.. that the
README's epoch rows 3-9 were measured with, before this script moved to the validation seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's genclf, not an installed one

from genclf import data, experiments, features, heads  # noqa: E402
from genclf.backbones.io import load_backbone  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--t", type=int, default=35)
    p.add_argument("--blocks", default="up_blocks.0@7")
    p.add_argument("--shots", default="1,5,10")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--seed0", type=int, default=experiments.VAL_SEED0)
    a = p.parse_args()
    ds = data.load(a.dataset)
    ev = features.subset_indices(ds, "val", experiments.VAL_LIMIT)
    shots = [int(k) for k in a.shots.split(",")]
    seeds = range(a.seed0, a.seed0 + a.seeds)
    print(f"{a.dataset}, t={a.t}, blocks={a.blocks}, logreg, validation ({len(ev)} images), seeds {list(seeds)}")
    print("| images seen | epochs | " + " | ".join(f"k={k}" for k in shots) + " |")
    print("|---|---|" + "---|" * len(shots))
    for folder in a.folders:
        bb = load_backbone(folder)
        doc = json.loads((Path(folder) / "config.json").read_text())
        blocks, t = bb.check_blocks(a.blocks.split(",")), (a.t if bb.has_t else None)
        feat = lambda idx, bb=bb, blocks=blocks, t=t: features.extract_array(bb, ds, ds.x_train[idx], t, blocks)[0]
        xe, cells = feat(ev), []
        for k in shots:
            acc = []
            for s in seeds:
                si = data.shot_indices(ds, k, s)
                acc.append(float((heads.fit_predict("logreg", feat(si), ds.y_train[si], xe, seed=s) == ds.y_train[ev]).mean()))
            cells.append(f"{100 * np.mean(acc):.1f} ± {100 * np.std(acc):.1f}")
        seen = doc.get("images_seen", 0)
        print(f"| {seen} | {seen / len(ds.x_train):.2f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
