"""Images/s for feature extraction (shipped weights) and training (fresh `small` models), per backbone.

    .venv/bin/python bench/throughput.py [--n 2048] [--train-steps 10] [--threads 2]

Bar (issue 3): DDPM extraction >= 300 images/s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's genclf, not an installed one

from genclf import data  # noqa: E402
from genclf.backbones import get, resolve  # noqa: E402
from genclf.backbones.ops import autocast, to_unit  # noqa: E402


def extraction_rate(bb, x, t) -> float:
    bb.features(x[:256], t)  # warm-up: allocator, oneDNN kernels
    t0 = time.perf_counter()
    bb.features(x, t)
    return len(x) / (time.perf_counter() - t0)


def training_rate(name: str, ds, steps: int, batch: int) -> float:
    bb = get(name).from_preset("small", ds.shape)
    opts = bb.make_optimizers(None)
    x = to_unit(ds.x_train[:batch])
    gen = torch.Generator().manual_seed(0)
    for m in bb.modules().values():
        m.train()
    with autocast():
        bb.train_step(x, opts, gen, 0)  # warm-up
        t0 = time.perf_counter()
        for s in range(steps):
            bb.train_step(x, opts, gen, s + 1)
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--train-steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ds = data.load("fashion-mnist")
    x = ds.x_test[: a.n]
    print(f"fashion-mnist, {a.n} test images, torch threads={a.threads}, bf16 autocast on CPU")
    print(f"| backbone | feature dim | extraction (images/s) | training (images/s, batch {a.batch_size}) |")
    print("|---|---|---|---|")
    for name in ("ddpm", "vae", "vqvae", "gan", "pixels"):
        bb = resolve(name, "fashion-mnist", **({"shape": ds.shape} if name == "pixels" else {}))
        t = 50 if bb.has_t else None
        dim = bb.features(x[:2], t).shape[1]
        ext = extraction_rate(bb, x, t)
        tr = f"{training_rate(name, ds, a.train_steps, a.batch_size):.0f}" if bb.trainable else "-"
        print(f"| {name} | {dim} | {ext:.0f} | {tr} |", flush=True)


if __name__ == "__main__":
    main()
