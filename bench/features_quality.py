"""Feature quality of every shipped backbone against the pixel baseline, under the honest protocol.

    .venv/bin/python bench/features_quality.py [--shots 10] [--seeds 20] [--head logreg]

For each backbone, t (ddpm) and then the blocks are chosen on a stratified validation subset
(genclf.report.select_config: k=10, 3 validation shot sets, seeds 1000-1002); the test split is only
used for the final score: `--head` on `--shots` per class, test seeds 0..N-1 (never a validation
seed), the full 10k test split. The lead is paired: pixels + logreg on the same shots, same seed;
± is the 95% t-interval over seeds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's genclf, not an installed one

from genclf import experiments, features  # noqa: E402
from genclf.experiments import report  # noqa: E402
from genclf.experiments import rows as rows_io  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--backbones", default="pixels,ddpm,vae,vqvae,gan")
    p.add_argument("--head", default="logreg")
    p.add_argument("--shots", type=int, default=10)
    p.add_argument("--seeds", type=int, default=20)
    a = p.parse_args()
    rows = []
    for name in a.backbones.split(","):
        t0 = time.time()
        sel = report.select_config(a.dataset, name, a.head)
        val = None
        if sel["sweep_blocks"] is not None:
            val = max(c["accuracy"] for c in sel["sweep_blocks"]["curve"])
        accs, leads = [], []
        for seed in experiments.scoring_seeds(a.seeds):
            r = experiments.few_shot(a.dataset, name, a.head, a.shots, seed, t=sel["t"], blocks=sel["blocks"])
            accs.append(r["accuracy"])
            leads.append(r["accuracy"] - r["baseline_accuracy"])
        dim = features.extract(a.dataset, name, t=sel["t"], blocks=sel["blocks"], split="test", limit=2).x.shape[1]
        lead, half, _ = rows_io.t_interval(leads)
        rows.append((name, sel["t"], "+".join(sel["blocks"]), dim, val, np.mean(accs), np.std(accs), lead, half))
        print(f"  {name}: {100 * np.mean(accs):.1f} ± {100 * np.std(accs):.1f} ({time.time() - t0:.0f}s)", flush=True)
    print()
    print(
        f"{a.dataset}, {a.head} on {a.shots} shots/class, {a.seeds} seeds, full test split; t and blocks chosen on validation"
    )
    print("| backbone | t | blocks | dim | val acc (choice) | test acc % (mean ± std) | lead over pixels, same shots |")
    print("|---|---|---|---|---|---|---|")
    for name, t, blocks, dim, val, m, s, lead, half in rows:
        v = f"{100 * val:.1f}" if val is not None else "-"
        ci = "" if np.isnan(half) else f" ± {rows_io.points(half, False)}"
        print(f"| {name} | {t if t is not None else '-'} | {blocks} | {dim} | {v} | {100 * m:.1f} ± {100 * s:.1f} | "
              f"{rows_io.points(lead)}{ci} |")  # fmt: skip


if __name__ == "__main__":
    main()
