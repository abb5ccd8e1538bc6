"""One check of a GPU machine, under 8 minutes on one GPU: what runs, how fast, and whether it agrees with the CPU.

    .venv/bin/python bench/gpu_check.py                 # on a GPU machine; ~5 min on one GPU
    .venv/bin/python bench/gpu_check.py --all-on-cpu    # every section on the CPU with tiny sizes (tests the script)

Prints, as markdown tables:
1. the device (name, memory, bf16), torch/CUDA versions, and whether UMAP will run on cuML;
2. DDPM training images/s per preset (small, medium, large; 32x32 RGB, batch 128, bf16 autocast) and peak memory,
   timed through genclf's own training loop;
3. feature extraction images/s: the shipped Fashion-MNIST DDPM on its test split, and the large preset;
4. the shipped DDPM's features of the same 512 test images on the CPU (a subprocess with CUDA hidden) and on the
   GPU: same code, same per-image noise; they must agree within bf16 rounding;
5. a short run of the large preset on Fashion-MNIST (`--train-s` seconds of steps) and its validation accuracy
   at k=10 (logistic regression, t=10, default blocks, 3 seeds; pixels + logreg on the same shots beside it).
On a machine without a GPU it says so, runs sections 1-3 on the CPU with small sizes, and exits 0.
Everything it writes (a run folder, cache entries) goes to a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's genclf, whatever else is installed
T = 10  # the timestep of the comparisons and of the probe (small t: where the features are best)


def section(title: str) -> None:
    print(f"\n### {title}\n", flush=True)


def device_table(cuda: bool) -> None:
    import torch

    from genclf.backbones.ops import _bf16_ok
    from genclf.explore.projection import umap_backend

    rows = [("torch", torch.__version__), ("CUDA (torch build)", torch.version.cuda or "-")]
    if cuda:
        props = torch.cuda.get_device_properties(0)
        rows += [("device", f"{torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}")]
        rows += [("memory", f"{props.total_memory / 2**30:.0f} GiB"), ("compute capability", f"{props.major}.{props.minor}")]
        rows += [("bf16", str(torch.cuda.is_bf16_supported()))]
    else:
        rows += [("device", f"no CUDA GPU; CPU with {os.cpu_count()} cores, {torch.get_num_threads()} torch threads")]
        rows += [("bf16 autocast", str(_bf16_ok("cpu")))]
    rows += [("UMAP", umap_backend())]
    print("| | |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


def train_rate(preset: str, shape: tuple, batch: int, steps: int, warmup: int = 3) -> tuple[float, float | None, float]:
    """(images/s, peak GPU GiB or None, params in millions) of `steps` timed steps of genclf's training loop."""
    import torch

    from genclf.backbones import get
    from genclf.backbones.train import TrainConfig, train

    bb = get("ddpm").from_preset(preset, shape)
    images = np.random.default_rng(0).integers(0, 256, (batch * (warmup + steps), *shape), dtype=np.uint8)
    stamps: list[float] = []
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    cfg = TrainConfig(epochs=1, batch_size=batch, max_steps=warmup + steps, checkpoint_every_s=1e9)
    train(bb, images, cfg, progress=lambda done, total, info: stamps.append(time.perf_counter()))  # loss.item() syncs
    rate = steps * batch / (stamps[-1] - stamps[warmup - 1])
    mem = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return rate, mem, sum(p.numel() for p in bb.unet.parameters()) / 1e6


def extract_rate(bb, images: np.ndarray) -> float:
    bb.features(images[:256], T)  # warm-up (kernels, autotuning)
    t0 = time.perf_counter()
    bb.features(images, T)
    return len(images) / (time.perf_counter() - t0)


CPU_FEATURES = """
import sys, numpy as np, torch
from genclf import data
from genclf.backbones import resolve
torch.set_num_threads(max(1, len(__import__("os").sched_getaffinity(0))))
ds = data.load("fashion-mnist")
x = resolve("ddpm", "fashion-mnist").features(ds.x_test[: int(sys.argv[2])], int(sys.argv[3]))
np.save(sys.argv[1], x)
"""


def cpu_vs_gpu(n: int) -> tuple[float, float, str]:
    """(max |cpu - gpu| / max |cpu|, mean relative row error, device) for the shipped DDPM on n test images."""
    from genclf import data
    from genclf.backbones import resolve

    out = Path(tempfile.mkdtemp()) / "cpu.npy"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", CPU_FEATURES, str(out), str(n), str(T)], cwd=ROOT, env=env, check=True)
    cpu = np.load(out)
    ds = data.load("fashion-mnist")
    bb = resolve("ddpm", "fashion-mnist")
    gpu = bb.features(ds.x_test[:n], T)
    err = np.abs(cpu - gpu).max() / np.abs(cpu).max()
    rows = np.linalg.norm(cpu - gpu, axis=1) / np.maximum(np.linalg.norm(cpu, axis=1), 1e-12)
    return float(err), float(rows.mean()), str(bb.ema.device)


def short_run(preset: str, seconds: float, rate: float, batch: int, seeds: int, limit: int | None) -> list[str]:
    """Train `preset` on Fashion-MNIST for about `seconds` (at `rate` images/s), then score it on validation at k=10."""
    from genclf import data, experiments
    from genclf.backbones import get
    from genclf.backbones.train import TrainConfig, train

    ds = data.load("fashion-mnist")
    steps = max(1, int(seconds * rate / batch))
    out = Path(os.environ["GENCLF_RUNS_DIR"]) / "fashion-mnist" / f"ddpm-{preset}"
    bb = get("ddpm").from_preset(preset, ds.shape)
    t0 = time.time()
    cfg = TrainConfig(epochs=1e6, batch_size=batch, max_steps=steps, hflip=ds.hflip)
    train(bb, ds.unlabeled_pool(), cfg, out_dir=out, meta={"dataset": ds.name, "data_fingerprint": ds.fingerprint})
    took = time.time() - t0
    accs, base = [], []
    for seed in range(seeds):
        r = experiments.evaluate("fashion-mnist", str(out), "logreg", 10, seed, t=T, split="val", limit=limit)
        accs.append(r["accuracy"])
        base.append(r["baseline_accuracy"])
    epochs = steps * batch / len(ds.unlabeled_pool())
    return [
        f"| {preset} | {steps} steps ({epochs:.2f} epochs, {took:.0f} s) | {r['n_eval']} | "
        f"{100 * np.mean(accs):.1f} ± {100 * np.std(accs):.1f} | {100 * np.mean(base):.1f} ± {100 * np.std(base):.1f} |"
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-s", type=float, default=150, help="seconds of training for section 5")
    p.add_argument("--all-on-cpu", action="store_true", help="run every section on the CPU with tiny sizes")
    a = p.parse_args()
    if a.all_on_cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch looks for a GPU
    t_all = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="genclf-gpu-check-"))
    os.environ.setdefault("GENCLF_CACHE_DIR", str(tmp / "cache"))
    os.environ.setdefault("GENCLF_RUNS_DIR", str(tmp / "runs"))
    import torch

    from genclf import data
    from genclf.backbones import get, resolve

    cuda = torch.cuda.is_available()
    quick = a.all_on_cpu or not cuda
    section("1. Device")
    device_table(cuda)
    if a.all_on_cpu:
        print("\n--all-on-cpu: every section on the CPU with tiny sizes; the figures test the script, nothing else.")
    elif not cuda:
        print("\nNo CUDA GPU here: sections 2-3 run on the CPU with small sizes; 4-5 need a GPU and are skipped.")

    section("2. DDPM training, bf16 autocast, genclf's training loop")
    presets = ["tiny", "small"] if quick else ["small", "medium", "large"]
    shape, batch, steps = ((3, 32, 32), 16, 3) if quick else ((3, 32, 32), 128, 20)
    print(f"32x32 RGB, batch {batch}, {steps} timed steps after 3 warm-up steps\n")
    print("| preset | params | images/s | steps/s | peak GPU memory |\n|---|---|---|---|---|")
    rates = {}
    for preset in presets:
        rate, mem, params = train_rate(preset, shape, batch, steps)
        rates[preset] = rate
        m = f"{mem:.1f} GiB" if mem is not None else "-"
        print(f"| {preset} | {params:.1f}M | {rate:.0f} | {rate / batch:.2f} | {m} |", flush=True)

    section("3. Feature extraction (bf16, batch 256, t=10, default blocks)")
    ds = data.load("fashion-mnist")
    n = 512 if quick else len(ds.x_test)
    print("| model | images | images/s |\n|---|---|---|")
    shipped = extract_rate(resolve("ddpm", "fashion-mnist"), ds.x_test[:n])
    print(f"| shipped fashion-mnist ddpm (small) | {n} | {shipped:.0f} |")
    big = "tiny" if quick else "large"
    x32 = np.random.default_rng(0).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    rate = extract_rate(get("ddpm").from_preset(big, (3, 32, 32)), x32)
    print(f"| {big} preset (random weights), 32x32 RGB | {n} | {rate:.0f} |")

    if cuda or a.all_on_cpu:
        section("4. The same features on the CPU and on the GPU")
        err, rows, dev = cpu_vs_gpu(64 if quick else 512)
        ok = err < 0.05 and rows < 0.02
        print("| images | max abs diff / max abs | mean relative row error | within bf16 tolerance |\n|---|---|---|---|")
        print(f"| {64 if quick else 512} (cpu vs {dev}) | {err:.2e} | {rows:.2e} | {'yes' if ok else 'NO'} |")

        section("5. A short training run on Fashion-MNIST, validation accuracy at k=10")
        preset = "tiny" if quick else "large"
        print(f"preset {preset}, batch 128, bf16; logreg on 10 shots/class from the pool, t={T}, default blocks\n")
        print("| preset | training | validation images | ddpm + logreg (val, %) | pixels + logreg, same shots |")
        print("|---|---|---|---|---|")
        rate = rates.get(preset) or rates[presets[-1]]
        for line in short_run(preset, 10 if quick else a.train_s, rate, 128, 2 if quick else 3, 500 if quick else None):
            print(line)
    print(f"\ntotal {time.time() - t_all:.0f} s; scratch files in {tmp}")
    print(json.dumps({"gpu": cuda, "seconds": round(time.time() - t_all)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
