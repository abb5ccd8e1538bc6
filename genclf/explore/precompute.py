"""The on-demand service: a process-wide priority queue of views users asked for, one worker process, shared by all sessions.

What a page cannot read from disk (a custom t, another sample size, a backbone nobody prepared) is
queued here; the page draws what is ready meanwhile. The worker is a child process at lower CPU
priority (`os.nice(WORKER_NICE)`), so numba's GIL-holding loops and torch never slow the web
server; its thread in the server only waits on a pipe. Users' views run newest first, then the
timestep grid of the view on screen (priority 1). Long jobs (preparing a dataset, sweeps) are not
queued here: they run as their own background tasks (genclf.app.tasks).
GENCLF_PRECOMPUTE=inline|thread|process. UMAP's remaining numba JIT (about 10 s per process) is paid
in the worker by `warm_up()` at server start.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from dataclasses import asdict

import numpy as np

from genclf import features
from genclf.cache import cache_root
from genclf.errors import GenclfError, unknown
from genclf.explore.layouts import View, compute, default_method, feats, grid, key, layout
from genclf.explore.projection import umap_embed

log = logging.getLogger(__name__)

WORKER_NICE = int(os.environ.get("GENCLF_WORKER_NICE", "5"))  # the web server (nice 0) always comes first


def _job(v: dict, progress=None) -> str:
    """Worker entry point: one view's features (also when its layout shipped: neighbours read them) and layout."""
    view = View(**{**v, "blocks": tuple(v["blocks"]) if v.get("blocks") else None})
    feats(view, progress)
    compute(view)
    return key(view)


def _warm() -> float:
    """Pay numba's JIT once: tiny UMAP fits touch the same compiled functions as real ones."""
    t0 = time.time()
    x = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    umap_embed(x, 2, n_epochs=10)
    umap_embed(x, 3, n_epochs=10)
    log.info("UMAP warm-up done in %.1fs", time.time() - t0)
    return time.time() - t0


def child_env(**extra: str) -> dict:
    """Environment for genclf's background processes: one torch/BLAS thread, numba's cache kept with the artifacts."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}
    env.setdefault("NUMBA_CACHE_DIR", str((cache_root() / ".numba").resolve()))
    return env


class Worker:
    """A child process (`genclf.explore.precompute._serve`) that computes views sent as JSON lines on stdin.

    It answers each request with progress lines ({"progress": [done, total]}) and one result line.
    A plain subprocess rather than multiprocessing: under `streamlit run`, spawn would re-import the
    app script (Streamlit installs it as `__main__`) in the child."""

    def __init__(self):
        import subprocess
        import sys

        self.proc = subprocess.Popen(
            # not `-m genclf.explore.precompute`: the package imports this module first, and runpy then warns
            # ("found in sys.modules ... unpredictable behaviour") on every server start
            [sys.executable, "-c", "from genclf.explore.precompute import _serve; _serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_env(GENCLF_NO_WARMUP="1"),
            text=True,
            bufsize=1,
        )

    def call(self, msg: dict, on_progress=None) -> dict:
        import json

        if self.proc.poll() is not None:
            raise BrokenPipeError("worker exited")
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise BrokenPipeError("worker exited")
            out = json.loads(line)
            if "progress" not in out:
                return out
            if on_progress:
                on_progress(*out["progress"])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.terminate()


def _serve() -> None:
    """The worker loop: one request per line in, progress lines and one JSON answer per line out."""
    import json
    import sys

    import torch

    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library prints go to stderr, never into the protocol
    sys.stdout = sys.stderr
    os.nice(WORKER_NICE)
    torch.set_num_threads(1)  # the other core stays with the web server and the background tasks
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s genclf.project worker: %(message)s")
    last = [0.0]

    def progress(done: int, total: int, info: dict | None = None) -> None:
        if time.time() - last[0] > 0.25 or done >= total:
            last[0] = time.time()
            proto.write(json.dumps({"progress": [int(done), int(total)]}) + "\n")

    for line in sys.stdin:
        t0 = time.time()
        try:
            msg = json.loads(line)
            out = {"ok": True, "key": _job(msg["view"], progress)} if msg["op"] == "view" else {"ok": True, "warm": _warm()}
        except GenclfError as e:
            out = {"ok": False, "error": str(e), "genclf": True}
        except Exception as e:  # reported to the page as an error state; the worker lives on
            log.exception("worker job failed")
            out = {"ok": False, "error": f"{type(e).__name__}: {e}", "genclf": False}
        out["seconds"] = round(time.time() - t0, 3)
        proto.write(json.dumps(out) + "\n")


class Service:
    """A process-wide priority queue of views to compute; one worker; shared by every session."""

    def __init__(self, mode: str | None = None):
        self.mode = mode or os.environ.get("GENCLF_PRECOMPUTE", "process")
        if self.mode not in ("process", "thread", "inline"):
            raise unknown("precompute mode", self.mode, ("process", "thread", "inline"))
        self._heap: list = []
        self._state: dict[View, str] = {}
        self._progress: dict[View, tuple[int, int]] = {}
        self._owner: dict[View, str] = {}  # who asked for a queued user view (a chart in a session)
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pool = None
        self.warm: str = "not started"

    def _run(self, fn, *args, on_progress=None):
        if self.mode != "process":
            return fn(*args, on_progress) if fn is _job else fn(*args)
        msg = {"op": "view", "view": args[0]} if fn is _job else {"op": "warm"}
        try:
            if self._pool is None:
                self._pool = Worker()
            out = self._pool.call(msg, on_progress)
        except (BrokenPipeError, OSError, ValueError):
            self._pool = None  # the worker died (OOM, kill); the next job starts a fresh one
            raise GenclfError("the projection worker died; it restarts on the next request") from None
        if not out["ok"]:
            raise GenclfError(out["error"]) if out.get("genclf") else RuntimeError(out["error"])
        return out.get("key", out.get("warm"))

    def warm_up(self) -> None:
        """Run the UMAP warm-up on the worker ahead of any view (no-op in inline mode)."""
        with self._cv:
            if self.warm != "not started" or self.mode == "inline":
                return
            self.warm = "warming"
            heapq.heappush(self._heap, (-1, next(self._seq), None))
            self._cv.notify()
        self._ensure_thread()

    def submit(self, v: View, priority: int = 0) -> str:
        """Queue a view (0: a user is waiting; 1: background grid). Returns its state."""
        with self._cv:
            st = self._state.get(v)
            if st == "running" or (st == "queued" and priority > 0) or (st == "done" and layout(v) is not None):
                return st  # a user's request for a view queued by the grid is re-queued at the front below
            if self.mode == "inline":
                self._state[v] = "running"
        if self.mode == "inline":
            self._do(v)
            return self._state[v]
        with self._cv:
            self._state[v] = "queued"
            seq = next(self._seq)  # users' views newest first (the one on screen), the grid in order
            heapq.heappush(self._heap, (priority, -seq if priority == 0 else seq, v))
            self._cv.notify()
        self._ensure_thread()
        return "queued"

    def request(self, views: list[View], owner: str | None = None) -> None:
        """A user's views, to run next and in this order; the same owner's older queued requests are dropped
        (a scrub that moved on no longer needs them)."""
        with self._cv:
            if owner is not None:
                for old, who in list(self._owner.items()):
                    if who == owner and old not in views and self._state.get(old) == "queued":
                        self._state.pop(old)  # its heap entry is skipped when popped
                        self._owner.pop(old)
            for v in views:
                if owner is not None:
                    self._owner[v] = owner
        for v in reversed(views):  # the newest request runs first, so push the first one last
            self.submit(v, priority=0)

    def state(self, v: View) -> str | None:
        return self._state.get(v)

    def progress(self, v: View) -> tuple[int, int] | None:
        """(images done, total) of the feature extraction of a running view, when it reported any."""
        return self._progress.get(v) if self._state.get(v) == "running" else None

    def pending(self) -> int:
        with self._cv:
            return sum(s in ("queued", "running") for s in self._state.values())

    def _ensure_thread(self) -> None:
        with self._cv:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="genclf-precompute", daemon=True)
                self._thread.start()

    def _do(self, v: View) -> None:
        try:
            report = lambda done, total, info=None: self._progress.__setitem__(v, (done, total))
            self._run(_job, {**asdict(v), "blocks": list(v.blocks) if v.blocks else None}, on_progress=report)
            self._state[v] = "done"
        except GenclfError as e:
            self._state[v] = f"error: {e}"
        except Exception as e:  # a worker crash must not kill the queue; the page shows the state
            log.exception("projection %s failed", v)
            self._state[v] = f"error: {type(e).__name__}: {e}"
        finally:
            self._progress.pop(v, None)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._heap:
                    self._cv.wait()
                _, _, v = heapq.heappop(self._heap)
                if v is not None and self._state.get(v) != "queued":
                    continue  # a duplicate entry of a view that was bumped to the front and is done by now
                if v is not None:
                    self._state[v] = "running"
            if v is None:
                try:
                    self._run(_warm)
                    self.warm = "done"
                except Exception as e:
                    self.warm = f"failed: {e}"
                continue
            self._do(v)

    def ensure_grid(self, v: View) -> tuple[int, int]:
        """Queue the timestep grid for this view (lowest t first). Returns (ready, total)."""
        bb = features.backbone(v.backbone, v.dataset)
        ts = grid(bb.has_t)
        ready = 0
        for t in ts:
            if layout(v.at(t)) is not None:
                ready += 1
            else:
                self.submit(v.at(t), priority=1)
        return ready, len(ts)


_SERVICE: Service | None = None
_LOCK = threading.Lock()


def service() -> Service:
    global _SERVICE
    with _LOCK:
        if _SERVICE is None or _SERVICE.mode != os.environ.get("GENCLF_PRECOMPUTE", "process"):
            _SERVICE = Service()  # (a changed mode only happens in tests)
        return _SERVICE


def warm_up() -> bool:
    """Start the background UMAP warm-up once per process; False when disabled (GENCLF_NO_WARMUP=1)."""
    if os.environ.get("GENCLF_NO_WARMUP") == "1" or default_method() != "umap":
        return False
    service().warm_up()
    return True


if __name__ == "__main__":
    _serve()
