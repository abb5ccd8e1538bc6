"""Background training jobs: one detached `python -m genclf train ...` at a time, for the dashboard.

    job = start("digits", "vae", preset="tiny", max_steps=30)     # returns at once
    status()    # Job(state="running", step=12, total=30, ...) read from files, not memory
    cancel()

The job outlives the page and the web server (its own session, output to files), so a reload or a
second browser tab sees the same job. State lives under `<runs>/.jobs/`:
  current.json   the job (pid, command, out dir, total steps); `flock` on .lock serialises start()
  <id>.log       stdout + stderr of the run
  <id>.rc        exit status, written when the process ends (absent while it runs)
Progress is `train_log.jsonl`'s last step (genclf.backbones.train appends a row every `log_every` steps).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from genclf import data
from genclf.app import procs
from genclf.backbones import get, names
from genclf.backbones.checkpoint import has_checkpoint
from genclf.backbones.io import run_dir, runs_dir
from genclf.errors import GenclfError

JOB_NICE = int(os.environ.get("GENCLF_JOB_NICE", "10"))  # a training job never slows the pages


def jobs_dir() -> Path:
    return runs_dir() / ".jobs"


@dataclass
class Job:
    id: str
    pid: int
    dataset: str
    backbone: str
    out: str
    command: list[str]
    total: int  # optimizer steps the run will take
    started: float
    state: str = "running"  # running | done | failed | cancelled
    step: int = 0
    seconds: float = 0.0
    losses: dict | None = None
    message: str = ""

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total) if self.total else 0.0

    @property
    def log(self) -> Path:
        return jobs_dir() / f"{self.id}.log"


def _locked():
    return procs.locked(jobs_dir())


def _alive(pid: int) -> bool:
    return procs.alive(pid)


def total_steps(dataset: str, epochs: float, batch_size: int, limit: int | None, max_steps: int | None) -> int:
    """The step count genclf.backbones.train will run (same arithmetic)."""
    n = len(data.load(dataset).unlabeled_pool())
    n = min(n, limit) if limit else n
    if n < batch_size:
        raise GenclfError(f"{dataset} has {n} training images, fewer than one batch of {batch_size}; lower the batch size")
    from genclf.backbones.train import planned_steps

    return planned_steps(n, epochs, batch_size, max_steps)


def _read() -> Job | None:
    f = jobs_dir() / "current.json"
    if not f.is_file():
        return None
    try:
        return Job(**json.loads(f.read_text()))
    except (ValueError, TypeError):
        return None


def _write(job: Job) -> None:
    from genclf.atomic import write_json

    write_json(jobs_dir() / "current.json", asdict(job))


def _progress(job: Job) -> Job:
    log = Path(job.out) / "train_log.jsonl"
    if log.is_file():
        rows = [r for r in log.read_text().splitlines() if r.strip()]
        with contextlib.suppress(ValueError, IndexError):
            last = json.loads(rows[-1])
            job.step, job.seconds = int(last["step"]), float(last["seconds"])
            job.losses = {k: v for k, v in last.items() if k not in ("step", "epoch", "images", "seconds")}
    return job


def _tail(path: Path, n: int = 400) -> str:
    return procs.tail(path, 8, n)


def status() -> Job | None:
    """The current (or last) job with fresh progress, or None when none was ever started here."""
    job = _read()
    if job is None:
        return None
    job = _progress(job)
    if job.state == "running" and not _alive(job.pid):
        rc_file = jobs_dir() / f"{job.id}.rc"
        rc = rc_file.read_text().strip() if rc_file.is_file() else ""
        if rc == "0":
            job.state, job.step = "done", job.total
        else:
            job.state = "failed"
            err = [ln for ln in _tail(job.log, 2000).splitlines() if "error" in ln.lower()]
            job.message = err[-1] if err else f"exit status {rc or 'unknown'}; see {job.log}"
        _write(job)
    return job


def start(
    dataset: str,
    backbone: str,
    *,
    preset: str = "small",
    epochs: float = 1,
    batch_size: int = 128,
    limit: int | None = None,
    max_steps: int | None = None,
    seed: int = 0,
    out: Path | None = None,
    force: bool = False,
) -> Job:
    """Launch `python -m genclf train ...` detached; refuses while another job runs."""
    cls = get(backbone)
    if not cls.trainable:
        valid = ", ".join(n for n in names() if get(n).trainable)
        raise GenclfError(f"backbone {backbone!r} has nothing to train; pick one of {valid}")
    if preset not in cls.PRESETS:
        raise GenclfError(f"unknown preset {preset!r}; valid presets: {', '.join(cls.PRESETS)}")
    out = Path(out) if out else run_dir(dataset, backbone)
    if (out / "model.safetensors").is_file() and not has_checkpoint(out) and not force:
        raise GenclfError(f"{out} already holds a finished {backbone}; tick 'replace the existing model' to retrain it")
    total = total_steps(dataset, epochs, batch_size, limit, max_steps)
    with _locked():
        cur = status()
        if cur is not None and cur.state == "running":
            raise GenclfError(
                f"a training job is already running ({cur.backbone} on {cur.dataset}, step {cur.step}/{cur.total}); "
                "wait for it or cancel it first"
            )
        cmd = [
            sys.executable,
            "-m",
            "genclf",
            "train",
            "--dataset",
            dataset,
            "--backbone",
            backbone,
            "--preset",
            preset,
            "--epochs",
            str(epochs),
            "--batch-size",
            str(batch_size),
            "--seed",
            str(seed),
            "--out",
            str(out),
        ]
        if limit:
            cmd += ["--limit", str(limit)]
        if max_steps:
            cmd += ["--max-steps", str(max_steps)]
        if force:
            cmd += ["--force"]
        if force and not has_checkpoint(out):
            (out / "train_log.jsonl").unlink(missing_ok=True)  # the old curve would read as 100% done
        job_id = time.strftime("%Y%m%d-%H%M%S") + f"-{backbone}"
        log = jobs_dir() / f"{job_id}.log"
        rc = jobs_dir() / f"{job_id}.rc"
        # below the web server, as the tasks are (procs.lower_priority): the session's autogroup, then the run
        shell = (f"echo {JOB_NICE} 2>/dev/null >/proc/self/autogroup; nice -n {JOB_NICE} {shlex.join(cmd)}; "
                 f"echo $? > {shlex.quote(str(rc))}")  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", shell],
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
                cwd=os.getcwd(),
            )
        procs.spawned(proc)
        job = Job(job_id, proc.pid, dataset, backbone, str(out), cmd, total, time.time())
        _write(job)
    return job


def cancel() -> Job | None:
    """Stop the running job (its whole process group); a later start with the same settings resumes it."""
    with _locked():
        job = status()
        if job is None or job.state != "running":
            return job
        procs.stop_group(job.pid, _alive)
        job.state, job.message = "cancelled", "cancelled from the dashboard; start it again to resume from its checkpoint"
        _write(job)
        return job
