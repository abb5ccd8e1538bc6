"""How often a 2-process `accelerate launch` run of genclf fails at exit (DDP over gloo on the CPU).

Each run trains a tiny VAE for 6 steps, the same launch tests/test_accelerate.py makes, and counts the
runs whose exit status is not 0. Before the teardown fix in genclf/backbones/distributed.py about 1 run
in 8 aborted at exit ("terminate called without an active exception").

    .venv/bin/python bench/ddp_exit.py --runs 40
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40)
    a = ap.parse_args()
    failed, t0 = [], time.time()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "HF_HOME": f"{tmp}/hf"}
        env["GENCLF_CHECKPOINT_EVERY_S"] = "1e9"
        for i in range(a.runs):
            cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--dynamo_backend", "no"]
            cmd += ["--mixed_precision", "no", "--main_process_port", str(_port()), "--multi_gpu", "--num_processes", "2"]
            cmd += ["-m", "genclf", "train", "--dataset", "digits", "--backbone", "vae", "--preset", "tiny"]
            cmd += ["--epochs", "1", "--batch-size", "16", "--max-steps", "6", "--out", f"{tmp}/run{i}"]
            r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                failed.append(i)
                tail = [ln for ln in r.stderr.splitlines() if "terminate" in ln or "Error" in ln][:2]
                print(f"run {i}: exit {r.returncode} {' | '.join(tail)}", flush=True)
    print(f"{len(failed)} of {a.runs} runs failed ({time.time() - t0:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
