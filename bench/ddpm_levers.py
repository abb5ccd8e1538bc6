"""Levers for the DDPM pipeline, all chosen on validation (k=10, logreg, 3 seeds), then one test score.

    .venv/bin/python bench/ddpm_levers.py [--shots 10] [--seeds 3] [--test-seeds 5]

Tries pooling grids and block sets at the validation-chosen t, and multi-timestep fusion; prints the
validation table, then scores only the validation winner on the full test split.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's genclf, not an installed one

from genclf import experiments  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--shots", type=int, default=10)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--test-seeds", type=int, default=5)
    p.add_argument("--t", type=int, default=35, help="single t (from bench/features_quality.py's validation sweep)")
    a = p.parse_args()
    blocks = [
        ["up_blocks.0"],
        ["up_blocks.0@2"],
        ["up_blocks.0@7"],
        ["mid_block@2", "up_blocks.0@4"],
        ["up_blocks.0@4", "up_blocks.1@2"],
        ["mid_block@4", "up_blocks.0@4", "up_blocks.1@4"],
    ]
    sb = experiments.sweep_blocks(a.dataset, "ddpm", "logreg", a.shots, a.seeds, candidates=blocks, t=a.t)
    best_blocks = sb["best_blocks"]
    grid = [a.t, [10, a.t], [a.t, 100], [10, a.t, 100], [5, 20, 50, 150]]
    st = experiments.sweep_t(a.dataset, "ddpm", "logreg", a.shots, a.seeds, grid, blocks=best_blocks)
    print(f"validation, logreg, k={a.shots}, {a.seeds} seeds")
    print("| lever | candidate | val acc % |")
    print("|---|---|---|")
    for c in sb["curve"]:
        print(f"| blocks (t={a.t}) | {'+'.join(c['candidate'])} | {100 * c['accuracy']:.1f} ± {100 * c['std']:.1f} |")
    for c in st["curve"]:
        t = c["candidate"]
        print(f"| t / fusion ({'+'.join(best_blocks)}) | {t} | {100 * c['accuracy']:.1f} ± {100 * c['std']:.1f} |")
    best_t = st["best_t"]
    accs = [
        experiments.few_shot(a.dataset, "ddpm", "logreg", a.shots, s, t=best_t, blocks=best_blocks)["accuracy"]
        for s in range(a.test_seeds)
    ]
    print(f"\nvalidation winner: t={best_t} blocks={'+'.join(best_blocks)}")
    print(f"test (full split, {a.test_seeds} seeds): {100 * np.mean(accs):.1f} ± {100 * np.std(accs):.1f}")


if __name__ == "__main__":
    main()
