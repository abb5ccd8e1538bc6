"""Training throughput of the DDPM in 1 and N processes under `accelerate launch`, and the scaling efficiency.

    .venv/bin/python bench/scaling.py                       # CPU: 1 and 2 processes, one thread each
    .venv/bin/python bench/scaling.py --presets small,medium,large --batch 128   # on a GPU machine

Each run is genclf's own training loop (genclf.backbones.train) on the dataset's train images, the
per-process batch fixed (so N processes train on an N times larger global batch), timed from the step
after `--warmup` to the last one by the main process. Efficiency = images/s with N processes / (N x images/s
with one). With no GPU, N processes are DDP over gloo on the CPU (`--multi_gpu` with no GPU present);
with GPUs, N is every visible GPU. A row "1 process, N threads" gives one process the cores N processes use.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's genclf, whatever else is installed


def worker(a) -> None:
    import torch

    from genclf import data
    from genclf.backbones import distributed, get
    from genclf.backbones.train import TrainConfig, train

    torch.set_num_threads(a.threads)
    ds = data.load(a.dataset)
    images = ds.unlabeled_pool()
    bb = get("ddpm").from_preset(a.preset, ds.shape)
    d = distributed.get()
    world = d.world if d else 1
    stamps: list[float] = []
    cfg = TrainConfig(epochs=1e6, batch_size=a.batch, max_steps=a.warmup + a.steps, checkpoint_every_s=1e9)
    train(bb, images, cfg, progress=lambda done, total, info: stamps.append(time.perf_counter()))
    if d is None or d.main:
        dt = stamps[-1] - stamps[a.warmup - 1]
        params = sum(p.numel() for p in bb.unet.parameters())
        mem = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
        row = {"preset": a.preset, "params_m": round(params / 1e6, 2), "processes": world, "threads": a.threads}
        row.update({"batch": a.batch, "global_batch": a.batch * world, "steps": a.steps, "seconds": round(dt, 2)})
        row.update({"steps_per_s": round(a.steps / dt, 3), "img_per_s": round(a.steps * a.batch * world / dt, 1)})
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux -> GiB
        row.update({"gpu_mem_gib": round(mem, 2) if mem is not None else None, "device": str(bb.unet.device)})
        row["peak_rss_gib"] = round(rss, 2)
        row["images"] = f"{len(images)} x {tuple(images.shape[1:])}"
        print("RESULT " + json.dumps(row), flush=True)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(processes: int, threads: int, a) -> dict:
    args = ["--worker", "--preset", a.preset, "--dataset", a.dataset, "--batch", str(a.batch)]
    args += ["--steps", str(a.steps), "--warmup", str(a.warmup), "--threads", str(threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--dynamo_backend", "no"]
    launch += ["--mixed_precision", "bf16", "--main_process_port", str(_port())]
    launch += ["--multi_gpu", "--num_processes", str(processes)] if processes > 1 else ["--num_processes", "1"]
    r = subprocess.run([*launch, __file__, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    rows = [json.loads(line[7:]) for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    if r.returncode != 0 or not rows:
        sys.exit(f"run with {processes} processes failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return rows[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--presets", default="small")
    p.add_argument("--batch", type=int, default=64, help="per process")
    p.add_argument("--steps", type=int, default=12, help="timed steps")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--processes", type=int, default=None, help="default: 2 on CPU, every GPU otherwise")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--preset", default="small", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return worker(a)
    import torch

    gpus = torch.cuda.device_count()
    n = a.processes or (gpus if gpus > 1 else 2)
    if gpus == 1 and n > 1:
        sys.exit("one GPU: several processes would share it; pass --processes 1 (or run on a multi-GPU machine)")
    where = f"{gpus} GPU(s): {torch.cuda.get_device_name(0)}" if gpus else f"CPU, {os.cpu_count()} cores, 1 thread/process"
    print(f"DDPM training throughput, {a.dataset}, per-process batch {a.batch}, bf16 autocast, {where}")
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    rows = []
    for preset in a.presets.split(","):
        a.preset = preset
        one = run(1, 1, a)
        rows.append((one, None))
        if not gpus and n > 1:
            rows.append((run(1, n, a), None))
        if n > 1:
            many = run(n, 1, a)
            rows.append((many, many["img_per_s"] / (n * one["img_per_s"])))
    print(f"load average after: {os.getloadavg()[0]:.1f}\n")
    print("| preset | params | processes x threads | global batch | s/step | images/s | scaling efficiency | memory |")
    print("|---|---|---|---|---|---|---|---|")
    for r, eff in rows:
        e = f"{100 * eff:.0f}%" if eff is not None else "-"
        mem = f"{r['gpu_mem_gib']} GiB GPU" if r["gpu_mem_gib"] is not None else f"{r['peak_rss_gib']} GiB RSS/process"
        print(
            f"| {r['preset']} | {r['params_m']}M | {r['processes']} x {r['threads']} | {r['global_batch']} | "
            f"{1 / r['steps_per_s']:.2f} | {r['img_per_s']:.1f} | {e} | {mem} |"
        )


if __name__ == "__main__":
    main()
