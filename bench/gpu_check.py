"""One check of a GPU machine, under 9 minutes on one GPU: what runs, how fast, whether it agrees with the CPU,
and which DDPM a few GPU minutes make.

    .venv/bin/python bench/gpu_check.py --out $OUT      # on a GPU machine; ~8 min on one GPU
    .venv/bin/python bench/gpu_check.py --all-on-cpu    # every section on the CPU with tiny sizes (tests the script)

Prints, as markdown tables:
1. the device (name, memory, bf16), torch/CUDA versions, and whether UMAP will run on cuML;
2. DDPM training images/s per preset (small, medium, large; 32x32 RGB, batch 128, bf16 autocast) and peak memory,
   timed through genclf's own training loop;
3. feature extraction images/s: the shipped Fashion-MNIST DDPM on its test split, and the large preset;
4. the shipped DDPM's features of the same 512 test images on the CPU (a subprocess with CUDA hidden) and on the
   GPU: same code, same per-image noise; they must agree within bf16 rounding;
5. DDPMs trained side by side on Fashion-MNIST's unlabeled pool for `--train-min` minutes each, with
   `genclf train --max-minutes` (`--runs`, default: the shipped model's small architecture and recipe; the same
   1.5x wider, 2.5M parameters; the medium preset, 8.9M): steps, epochs, images/s; `--out DIR` brings their
   folders back (the small runs with their resumable checkpoints) as runs.tar.NN parts;
6. validation for each of them and for the shipped CPU model, chosen the same way (blocks at t=20, then t, by
   `sweep-blocks`/`sweep-t` on validation seeds 1000-1002, k=10), then k=1/5/10 on seeds 1000-1004, paired
   against the shipped model. The test split is never read: this table decides what ships.
On a machine without a GPU it says so, runs sections 1-3 on the CPU with small sizes, and exits 0.
Everything it writes (run folders, cache entries) goes to a temporary directory.

On a lent machine with torch but neither diffusers nor the dataset (how the 2026-11-29 runs went, README "GPU
runs"): copy the four Fashion-MNIST .gz files to DIR/fashion-mnist/ and `pip download` diffusers' and
importlib_metadata's wheels beside the checkout, install the wheels there with `pip install --target`, and run
with GENCLF_DATA_DIR=DIR and PYTHONPATH naming the target and the checkout. The checkout, data and wheels
together must fit the device tool's 64 MiB: leave the shipped DDPM's 18 MB checkpoint out of the copy.
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


# Section 5: the runs trained side by side (one process each; small UNets leave a GPU mostly idle, so
# concurrent processes cost each other little). name -> (preset, extra `genclf train` arguments, batch, lr or None).
# Under the lending machine's gVisor a step costs about 50 ms of kernel launches whatever the batch (section 2:
# ~20 steps/s for every preset at batch 128), so GPU runs use large batches and a larger lr.
WIDE = ["--config", '{"block_out_channels": [48, 96, 96]}']  # the small preset 1.5x wider: 2.5M parameters
RUNS = {
    "small": ("small", [], 128, None),  # the shipped CPU model's architecture and recipe
    "wide": ("small", WIDE, 128, None),
    "medium": ("medium", [], 128, None),  # 8.9M parameters, the DDPM CIFAR-10 UNet at half width
    "small-b1024": ("small", [], 1024, 1e-3),
    "wide-b1024": ("small", WIDE, 1024, 1e-3),
    "wide-b512": ("small", WIDE, 512, 7e-4),
}
SCORE_SEEDS = 5  # validation shot seeds 1000.. for the k=1/5/10 table (the sweeps use the first 3)


def train_runs(root: Path, names: list[str], minutes: float, quick: bool) -> dict[str, Path]:
    """Start each named RUNS entry as its own `genclf train --max-minutes` process; wait; return the run folders."""
    procs = {}
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        preset, extra, batch, lr = RUNS[name]
        out = root / f"ddpm-{name}"
        if quick:
            preset, extra, batch = "tiny", ["--limit", "2000"], min(batch, 128)
        extra = [*extra, *(["--lr", f"{lr:g}"] if lr else [])]
        cmd = [sys.executable, "-m", "genclf", "train", "--dataset", "fashion-mnist", "--backbone", "ddpm",
               "--preset", preset, *extra, "--epochs", "400", "--batch-size", str(batch), "--max-minutes", f"{minutes:g}",
               "--threads", "1" if quick else "4", "--out", str(out)]  # fmt: skip
        print(f"- {name}: `{' '.join(cmd[1:])}`", flush=True)
        log = open(root / f"ddpm-{name}.log", "w")  # noqa: SIM115 (closed with the process)
        procs[name] = (subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), out, log)
    print("\n| run | params | steps | epochs | seconds | images/s | model MB |\n|---|---|---|---|---|---|---|")
    done = {}
    for name, (proc, out, log) in procs.items():
        rc = proc.wait(timeout=60 * minutes + 240)
        log.close()
        if rc != 0:
            print(f"| {name} | failed (exit {rc}): {(root / f'ddpm-{name}.log').read_text()[-300:]!r} |||||")
            continue
        doc = json.loads((out / "config.json").read_text())
        secs = doc["train_seconds"]
        mb = (out / "model.safetensors").stat().st_size / 1e6
        n = doc["images_seen"]
        params = mb / 4  # float32 weights
        row = [f"{params:.2f}M", doc["steps"], f"{n / 60000:.1f}", f"{secs:.0f}", f"{n / secs:.0f}", f"{mb:.1f}"]
        print(f"| {name} | " + " | ".join(map(str, row)) + " |", flush=True)
        done[name] = out
    return done


def validate(folder: str, out_json: str, quick: bool) -> None:
    """Choose blocks, then t, on validation (seeds 1000-1002, k=10, logreg), then score k=1/5/10 there.

    The procedure the shipped model's choice came from (`genclf sweep-blocks`, `genclf sweep-t`), applied to
    every model alike; the test split is never read."""
    from genclf import experiments

    val_limit = 300 if quick else experiments.VAL_LIMIT
    seeds = 2 if quick else 3
    sb = experiments.sweep_blocks("fashion-mnist", folder, "logreg", 10, seeds, t=20, val_limit=val_limit)
    blocks = list(sb["best_blocks"])
    grid = [10, 50] if quick else [5, 10, 20, 35, 50, 100]
    st = experiments.sweep_t("fashion-mnist", folder, "logreg", 10, seeds, grid=grid, blocks=blocks, val_limit=val_limit)
    t, scores = st["best_t"], {}
    for k in (1, 5, 10):
        runs = [experiments.evaluate("fashion-mnist", folder, "logreg", k, s, t, blocks, split="val", limit=val_limit,
                                     baseline=False) for s in experiments.val_seeds(2 if quick else SCORE_SEEDS)]  # fmt: skip
        scores[k] = [r["accuracy"] for r in runs]
    Path(out_json).write_text(json.dumps({"blocks": blocks, "t": t, "scores": scores, "n_eval": runs[0]["n_eval"]}))


def validate_all(models: dict[str, Path], root: Path, deadline: float, quick: bool) -> None:
    """Validate every model in its own process (CPU heads in parallel), then print the paired table."""
    procs = {}
    for name, folder in models.items():
        out = root / f"val-{name}.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--validate", str(folder), str(out)]
        cmd += ["--all-on-cpu"] if quick else []
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 4) // max(1, len(models))))}
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs[name] = (proc, out)
    res = {}
    for name, (proc, out) in procs.items():
        try:
            text, _ = proc.communicate(timeout=max(5.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            print(f"- {name}: validation did not finish before the deadline")
            continue
        if proc.returncode != 0 or not out.is_file():
            print(f"- {name}: validation failed: {text[-400:]!r}")
            continue
        res[name] = json.loads(out.read_text())
    if not res:
        return
    base = res.get("shipped (CPU)")
    ks = ("1", "5", "10")
    print(f"\nlogreg on validation ({next(iter(res.values()))['n_eval']} images), seeds 1000.. (k=1/5/10: "
          f"{SCORE_SEEDS}); blocks chosen at t=20, then t, by `sweep-blocks`/`sweep-t` on seeds 1000-1002\n")  # fmt: skip
    head = " | ".join(f"k={k}" for k in ks)
    print(f"| model | blocks | t | {head} | paired vs shipped, k=1/5/10 |\n|---|---|---|---|---|---|---|")
    for name, r in res.items():
        cells = [f"{100 * np.mean(r['scores'][k]):.1f} ± {100 * np.std(r['scores'][k]):.1f}" for k in ks]
        diff = "-"
        if base is not None and name != "shipped (CPU)":
            diff = " / ".join(f"{100 * np.mean(np.subtract(r['scores'][k], base['scores'][k])):+.1f}" for k in ks)
        print(f"| {name} | {'+'.join(r['blocks'])} | {r['t']} | " + " | ".join(cells) + f" | {diff} |", flush=True)


def package(runs: dict[str, Path], dest: Path, part_mb: int = 15) -> None:
    """Everything a run folder holds, as one tar cut into parts under the device tool's per-file limit.

    The `small*` runs keep their checkpoint (resumable, like the shipped CPU model's); the others' full states
    are too large to bring back or commit, so they come back without it, and weights over 20 MB stay behind."""
    import tarfile

    dest.mkdir(parents=True, exist_ok=True)
    tar = dest.parent / "runs.tar"
    with tarfile.open(tar, "w") as tf:
        for name, folder in runs.items():
            for f in sorted(folder.iterdir()):
                if f.name == ".lock" or (f.name == "checkpoint.safetensors" and not name.startswith("small")):
                    continue
                if f.name == "model.safetensors" and f.stat().st_size > 20e6:  # medium: 36 MB, past the size we ship
                    continue
                tf.add(f, arcname=f"ddpm-{name}/{f.name}")
            log = folder.parent / f"ddpm-{name}.log"
            if log.is_file():
                tf.add(log, arcname=f"ddpm-{name}/train_stdout.log")
    data_, part = tar.read_bytes(), part_mb * 2**20
    for i in range(0, len(data_), part):
        (dest / f"runs.tar.{i // part:02d}").write_bytes(data_[i : i + part])
    tar.unlink()
    print(f"\n{len(data_) / 1e6:.1f} MB of run folders in {dest}/runs.tar.NN (`cat runs.tar.* | tar x`)", flush=True)


def checks(cuda: bool, quick: bool, all_on_cpu: bool) -> None:
    """Sections 2-4."""
    from genclf import data
    from genclf.backbones import get, resolve

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

    if cuda or all_on_cpu:
        section("4. The same features on the CPU and on the GPU")
        err, rows, dev = cpu_vs_gpu(64 if quick else 512)
        ok = err < 0.05 and rows < 0.02
        print("| images | max abs diff / max abs | mean relative row error | within bf16 tolerance |\n|---|---|---|---|")
        print(f"| {64 if quick else 512} (cpu vs {dev}) | {err:.2e} | {rows:.2e} | {'yes' if ok else 'NO'} |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-min", type=float, default=4.0, help="minutes of training for section 5")
    p.add_argument("--budget-s", type=float, default=500, help="validation stops at this many seconds from the start")
    p.add_argument("--out", help="bring the section-5 run folders here (runs.tar.NN parts)")
    p.add_argument("--runs", default="small,wide,medium", help=f"section 5's runs, of: {', '.join(RUNS)}")
    p.add_argument("--skip-checks", action="store_true", help="only sections 1, 5 and 6 (the training runs)")
    p.add_argument("--all-on-cpu", action="store_true", help="run every section on the CPU with tiny sizes")
    p.add_argument("--validate", nargs=2, metavar=("FOLDER", "JSON"), help=argparse.SUPPRESS)  # one section-6 worker
    a = p.parse_args()
    if a.validate:
        if a.all_on_cpu:
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        validate(*a.validate, quick=a.all_on_cpu)
        return 0
    if a.all_on_cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch looks for a GPU
    t_all = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="genclf-gpu-check-"))
    os.environ.setdefault("GENCLF_CACHE_DIR", str(tmp / "cache"))
    os.environ.setdefault("GENCLF_RUNS_DIR", str(tmp / "runs"))
    import torch

    cuda = torch.cuda.is_available()
    quick = a.all_on_cpu or not cuda
    section("1. Device")
    device_table(cuda)
    if a.all_on_cpu:
        print("\n--all-on-cpu: every section on the CPU with tiny sizes; the figures test the script, nothing else.")
    elif not cuda:
        print("\nNo CUDA GPU here: sections 2-3 run on the CPU with small sizes; 4-5 need a GPU and are skipped.")

    bad = [r for r in a.runs.split(",") if r not in RUNS]
    if bad:
        p.error(f"unknown run {bad[0]!r}; choose from {', '.join(RUNS)}")
    if not a.skip_checks:
        checks(cuda, quick, a.all_on_cpu)
    if cuda or a.all_on_cpu:
        section("5. DDPM runs on Fashion-MNIST's unlabeled pool, side by side, `genclf train --max-minutes`")
        runs = train_runs(tmp / "runs", a.runs.split(","), 0.15 if quick else a.train_min, quick)
        if a.out and runs:
            package(runs, Path(a.out))
        section("6. Validation: each model's own blocks and t, then k = 1 / 5 / 10 (the test split is not read)")
        shipped = ROOT / "genclf" / "pretrained" / "fashion-mnist" / "ddpm"
        validate_all({"shipped (CPU)": shipped, **runs}, tmp, t_all + a.budget_s, quick)
    print(f"\ntotal {time.time() - t_all:.0f} s; scratch files in {tmp}")
    print(json.dumps({"gpu": cuda, "seconds": round(time.time() - t_all)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
