"""Fault injection, slow cases (issue 12): kill -9 during training and cache writes, full disks, bombs, damaged files.

    .venv/bin/python bench/faults.py                 # every case, ~6 min on 2 busy cores
    .venv/bin/python bench/faults.py --only bomb,cache

Every command runs as a user would run it (`python -m genclf ...` in a subprocess, one torch thread) in a
scratch folder. Kills are SIGKILL, either at random moments or at chosen points (right after or before a
given os.replace, injected in the child). Full disks are small tmpfs mounts (needs root and mount rights;
otherwise those cases print why they were skipped). Prints a markdown table: case | expected | observed |
data lost, and exits 1 if any case lost data or ended in a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EPOCHS, BATCH = 10, 64  # digits: 1437 train images -> 22 steps/epoch, 220 steps, ~8 s on one thread
TRAIN = ["train", "--dataset", "digits", "--backbone", "vae", "--preset", "tiny", "--epochs", str(EPOCHS),
         "--batch-size", str(BATCH)]  # fmt: skip
ROWS: list[tuple[str, str, str, str, bool]] = []

# Run genclf with a SIGKILL injected at the FAULT_NTH os.replace whose target name matches FAULT_MATCH
# (a prefix, or '<hex64>' for a cache entry), FAULT_WHEN='before' or 'after' the rename.
KILLER = """
import os, re, signal, sys
match, nth, when = os.environ["FAULT_MATCH"], int(os.environ["FAULT_NTH"]), os.environ["FAULT_WHEN"]
real, seen = os.replace, [0]
def hit(dst):
    name = os.path.basename(os.fspath(dst))
    return re.fullmatch("[0-9a-f]{64}", name) if match == "<hex64>" else name.startswith(match)
def replace(src, dst, *a, **k):
    fire = hit(dst) and (seen.__setitem__(0, seen[0] + 1) or seen[0] == nth)
    if fire and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst, *a, **k)
    if fire:
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
from genclf.cli import main
sys.exit(main(sys.argv[1:]))
"""


def env(work: Path, **extra) -> dict:
    e = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
         "GENCLF_CACHE_DIR": str(work / "cache"), "GENCLF_RUNS_DIR": str(work / "runs"),
         "GENCLF_DATA_DIR": str(work / "data")}  # fmt: skip
    e.pop("GENCLF_CHECKPOINT_EVERY_S", None)
    return {**e, **{k: str(v) for k, v in extra.items()}}


def genclf(work: Path, *args: str, fault: dict | None = None, timeout: int = 600, **extra):
    cmd = [sys.executable, "-c", KILLER, *args] if fault else [sys.executable, "-m", "genclf", *args]
    e = env(work, **extra, **({f"FAULT_{k.upper()}": v for k, v in fault.items()} if fault else {}))
    return subprocess.run(cmd, cwd=work, env=e, capture_output=True, text=True, timeout=timeout)


def verdict(p) -> str:
    """'ok', 'exit 2: <first words>' or 'traceback: <last line>' / 'killed'."""
    if p.returncode == -signal.SIGKILL:
        return "killed"
    if "Traceback" in p.stderr:  # the exception line: the first unindented line after the last traceback
        tail = p.stderr.rsplit("Traceback (most recent call last):", 1)[1].splitlines()
        exc = next((line for line in tail if line and not line[0].isspace()), "?")
        return "traceback: " + re.sub(r"(?<![\w.-])/(?:[^\s/]+/)+", "", exc)[:90]
    if p.returncode == 0:
        return "ok"
    last = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
    msg = re.sub(r"(?<![\w.-])/(?:[^\s/]+/)+", "", last.removeprefix("genclf: error: "))  # file names without their folders
    return f"exit {p.returncode}: {msg[:80]}{'...' if len(msg) > 80 else ''}"


def one_line_error(p) -> bool:
    lines = p.stderr.strip().splitlines()
    return p.returncode == 2 and "Traceback" not in p.stderr and bool(lines) and lines[-1].startswith("genclf: error:")


def row(case: str, expected: str, observed: str, lost: str, ok: bool) -> None:
    ROWS.append((case, expected, observed, lost, ok))
    print(f"[{'ok' if ok else 'FAIL'}] {case}: {observed}; lost: {lost}", flush=True)


def weights(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def ckpt_step(out: Path) -> int | None:
    """The step a resume would start from: checkpoint.json, or the checkpoint's safetensors metadata."""
    with contextlib.suppress(Exception):
        return int(json.loads((out / "checkpoint.json").read_text())["step"])
    with contextlib.suppress(Exception):
        from safetensors import safe_open

        with safe_open(str(out / "checkpoint.safetensors"), "np") as f:
            return int((f.metadata() or {})["step"])
    return None


def torn_checkpoint(out: Path) -> str:
    """'' when the checkpoint is one consistent unit, else which step each part holds (item 2's window)."""
    with contextlib.suppress(Exception):
        from safetensors.numpy import load_file

        step = json.loads((out / "checkpoint.json").read_text())["step"]
        adam = {int(v) for k, v in load_file(str(out / "checkpoint.safetensors")).items() if k.endswith(".step")}
        if adam and adam != {step}:
            return f" (json at {step}, weights and Adam at {max(adam)})"
    return ""


# ------------------------------------------------------------------ training


def kill_at_step(work: Path, out: Path, target: int, jitter: float, **extra) -> str:
    """Start (or resume) training, kill -9 `jitter` s after its checkpoint reaches `target`; the checkpoint step left.

    Checkpoints come every step here, and the poll is not in step with the loop: the kill lands anywhere
    in a step (forward, backward, optimizer, or writing the checkpoint)."""
    proc = subprocess.Popen([sys.executable, "-m", "genclf", *TRAIN, "--out", str(out)], cwd=work, env=env(work, **extra),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    while proc.poll() is None and (ckpt_step(out) or 0) < target and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(jitter)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return f"{ckpt_step(out)}{torn_checkpoint(out)}"


def train_cases(work: Path) -> Path:
    ref = work / "runs" / "reference"
    p = genclf(work, *TRAIN, "--out", str(ref))
    assert p.returncode == 0, p.stderr[-2000:]
    rng = random.Random(12)

    # kills at random points, a checkpoint every step
    out = work / "runs" / "random"
    resumed = []
    for target in sorted(rng.sample(range(10, 200), 3)):
        resumed.append(kill_at_step(work, out, target, rng.uniform(0, 0.05), GENCLF_CHECKPOINT_EVERY_S=0))
    p = genclf(work, *TRAIN, "--out", str(out), GENCLF_CHECKPOINT_EVERY_S=0)
    same = p.returncode == 0 and same_weights(ref, out)
    row("train: kill -9 at 3 random points (checkpoint every step), rerun", "resumes; final weights bit-identical",
        f"{verdict(p)}, resumed at steps {', '.join(resumed)}; weights {'identical' if same else 'DIFFER'}",
        "none" if same else "final model differs" + (", torn checkpoint (item 2)" if "json at" in str(resumed) else ""),
        same)  # fmt: skip

    # the kill between the checkpoint's two files (item 2): right after checkpoint.safetensors is replaced
    out = work / "runs" / "between"
    genclf(work, *TRAIN, "--out", str(out), GENCLF_CHECKPOINT_EVERY_S=0,
           fault={"match": "checkpoint.safetensors", "nth": 60, "when": "after"})  # fmt: skip
    at = f"{ckpt_step(out)}{torn_checkpoint(out)}"
    p = genclf(work, *TRAIN, "--out", str(out), GENCLF_CHECKPOINT_EVERY_S=0)
    same = p.returncode == 0 and same_weights(ref, out)
    row("train: kill -9 right after the checkpoint weights are replaced (step 60)",
        "resume at step 60; weights bit-identical",
        f"{verdict(p)}, resumed at step {at}, weights {'identical' if same else 'DIFFER'}",
        "none" if same else "final model differs, no warning (item 2)", same)  # fmt: skip

    # a torn last line in train_log.jsonl (item 3)
    out = work / "runs" / "torn"
    genclf(work, *TRAIN, "--out", str(out), GENCLF_CHECKPOINT_EVERY_S=0,
           fault={"match": "checkpoint.safetensors", "nth": 80, "when": "after"})  # fmt: skip
    with open(out / "train_log.jsonl", "a") as f:
        f.write('{"step": 100, "epoch": 4.5')  # what a kill in the middle of an append leaves
    p = genclf(work, *TRAIN, "--out", str(out), GENCLF_CHECKPOINT_EVERY_S=0)
    same = p.returncode == 0 and same_weights(ref, out)
    row("train: torn last line in train_log.jsonl, rerun", "resumes, drops the torn row; weights identical",
        verdict(p), "none" if same else "run cannot resume (item 3)", same)  # fmt: skip

    # default 120 s checkpoints: a kill in epoch 7 (item 9)
    out = work / "runs" / "epochs"
    e = env(work)
    proc = subprocess.Popen([sys.executable, "-m", "genclf", *TRAIN, "--out", str(out)], cwd=work, env=e,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    log, deadline = out / "train_log.jsonl", time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError, IndexError):  # a line may be half written
            if json.loads(log.read_text().splitlines()[-1])["step"] >= 150:
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_epochs = 150 // (1437 // BATCH)
    at = ckpt_step(out) or 0
    lost = done_epochs - at // (1437 // BATCH)
    p = genclf(work, *TRAIN, "--out", str(out))
    same = p.returncode == 0 and same_weights(ref, out)
    row(f"train: kill -9 after {done_epochs} finished epochs (default 120 s checkpoints)",
        "resume from the last epoch end; weights identical",
        f"{verdict(p)}, resumed at step {at}, weights {'identical' if same else 'DIFFER'}",
        "none" if lost <= 0 and same else f"{lost} finished epoch(s) redone (item 9)", lost <= 0 and same)  # fmt: skip
    return ref


# ------------------------------------------------------------------ cache writes


def entries(root: Path) -> dict[str, np.ndarray]:
    from genclf.cache import Cache

    c = Cache(root)
    return {e.key: c.read(e.kind, e.key)["x"] for e in c.entries()}


def same_entries(a: Path, b: Path) -> bool:
    ea, eb = entries(a), entries(b)
    return ea.keys() == eb.keys() and all(np.array_equal(ea[k], eb[k]) for k in ea)


def leftovers(root: Path) -> list[str]:
    return [p.name for p in root.glob("*/*/.*")]


def cache_cases(work: Path, backbone: Path) -> None:
    feats = ["features", "--dataset", "digits", "--backbone", str(backbone), "--split", "train"]
    ref = work / "cache-ref"
    assert genclf(work, *feats, GENCLF_CACHE_DIR=ref).returncode == 0

    rng, root, kills = random.Random(5), work / "cache-random", 0
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-m", "genclf", *feats], cwd=work, env=env(work, GENCLF_CACHE_DIR=root),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(rng.uniform(2.0, 9.0))
        kills += proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    p = genclf(work, *feats, GENCLF_CACHE_DIR=root)
    ok = p.returncode == 0 and same_entries(ref, root) and not leftovers(root)
    row(f"cache: kill -9 at 5 random moments of `genclf features` ({kills} landed), rerun",
        "entries identical to an uninterrupted run; no leftovers",
        f"{verdict(p)}, entries {'identical' if ok else 'DIFFER'}, leftovers {leftovers(root)}",
        "none" if ok else "entries differ or leftovers", ok)  # fmt: skip

    root = work / "cache-publish"
    genclf(work, *feats, GENCLF_CACHE_DIR=root, fault={"match": "<hex64>", "nth": 1, "when": "before"})
    left = leftovers(root)
    p = genclf(work, *feats, GENCLF_CACHE_DIR=root)
    ok = p.returncode == 0 and same_entries(ref, root) and not leftovers(root)
    row("cache: kill -9 with the entry written, before its publish (os.replace)",
        "nothing served half-written; rerun recomputes, sweeps the temp dir",
        f"left {len(left)} temp dir(s); rerun {verdict(p)}; after: {len(leftovers(root))} leftover(s)",
        "none" if ok else "entries differ or leftovers", ok)  # fmt: skip

    root = work / "cache-trash"
    shutil.copytree(ref, root)
    data = next(root.glob("features/*/*/data.safetensors"))
    raw = bytearray(data.read_bytes())
    raw[-8:] = bytes(b ^ 0xFF for b in raw[-8:])
    data.write_bytes(bytes(raw))  # a corrupt entry: the next reader discards it (rename to .trash-, rmtree)
    genclf(work, *feats, GENCLF_CACHE_DIR=root, fault={"match": ".trash-", "nth": 1, "when": "after"})
    left = leftovers(root)
    du = genclf(work, "cache", "du", GENCLF_CACHE_DIR=root).stdout
    advice = "clear --yes" if "clear --yes" in du else "cache sweep" if "cache sweep" in du else "nothing"
    p = genclf(work, *feats, GENCLF_CACHE_DIR=root)
    ok = p.returncode == 0 and same_entries(ref, root) and not leftovers(root) and advice != "clear --yes"
    row("cache: kill -9 while discarding a corrupt entry (.trash- left), du, rerun",
        "du recommends only `cache sweep`; rerun sweeps and recomputes identically",
        f"left {len(left)} .trash- folder; du recommends {advice}; rerun {verdict(p)}; "
        f"after: {len(leftovers(root))} leftover(s)",
        "none" if ok else "leftover kept, or du recommends deleting valid entries", ok)  # fmt: skip


# ------------------------------------------------------------------ full disks (tmpfs)


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if p.returncode != 0:
        raise PermissionError(p.stderr.strip() or "mount failed")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def disk_full_cases(work: Path, ref: Path) -> None:
    if os.geteuid() != 0:
        print("disk-full cases skipped: they mount small tmpfs folders, which needs root (rerun with sudo)")
        return
    try:
        with tmpfs(work / "full-cache", "192k") as root:
            small = genclf(work, "features", "--dataset", "digits", "--backbone", "pixels", "--split", "test",
                           "--limit", "100", GENCLF_CACHE_DIR=root)  # fmt: skip
            big = genclf(work, "features", "--dataset", "digits", "--backbone", "pixels", "--split", "train",
                         GENCLF_CACHE_DIR=root)  # fmt: skip
            again = genclf(work, "features", "--dataset", "digits", "--backbone", "pixels", "--split", "test",
                           "--limit", "100", GENCLF_CACHE_DIR=root)  # fmt: skip
            ok = small.returncode == 0 and one_line_error(big) and "cached" in again.stdout and not leftovers(root)
            row("cache: disk full (192 KB tmpfs) writing a 368 KB entry", "exit 2, one line; earlier entry served",
                f"{verdict(big)}; earlier entry {'served from cache' if 'cached' in again.stdout else 'LOST'}",
                "none" if ok else "entry lost or temp dir left", ok)  # fmt: skip
    except PermissionError as e:
        print(f"disk-full cases skipped: cannot mount a tmpfs here ({e})")
        return
    with tmpfs(work / "full-data", "512k") as root:
        rng = np.random.default_rng(0)
        zpath = work / "noise.zip"
        with zipfile.ZipFile(zpath, "w") as z:
            for c in ("a", "b"):
                for i in range(12):
                    z.writestr(f"noise/{c}/{i}.png", _png(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)))
        code = "import sys; from genclf.data import upload; upload.import_zip(sys.argv[1], 'noise')"
        p = subprocess.run([sys.executable, "-c", _as_cli(code), str(zpath)], cwd=work,
                           env=env(work, GENCLF_DATA_DIR=root), capture_output=True, text=True)  # fmt: skip
        left = list((root / "uploads").iterdir()) if (root / "uploads").is_dir() else []
        ok = one_line_error(p) and not left
        row("upload: disk full (512 KB tmpfs) unpacking a 650 KB zip", "one-line error; nothing left behind",
            f"{verdict(p)}; {len(left)} folder(s) left", "none" if ok else "partial dataset left", ok)  # fmt: skip
    # room for one checkpoint, the model and the small files, not for the next checkpoint's temp file beside it
    page = 4096
    pages = sum(-(-(ref / f).stat().st_size // page) for f in ("checkpoint.safetensors", "model.safetensors"))
    size = (pages + 6 + (ref / "checkpoint.safetensors").stat().st_size // page // 2) * page
    out = work / "runs" / "disk-full"
    with tmpfs(work / "full-runs", str(size)) as root:
        p = genclf(work, *TRAIN, "--out", str(root / "vae"), GENCLF_CHECKPOINT_EVERY_S=0)
        kept = ckpt_step(root / "vae")
        shutil.copytree(root / "vae", out)  # space freed: the run moves to a disk with room
    again = genclf(work, *TRAIN, "--out", str(out), GENCLF_CHECKPOINT_EVERY_S=0)
    same = again.returncode == 0 and same_weights(ref, out)
    ok = one_line_error(p) and bool(kept) and same
    row(f"train: disk full ({size // 1024} KB tmpfs, room for one checkpoint) while checkpointing, then rerun",
        "exit 2, one line; last checkpoint kept; the rerun resumes to identical weights",
        f"{verdict(p)}; checkpoint of step {kept} kept; rerun {verdict(again)}, weights {'identical' if same else 'DIFFER'}",
        "none" if ok else "traceback, checkpoint lost or weights differ", ok)  # fmt: skip


def _as_cli(code: str) -> str:
    """Run `code` like the CLI does: a GenclfError becomes one 'genclf: error:' line and exit 2."""
    return (
        "import sys\nfrom genclf.errors import GenclfError\ntry:\n"
        + "".join(f"    {line}\n" for line in code.splitlines())
        + "except GenclfError as e:\n    sys.stderr.write(f'genclf: error: {e}\\n'); sys.exit(2)\n"
    )


def _png(a: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------ bombs


# Peak RSS of one upload/read above the process's RSS just before it. VmHWM, not ru_maxrss: the latter keeps
# the parent's RSS across fork+exec. Writing 5 to clear_refs resets VmHWM to the current RSS.
RSS = """
import json, sys
from pathlib import Path
from PIL import Image
from genclf.data import formats, upload
from genclf.errors import GenclfError
mb = lambda key: int(open("/proc/self/status").read().split(key + ":")[1].split()[0]) / 1024
open("/proc/self/clear_refs", "w").write("5")
base = mb("VmRSS")
try:
    upload.import_zip(sys.argv[2], "bomb") if sys.argv[1] == "zip" else formats.read_idx(Path(sys.argv[2]))
    err = None
except GenclfError as e:
    err = str(e)
print(json.dumps({"mb": mb("VmHWM") - base, "error": err}))
"""


def rss(work: Path, kind: str, path: Path) -> tuple[float, str | None, str]:
    p = subprocess.run([sys.executable, "-c", RSS, kind, str(path)], cwd=work, env=env(work), capture_output=True,
                       text=True, timeout=600)  # fmt: skip
    if p.returncode != 0:
        return float("nan"), None, verdict(p)
    doc = json.loads(p.stdout.strip().splitlines()[-1])
    return doc["mb"], doc["error"], "refused" if doc["error"] else "ACCEPTED"


def bomb_cases(work: Path) -> None:
    gb, chunk = 2**30, bytes(2**20)
    honest = work / "bomb.zip"
    with zipfile.ZipFile(honest, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for c in ("a", "b"):
            for i in range(2):
                z.writestr(f"b/{c}/{i}.png", _png(np.full((8, 8, 3), 40 * i, np.uint8)))
        with z.open("b/a/zeros.png", "w") as f:
            for _ in range(gb // len(chunk)):
                f.write(chunk)
    mb, err, what = rss(work, "zip", honest)
    left = list((work / "data" / "uploads").glob("*")) if (work / "data" / "uploads").is_dir() else []
    ok = what == "refused" and mb < 200 and not left
    row(f"upload: zip bomb, {honest.stat().st_size / 1e6:.1f} MB zip holding a 1 GB member",
        "refused before inflating; RSS < 200 MB above baseline",
        f"{what} ({(err or '')[:40]}...), RSS +{mb:.0f} MB", "none" if ok else "memory or files", ok)  # fmt: skip

    liar = work / "liar.zip"  # the same bomb, its headers claiming 1 MB unpacked: the ratio check cannot see it
    raw = bytearray(honest.read_bytes())
    info = zipfile.ZipFile(honest).getinfo("b/a/zeros.png")
    struct.pack_into("<I", raw, info.header_offset + 22, 2**20)  # local header: uncompressed size
    cd = len(raw)
    while (cd := raw.rfind(b"PK\x01\x02", 0, cd)) >= 0:  # its central directory record, from the end
        n = struct.unpack_from("<H", raw, cd + 28)[0]
        if raw[cd + 46 : cd + 46 + n] == b"b/a/zeros.png":
            struct.pack_into("<I", raw, cd + 24, 2**20)
            break
    liar.write_bytes(bytes(raw))
    mb, err, what = rss(work, "zip", liar)
    ok = what == "refused" and mb < 200
    row("upload: the same bomb with headers claiming 1 MB", "stops at the claimed size, refused; RSS < 200 MB",
        f"{what} ({(err or '')[:40]}...), RSS +{mb:.0f} MB", "none" if ok else "memory", ok)  # fmt: skip

    many = work / "directory.zip"
    with zipfile.ZipFile(many, "w", zipfile.ZIP_STORED) as z:
        for i in range(250_000):
            z.writestr(f"d/a/{i:06d}.png", b"")
    mb, err, what = rss(work, "zip", many)
    ok = what == "refused" and mb < 200
    row(f"upload: 250k-entry zip ({many.stat().st_size / 1e6:.0f} MB, directory bomb)",
        "refused before zipfile parses it; RSS < 200 MB", f"{what}, RSS +{mb:.0f} MB", "none" if ok else "memory",
        ok)  # fmt: skip

    idx = work / "data" / "MNIST" / "raw"
    idx.mkdir(parents=True, exist_ok=True)
    bomb = idx / "train-images-idx3-ubyte.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", 60000, 28, 28))  # announces 47 MB
        for _ in range(gb // len(chunk)):
            f.write(chunk)
    mb, err, what = rss(work, "idx", bomb)
    ok = what == "refused" and mb < 100
    row(f"IDX: {bomb.stat().st_size / 1e6:.1f} MB .gz inflating to 1 GB, header announcing 47 MB",
        "refused after the announced bytes; RSS < 100 MB", f"{what}, RSS +{mb:.0f} MB", "none" if ok else "memory",
        ok)  # fmt: skip
    shutil.rmtree(work / "data" / "MNIST")


# ------------------------------------------------------------------ damaged files, through the CLI


def damaged_cases(work: Path) -> None:
    from genclf.data import formats

    raw = work / "data" / "MNIST" / "raw"
    rng = np.random.default_rng(0)

    def mnist(images: bytes | None = None, labels: bytes | None = None):
        shutil.rmtree(raw, ignore_errors=True)
        raw.mkdir(parents=True)
        for prefix in ("train", "t10k"):
            formats.write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (30, 28, 28), dtype=np.uint8))
            formats.write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(30) % 10)
        if images is not None:
            (raw / "train-images-idx3-ubyte").write_bytes(images)
        if labels is not None:
            (raw / "train-labels-idx1-ubyte").write_bytes(labels)

    def idx(code: int, dims: tuple, body: bytes) -> bytes:
        return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + body

    gz = bytearray(gzip.compress(idx(8, (30, 28, 28), bytes(30 * 784)), mtime=0))
    gz[30] ^= 0xFF

    def damaged_gz():
        mnist()
        (raw / "train-images-idx3-ubyte").unlink()
        (raw / "train-images-idx3-ubyte.gz").write_bytes(gz)

    nan = np.full(30 * 784, np.nan, ">f4").tobytes()
    cases = {
        "MNIST .gz with a damaged deflate stream": damaged_gz,
        "MNIST header whose count overflows int64": lambda: mnist(images=idx(8, (2**22, 2**21, 2**21), b"")),
        "MNIST images of NaN floats": lambda: mnist(images=idx(0x0D, (30, 28, 28), nan)),
        "MNIST labels outside 0..9": lambda: mnist(labels=idx(8, (30,), bytes(range(30)))),
        "MNIST 2-D label file": lambda: mnist(labels=idx(8, (30, 2), bytes(60))),
    }
    for name, make in cases.items():
        make()
        p = genclf(work, "data", "show", "mnist")
        row(name, "exit 2, one line with the remedy", verdict(p), "none", one_line_error(p))
    shutil.rmtree(work / "data" / "MNIST")

    folder = work / "one-image"
    for c, n in (("a", 3), ("b", 1)):
        (folder / c).mkdir(parents=True)
        for i in range(n):
            (folder / c / f"{i}.png").write_bytes(_png(np.full((8, 8), 30 * i, np.uint8)))
    p = genclf(work, "eval", "--dataset", f"folder:{folder}", "--shots", "1", "--seeds", "1")
    row("folder dataset with a one-image class, `genclf eval`", "exit 2, one line with the rule", verdict(p), "none",
        one_line_error(p))  # fmt: skip

    zpath = work / "damaged.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
        for c in ("a", "b"):
            for i in range(3):
                z.writestr(f"z/{c}/{i}.png", _png(np.full((64, 64, 3), 40 * i, np.uint8)) + bytes(range(256)) * 8)
    blob = bytearray(zpath.read_bytes())
    info = zipfile.ZipFile(zpath).getinfo("z/a/1.png")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 2, start + 40):
        blob[i] ^= 0x5A
    zpath.write_bytes(bytes(blob))
    code = "import sys; from genclf.data import upload; upload.import_zip(sys.argv[1], 'damaged')"
    p = subprocess.run([sys.executable, "-c", _as_cli(code), str(zpath)], cwd=work, env=env(work), capture_output=True,
                       text=True)  # fmt: skip
    row("upload: zip with a damaged member", "one-line error; nothing added", verdict(p), "none", one_line_error(p))

    zpath = work / "good.zip"  # a server killed in the middle of unpacking an upload, then the same upload again
    with zipfile.ZipFile(zpath, "w") as z:
        for c in ("a", "b"):
            for i in range(4):
                z.writestr(f"g/{c}/{i}.png", _png(np.full((16, 16, 3), 40 * i + 9 * (c == "b"), np.uint8)))
    kill = (
        "import os, signal, sys\nfrom genclf.data import upload\nreal, n = upload._extract, [0]\n"
        "def extract(*a):\n    n[0] += 1\n    if n[0] == 5:\n        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return real(*a)\nupload._extract = extract\nupload.import_zip(sys.argv[1], 'good')\n"
    )
    killed = subprocess.run([sys.executable, "-c", kill, str(zpath)], cwd=work, env=env(work), capture_output=True)
    left = [d.name for d in (work / "data" / "uploads").glob(".tmp-*")]
    code = "import sys; from genclf.data import upload; print(upload.import_zip(sys.argv[1], 'good').counts)"
    p = subprocess.run([sys.executable, "-c", _as_cli(code), str(zpath)], cwd=work, env=env(work), capture_output=True,
                       text=True)  # fmt: skip
    after = [d.name for d in (work / "data" / "uploads").glob(".tmp-*")]
    ok = killed.returncode == -signal.SIGKILL and p.returncode == 0 and not after
    row("upload: kill -9 while unpacking, then upload again", "no dataset from the killed one; temp folder swept",
        f"killed left {len(left)} temp folder(s); again: {verdict(p)}, {len(after)} left", "none" if ok else "leftovers",
        ok)  # fmt: skip


CASES = ("train", "cache", "disk", "bomb", "damaged")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    a = ap.parse_args()
    only = a.only.split(",")
    work = Path(tempfile.mkdtemp(prefix="genclf-faults-"))
    t0 = time.time()
    try:
        ref = None
        if {"train", "cache", "disk"} & set(only):
            ref = train_cases(work) if "train" in only else None
            if ref is None:  # cache and disk cases need a trained backbone: a short uninterrupted run
                ref = work / "runs" / "reference"
                assert genclf(work, *TRAIN, "--out", str(ref)).returncode == 0
        if "cache" in only:
            cache_cases(work, ref)
        if "disk" in only:
            disk_full_cases(work, ref)
        for name, fn in (("bomb", bomb_cases), ("damaged", damaged_cases)):
            if name in only:
                fn(work)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n`{' '.join(['bench/faults.py', *sys.argv[1:]])}`, {time.time() - t0:.0f} s:\n")
    print("| case | expected | observed | data lost |\n|---|---|---|---|")
    for case, exp, obs, lost, ok in ROWS:
        print(f"| {case} | {exp} | {obs.replace('|', '/')} | {lost if ok else '**' + lost + '**'} |")
    bad = [r for r in ROWS if not r[4]]
    print(f"\n{len(ROWS) - len(bad)} of {len(ROWS)} cases as expected")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
