"""Latency of the denoising panel (issue 15): can it follow the t slider? Prints one table. Not a test.

    .venv/bin/python bench/denoise.py                      # fashion-mnist, shipped ddpm, 1 torch thread
    .venv/bin/python bench/denoise.py --threads 2 --repeat 50

Rows (medians over --repeat, each at a t not seen before unless said otherwise):
- UNet forward, 1 image: `bb.ema(x_t, t)` alone, fp32;
- denoise_batch, 1 image: noise + forward + closed form (genclf.explore.denoise, no cache);
- panel at a new t: denoise.run for one test image, computed and written to the disk cache;
- panel at a seen t, memo / disk: the same call served from memory, then from the disk cache only;
- strip over the Explore grid (12 t, one forward of 12 images); class error over 200 images at a new t.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def median_ms(fn, args_list) -> float:
    times = []
    for a in args_list:
        t0 = time.perf_counter()
        fn(a)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--backbone", default="ddpm")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args()
    os.environ["GENCLF_CACHE_DIR"] = tempfile.mkdtemp(prefix="genclf-bench-denoise-")
    import numpy as np
    import torch

    torch.set_num_threads(a.threads)
    from genclf import data, explore, features
    from genclf.explore import denoise

    ds, bb = data.load(a.dataset), features.backbone(a.backbone, a.dataset)
    x = ds.x_test[:1]
    ts = list(range(1, 1 + a.repeat))
    denoise.denoise_batch(bb, x, [500])  # first-call overheads out of the figures
    denoise.run(a.dataset, a.backbone, "test", [0], 500)
    xt = torch.from_numpy(denoise.denoise_batch(bb, x, [500])["xt"])
    with torch.inference_mode():
        rows = [("UNet forward, 1 image (fp32)", median_ms(lambda t: bb.ema(xt, torch.tensor([t])), ts))]
    rows.append(("denoise_batch, 1 image (no cache)", median_ms(lambda t: denoise.denoise_batch(bb, x, [t]), ts)))
    rows.append(
        (
            "panel at a new t (compute + disk write)",
            median_ms(lambda t: denoise.run(a.dataset, a.backbone, "test", [0], t), ts),
        )
    )
    rows.append(("panel at a seen t, memo", median_ms(lambda t: denoise.run(a.dataset, a.backbone, "test", [0], t), ts)))

    def disk(t):
        denoise._MEMO.clear()
        denoise.run(a.dataset, a.backbone, "test", [0], t)

    rows.append(("panel at a seen t, disk cache", median_ms(disk, ts)))
    grid = [t for t in explore.T_GRID if t is not None]
    rows.append(
        (
            f"strip, {len(grid)} t (one forward)",
            median_ms(lambda i: denoise.strip(a.dataset, a.backbone, "test", i, grid), range(1, 4)),
        )
    )
    idx = np.arange(2000)
    rows.append(
        (
            "class error, 200 images, new t",
            median_ms(lambda t: denoise.class_error(a.dataset, a.backbone, "test", idx, t), [600, 601, 602]),
        )
    )
    print(f"{a.dataset} · {a.backbone} · torch threads {a.threads} · medians over {a.repeat} (3 for the last two)")
    w = max(len(r[0]) for r in rows)
    for name, ms in rows:
        print(f"{name:<{w}}  {ms:8.1f} ms")


if __name__ == "__main__":
    main()
