"""2D/3D projections of cached features (UMAP, PCA), aligned across timesteps, cached on disk.

    v = View("fashion-mnist", "ddpm", t=50, n=5000)
    xy = layout(v)                 # (N, dim) float32 from the disk cache, or None
    xy = compute(v)                # features -> projection, cached (kind "projection")
    aligned_layout(v)              # the same, rotated/flipped onto its neighbours (see below)

The points are a fixed stratified subset of the test split (`features.subset_indices`), so every
t, backbone and method projects the *same* images and layouts can be compared point by point.

Stable scrubbing (clusters must not jump or flip between neighbouring t):
- UMAP is initialised from PCA of the same features, so its orientation follows the data;
- on display, each t is Procrustes-aligned (rotation, reflection, scale, shift; the same points) to
  its nearest ready neighbour on the timestep grid, whose own layout was aligned the same way along
  the grid. Raw layouts are what the cache holds; alignment is a cheap view transform.

Background precompute: `service()` is a per-process queue shared by all sessions. One worker
(a spawned process by default, so numba's GIL-holding loops never freeze the web server) computes
user-requested views first, then the timestep grid. GENCLF_PRECOMPUTE=inline|thread|process.
UMAP's numba JIT (20-60 s on a cold process) is paid in that worker by `warm_up()` at server start.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace

import numpy as np

from genclf import data, features
from genclf.cache import Cache, make_key
from genclf.errors import GenclfError, unknown

log = logging.getLogger(__name__)

METHODS = ("umap", "pca")
T_GRID = (0, 10, 25, 50, 100, 150, 200, 300, 400, 500, 700, 999)  # dense at small t, where features are best
N_EPOCHS = 200  # REFERENCE: n_epochs=100 halves UMAP time; 200 keeps clusters crisp
PCA_BEFORE_UMAP = 50  # reduce wide features before the neighbour search


def default_method() -> str:
    m = os.environ.get("GENCLF_PROJECTION", "umap")
    if m not in METHODS:
        raise unknown("projection method", m, METHODS)
    return m


def grid(has_t: bool) -> tuple[int | None, ...]:
    """Timesteps precomputed in the background (GENCLF_GRID="0,50,500" overrides)."""
    if not has_t:
        return (None,)
    env = os.environ.get("GENCLF_GRID")
    return tuple(int(v) for v in env.split(",")) if env else T_GRID


@dataclass(frozen=True)
class View:
    """One projection: which features (dataset, backbone, t, blocks, seed), how many points, how."""

    dataset: str
    backbone: str
    t: int | None = None
    blocks: tuple[str, ...] | None = None
    n: int = 2000  # stratified test subset (1k-10k in the dashboard)
    seed: int = 0  # feature noise seed (ddpm); the projection seed is fixed
    method: str = "umap"
    dim: int = 2
    n_epochs: int = N_EPOCHS

    def at(self, t: int | None) -> View:
        return replace(self, t=t)


# ------------------------------------------------------------------ embedding (pure)


def prep(x: np.ndarray, standardize: bool = True) -> np.ndarray:
    """Center (and z-score) features; raw pixels keep their scale (standardizing them amplifies noise)."""
    x = np.asarray(x, np.float32)
    x = x - x.mean(0)
    if standardize:
        x = x / (x.std(0) + 1e-6)
    return x


def pca(x: np.ndarray, dim: int) -> np.ndarray:
    """(N, D) centered -> (N, dim) top principal components, signs fixed (largest |loading| positive)."""
    from sklearn.decomposition import PCA

    k = min(dim, *x.shape)
    y = PCA(k, svd_solver="auto", random_state=0).fit_transform(x)
    y = y * np.sign(y[np.abs(y).argmax(0), np.arange(k)])
    if k < dim:
        y = np.pad(y, ((0, 0), (0, dim - k)))
    return y.astype(np.float32)


def umap_embed(x: np.ndarray, dim: int, n_epochs: int = N_EPOCHS, seed: int = 0) -> np.ndarray:
    """(N, D) prepared features -> (N, dim) UMAP, PCA-initialised (orientation follows the data)."""
    import umap

    if len(x) < 5:
        raise GenclfError(f"{len(x)} points are too few for UMAP; pick a larger sample or use PCA")
    if x.shape[1] > PCA_BEFORE_UMAP:
        x = pca(x, PCA_BEFORE_UMAP)
    init = pca(x, dim)
    init = init / (np.abs(init).max() + 1e-9) * 10
    nn = min(15, len(x) - 1)
    red = umap.UMAP(n_components=dim, n_neighbors=nn, min_dist=0.1, n_epochs=n_epochs, init=init, random_state=seed, n_jobs=1)
    return red.fit_transform(x).astype(np.float32)


def embed(x: np.ndarray, method: str, dim: int, n_epochs: int = N_EPOCHS, standardize: bool = True) -> np.ndarray:
    if method not in METHODS:
        raise unknown("projection method", method, METHODS)
    if dim not in (2, 3):
        raise GenclfError(f"projections are 2D or 3D, got dim={dim}")
    x = prep(x, standardize)
    return pca(x, dim) if method == "pca" else umap_embed(x, dim, n_epochs)


def procrustes(moving: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Rotate/reflect, scale and shift `moving` (N, d) onto `ref` (N, d), the same points in the same order."""
    mu_m, mu_r = moving.mean(0), ref.mean(0)
    a, b = moving - mu_m, ref - mu_r
    u, s, vt = np.linalg.svd(a.T @ b)
    r = u @ vt
    scale = s.sum() / max(float((a**2).sum()), 1e-12)
    return (scale * a @ r + mu_r).astype(np.float32)


# ------------------------------------------------------------------ cached layouts

_FP: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # backbone object -> weights fingerprint
_MEMO: OrderedDict[str, np.ndarray] = OrderedDict()


def _fingerprint(bb) -> str:
    """Hashing the weights takes a while for a UNet; once per loaded backbone object is enough."""
    if bb not in _FP:
        _FP[bb] = bb.fingerprint()
    return _FP[bb]


def check(v: View) -> View:
    """Validate a view against its backbone (t, blocks); returns it with blocks resolved."""
    if v.method not in METHODS:
        raise unknown("projection method", v.method, METHODS)
    bb = features.backbone(v.backbone, v.dataset)
    bb.check_t(v.t)
    return replace(v, blocks=tuple(bb.check_blocks(list(v.blocks) if v.blocks else None)))


def parts(v: View) -> dict:
    """The cache-key parts of a view: data and weights fingerprints, not names alone."""
    v = check(v)
    ds = data.load(v.dataset)
    bb = features.backbone(v.backbone, v.dataset)
    return {
        "data": ds.fingerprint,
        "weights": _fingerprint(bb),
        "view": {**asdict(v), "n": min(v.n, len(ds.y_test)), "n_epochs": v.n_epochs if v.method == "umap" else None},
    }


def key(v: View) -> str:
    return make_key("projection", parts(v))


def sample(v: View) -> np.ndarray:
    """Indices into x_test of the view's points (the same for every t, backbone and method)."""
    ds = data.load(v.dataset)
    return features.subset_indices(ds, "test", v.n)


def feats(v: View, progress=None) -> features.Features:
    v = check(v)
    return features.extract(
        v.dataset, v.backbone, t=v.t, blocks=list(v.blocks), split="test", limit=v.n, seed=v.seed, progress=progress
    )


def _memo(k: str, xy: np.ndarray) -> np.ndarray:
    _MEMO[k] = xy
    while len(_MEMO) > 256:
        _MEMO.popitem(last=False)
    return xy


def layout(v: View) -> np.ndarray | None:
    """The raw cached layout (N, dim), or None when it has not been computed yet. Never computes."""
    k = key(v)
    if k in _MEMO:
        return _MEMO[k]
    hit = Cache().read("projection", k)
    return None if hit is None else _memo(k, hit["xy"])


def compute(v: View, progress=None) -> np.ndarray:
    """Features (cached) -> projection (cached). Safe to call from several processes at once."""
    v = check(v)
    p = parts(v)

    def run():
        f = feats(v, progress)
        return {"xy": embed(f.x, v.method, v.dim, v.n_epochs, standardize=v.backbone != "pixels")}

    xy = Cache().get_or_compute("projection", p, run, meta={"n": min(v.n, 10**9)})["xy"]
    return _memo(make_key("projection", p), xy)


def preview(v: View, progress=None) -> np.ndarray:
    """An instant PCA view of the same points (extracts the features first when they are missing)."""
    return compute(replace(v, method="pca"), progress)


def ready_grid(v: View) -> list[int | None]:
    """Grid timesteps whose layout for this view is on disk, in grid order."""
    bb = features.backbone(v.backbone, v.dataset)
    return [t for t in grid(bb.has_t) if layout(v.at(t)) is not None]


_ALIGNED: OrderedDict[tuple, dict] = OrderedDict()


def _aligned_grid(v: View, ready: list) -> dict:
    """Chain-align the ready grid layouts: each onto the previous ready one, from the smallest t."""
    sig = (replace(v, t=None), tuple(ready))
    if sig not in _ALIGNED:
        out, prev = {}, None
        for t in ready:
            xy = layout(v.at(t))
            prev = xy if prev is None else procrustes(xy, prev)
            out[t] = prev
        _ALIGNED[sig] = out
        while len(_ALIGNED) > 16:
            _ALIGNED.popitem(last=False)
    return _ALIGNED[sig]


def align(v: View, xy: np.ndarray, ref_method: str | None = None) -> np.ndarray:
    """Align layout `xy` of view `v` onto the nearest ready grid layout of `ref_method` (default: v's own)."""
    ref_view = replace(v, method=ref_method or v.method)
    ready = ready_grid(ref_view)
    if not ready:
        return xy
    chain = _aligned_grid(ref_view, ready)
    if v.t in chain and v.method == ref_view.method:
        return chain[v.t]
    nearest = min(ready, key=lambda t: abs((t or 0) - (v.t or 0)))
    ref = chain[nearest]
    return xy if ref.shape != xy.shape else procrustes(xy, ref)


def aligned_layout(v: View) -> np.ndarray | None:
    xy = layout(v)
    return None if xy is None else align(v, xy)


# ------------------------------------------------------------------ background service


def _job(v: dict) -> str:
    """Worker entry point (importable by spawned processes): compute one view, return its key."""
    view = View(**{**v, "blocks": tuple(v["blocks"]) if v.get("blocks") else None})
    compute(view)
    return key(view)


def _warm() -> float:
    """Pay numba's JIT once: a tiny UMAP fit touches the same compiled functions as real ones."""
    t0 = time.time()
    x = np.random.default_rng(0).normal(size=(4200, 8)).astype(np.float32)  # n >= 4096 compiles the second NN path
    umap_embed(x, 2, n_epochs=10)
    umap_embed(x[:300], 3, n_epochs=10)
    log.info("UMAP warm-up done in %.1fs", time.time() - t0)
    return time.time() - t0


class Worker:
    """`python -m genclf.project`: a child process that computes views sent as JSON lines on stdin.

    A plain subprocess rather than multiprocessing: under `streamlit run`, spawn would re-import the
    app script (Streamlit installs it as `__main__`) in the child."""

    def __init__(self):
        import subprocess
        import sys

        env = {**os.environ, "GENCLF_NO_WARMUP": "1", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "genclf.project"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            bufsize=1,
        )

    def call(self, msg: dict) -> dict:
        import json

        if self.proc.poll() is not None:
            raise BrokenPipeError("worker exited")
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise BrokenPipeError("worker exited")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.terminate()


def _serve() -> None:
    """The worker loop: one request per line in, one JSON answer per line out (stdout is kept for answers)."""
    import json
    import sys

    import torch

    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library prints go to stderr, never into the protocol
    sys.stdout = sys.stderr
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))  # leave a core for the web server
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s genclf.project worker: %(message)s")
    for line in sys.stdin:
        t0 = time.time()
        try:
            msg = json.loads(line)
            out = {"ok": True, "key": _job(msg["view"])} if msg["op"] == "view" else {"ok": True, "warm": _warm()}
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
        self._owner: dict[View, str] = {}  # who asked for a queued user view (a chart in a session)
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pool = None
        self.warm: str = "not started"

    def _run(self, fn, *args):
        if self.mode != "process":
            return fn(*args)
        msg = {"op": "view", "view": args[0]} if fn is _job else {"op": "warm"}
        try:
            if self._pool is None:
                self._pool = Worker()
            out = self._pool.call(msg)
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
            self._run(_job, {**asdict(v), "blocks": list(v.blocks) if v.blocks else None})
            self._state[v] = "done"
        except GenclfError as e:
            self._state[v] = f"error: {e}"
        except Exception as e:  # a worker crash must not kill the queue; the page shows the state
            log.exception("projection %s failed", v)
            self._state[v] = f"error: {type(e).__name__}: {e}"

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
