"""Long jobs for the dashboard (preparing a dataset, sweeps, a split's features) as background processes at low priority.

    task = start("prepare", {"dataset": "fashion-mnist", "backbones": ["ddpm"]})  # returns at once; joins a running twin
    get(task.id)          # Task(state="running", done=12.5, total=80.0, eta=95.0, step="ddpm t=10 · ...")
    cancel(task.id)

A task is `python -m genclf.app.tasks KIND SPEC ID` in its own session, at `os.nice(TASK_NICE)` with one
torch thread, so the web server and the on-demand worker always come first. Its state lives in files,
not in a page, so every session, page switch and reload sees the same task, and it continues after the
page that started it is gone:
  <cache>/.tasks/<id>.json   kind, spec, pid, state (running | done | failed | cancelled), done/total, ETA, step
  <cache>/.tasks/<id>.log    its stdout and stderr
With `watch_parent`, a task ends with the process that started it (the dashboard server), so stopping
`make app` stops its background work too; the cache keeps what was finished.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from genclf.app import procs
from genclf.atomic import write_json
from genclf.cache import cache_root, canonical_json
from genclf.errors import GenclfError, unknown

log = logging.getLogger(__name__)

KINDS = ("prepare", "sweep", "features")
TASK_NICE = int(os.environ.get("GENCLF_TASK_NICE", "10"))


def tasks_dir() -> Path:
    return cache_root() / ".tasks"


@dataclass
class Task:
    id: str
    kind: str
    spec: dict
    pid: int = 0
    started: float = 0.0
    state: str = "running"  # running | done | failed | cancelled
    done: float = 0.0  # units of work (estimated seconds for prepare, fits for a sweep)
    total: float = 0.0
    eta: float | None = None  # seconds left, from the rate so far
    step: str = ""
    message: str = ""
    updated: float = 0.0
    result: dict = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def log(self) -> Path:
        return tasks_dir() / f"{self.id}.log"


def task_id(kind: str, spec: dict) -> str:
    return f"{kind}-{hashlib.sha256(canonical_json(spec).encode()).hexdigest()[:12]}"


def _locked():
    return procs.locked(tasks_dir())


def _read(tid: str) -> Task | None:
    f = tasks_dir() / f"{tid}.json"
    try:
        return Task(**json.loads(f.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write(task: Task) -> None:
    write_json(tasks_dir() / f"{task.id}.json", asdict(task))


def _alive(pid: int) -> bool:
    return procs.alive(pid, marker=b"genclf.app.tasks")


def _tail(path: Path, n: int = 600) -> str:
    return procs.tail(path, 6, n)


def get(tid: str) -> Task | None:
    """The task with fresh state (a running task whose process is gone is marked failed), or None."""
    task = _read(tid)
    if task is not None and task.state == "running" and task.pid and not _alive(task.pid):
        task = _read(tid) or task  # it may have written its final state just now
        if task.state == "running":
            last = _tail(task.log).splitlines()
            task.state, task.message = "failed", last[-1] if last else "the process ended"
            _write(task)
    return task


def find(kind: str, spec: dict) -> Task | None:
    return get(task_id(kind, spec))


_RUNNING: dict[str, tuple[float, list]] = {}  # tasks dir -> (read at, running tasks): pages poll this often


def running(kind: str | None = None, max_age: float = 1.0) -> list[Task]:
    """Tasks running now (of one kind), newest first; read from disk at most every `max_age` seconds."""
    d = str(tasks_dir())
    hit = _RUNNING.get(d)
    if hit is None or time.time() - hit[0] > max_age:
        out = []
        for f in tasks_dir().glob("*.json") if tasks_dir().is_dir() else []:
            t = get(f.stem)
            if t is not None and t.state == "running":
                out.append(t)
        _RUNNING[d] = hit = (time.time(), sorted(out, key=lambda t: -t.started))
    return [t for t in hit[1] if kind is None or t.kind == kind]


def start(kind: str, spec: dict, watch_parent: bool = True) -> Task:
    """Start a task in the background, or return the same task (same kind and spec) that is running already."""
    if kind not in KINDS:
        raise unknown("task kind", kind, KINDS)
    tid = task_id(kind, spec)
    with _locked():
        cur = get(tid)
        if cur is not None and cur.state == "running":
            return cur
        from genclf.explore import child_env

        env = child_env(**({"GENCLF_TASK_PARENT": str(os.getpid())} if watch_parent else {}))
        log_path = tasks_dir() / f"{tid}.log"
        with open(log_path, "wb") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "genclf.app.tasks", kind, json.dumps(spec), tid],
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # cancel() signals its process group, never ours
                env=env,
                cwd=os.getcwd(),
            )
        procs.spawned(proc)
        first = "starting: loading, then checking what is already on disk"  # what a task shows before its first step
        task = Task(tid, kind, spec, proc.pid, time.time(), step=first, updated=time.time())
        _write(task)
        _RUNNING.clear()
    return task


def cancel(tid: str) -> Task | None:
    """Stop a running task (its whole process group); what it finished stays in the cache, so a restart resumes."""
    with _locked():
        task = get(tid)
        if task is None or task.state != "running":
            return task
        procs.stop_group(task.pid, _alive)
        task = _read(tid) or task
        task.state, task.eta, task.message = "cancelled", None, "cancelled; start it again to resume where it stopped"
        _write(task)
        _RUNNING.clear()
        return task


# ------------------------------------------------------------------ inside the task process


class _Reporter:
    """progress(done, total, info) -> the task's JSON file, at most every 0.5 s, with an ETA from the rate so far."""

    def __init__(self, task: Task):
        self.task, self.t0, self.last = task, time.time(), 0.0

    def __call__(self, done: float, total: float, info: dict | None = None) -> None:
        now = time.time()
        t = self.task
        t.done, t.total = float(done), float(total)
        if info and "step" in info:
            t.step = str(info["step"]) + (f" ({info['ran']}/{info['of']} steps)" if "of" in info else "")
        else:
            unit = {"sweep": "(t, seed) pairs scored", "features": "images"}.get(t.kind, "done")
            t.step = f"{int(done):,}/{int(total):,} {unit}"
        rate = t.done / max(now - self.t0, 1e-6)
        t.eta = (t.total - t.done) / rate if t.done > 0 else None
        t.updated = now
        if now - self.last > 0.5 or done >= total:
            self.last = now
            _write(t)


def _watch_parent(ppid: int, task: Task) -> None:
    while True:
        time.sleep(1.0)
        try:
            os.kill(ppid, 0)
        except ProcessLookupError:
            task.state, task.eta, task.message = "cancelled", None, "the dashboard that started it stopped"
            _write(task)
            os._exit(0)
        except PermissionError:
            pass


def _execute(kind: str, spec: dict, progress) -> dict:
    from genclf.app import prepare

    if kind == "prepare":
        return prepare.prepare(spec["dataset"], list(spec["backbones"]), progress)
    if kind == "features":  # one split's features at one t (Few-shot's whole test split)
        from genclf import features

        f = features.extract(spec["dataset"], spec["backbone"], t=spec["t"], blocks=spec["blocks"], split=spec["split"],
                             progress=progress)  # fmt: skip
        return {"n": len(f.x)}
    prepare.sweep(spec, progress)
    return {"sweep": True}


def _main(argv: list[str]) -> int:
    kind, spec, tid = argv[0], json.loads(argv[1]), argv[2]
    procs.lower_priority(TASK_NICE)
    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    task = _read(tid) or Task(tid, kind, spec, os.getpid(), time.time())
    task.pid, task.state, task.updated = os.getpid(), "running", time.time()
    _write(task)
    if os.environ.get("GENCLF_TASK_PARENT"):
        threading.Thread(target=_watch_parent, args=(int(os.environ["GENCLF_TASK_PARENT"]), task), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        task.result = _execute(kind, spec, _Reporter(task))
        task.state, task.eta, task.done = "done", 0.0, task.total
        task.step = "done"
    except GenclfError as e:
        task.state, task.message = "failed", str(e)
    except SystemExit:
        task.state, task.message = "cancelled", "cancelled; start it again to resume where it stopped"
    except Exception as e:  # the page shows it; the log has the traceback
        log.exception("task %s failed", tid)
        task.state, task.message = "failed", f"{type(e).__name__}: {e}"
    task.updated = time.time()
    _write(task)
    return 0 if task.state == "done" else 1


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
