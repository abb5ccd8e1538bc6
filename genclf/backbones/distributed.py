"""Several processes (GPUs, nodes, or CPU processes) through Hugging Face Accelerate.

genclf is one plain process unless `accelerate launch` (or torchrun) started it; then `get()` returns
this process's `Dist`, built on an `accelerate.Accelerator`, and the trainer and the feature extractor
split their work with it. Started plainly, `get()` is None and nothing here runs, so a one-process
run does exactly what it did before this module existed.

What N processes do, so that they train the model one process would train on the same global batch:
- data: each step takes the global batch (per-process batch x N) the one-process run takes, sorted,
  and process r trains on its r-th slice (`shard`);
- randomness: the step's noise, timesteps and flips are drawn for the whole global batch from the
  step's generator and sliced the same way (`draws`), so N processes draw what one would;
- gradients: averaged over processes at the end of every backward pass, before clipping and the
  optimizer step, as DistributedDataParallel does (`sync_grads`). The backbones' `train_step` calls
  its submodules directly (a VAE's encoder and decoder, a GAN's two nets) rather than through one
  `forward`, which a DDP wrapper needs, so the same all-reduce is installed as gradient hooks;
- buffers (a VQ-VAE's codebook) follow process 0 after every step, as DDP's `broadcast_buffers` does;
- mixed precision: Accelerate's setting (`accelerate launch --mixed_precision bf16`);
- writing: the main process alone writes checkpoints, logs, the model and cache entries.
With mean-reduced losses the result equals the one-process run up to float rounding (the tests
check it for the VAE and the DDPM; a VQ-VAE's codebook statistics come from process 0's slice).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from genclf.errors import GenclfError

log = logging.getLogger(__name__)


def launched() -> bool:
    """Whether `accelerate launch` (which always sets ACCELERATE_MIXED_PRECISION) or torchrun started us."""
    return "ACCELERATE_MIXED_PRECISION" in os.environ or int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


class _GradSync:
    """Average gradients over processes once per backward pass, in one all-reduce, before anything reads them."""

    def __init__(self, params: list[torch.nn.Parameter], world: int):
        self.params = [p for p in params if p.requires_grad]
        self.index = {id(p): i for i, p in enumerate(self.params)}
        self.world = world
        self.pending: set[int] = set()
        self.handles = [p.register_post_accumulate_grad_hook(self._ready) for p in self.params]

    def _ready(self, p: torch.Tensor) -> None:
        if not self.pending:  # first gradient of this backward pass: reduce when the pass ends
            torch.autograd.Variable._execution_engine.queue_callback(self._reduce)
        self.pending.add(self.index[id(p)])

    def _reduce(self) -> None:
        # every process ran the same graph, so the same parameters have gradients, in this fixed order
        grads = [self.params[i].grad for i in sorted(self.pending)]
        self.pending.clear()
        groups: dict[tuple, list[torch.Tensor]] = {}
        for g in grads:
            groups.setdefault((g.dtype, g.device), []).append(g)
        for gs in groups.values():
            flat = torch.cat([g.reshape(-1) for g in gs])
            torch.distributed.all_reduce(flat)
            flat.div_(self.world)
            off = 0
            for g in gs:
                g.copy_(flat[off : off + g.numel()].view_as(g))
                off += g.numel()

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


class _Draws(TorchFunctionMode):
    """Inside: a draw from `gen` whose first dimension is the local batch is drawn for the global batch, then sliced."""

    def __init__(self, gen: torch.Generator, rank: int, world: int, local: int):
        super().__init__()
        self.gen, self.rank, self.world, self.local = gen, rank, world, local

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if kwargs.get("generator") is not self.gen or func not in (torch.randn, torch.rand, torch.randint):
            return func(*args, **kwargs)
        args = list(args)
        if "size" in kwargs:
            size, put = tuple(kwargs["size"]), lambda s: kwargs.__setitem__("size", s)
        elif func is torch.randint:
            size, put = tuple(args[-1]), lambda s: args.__setitem__(-1, s)
        else:  # randn(2, 3) or randn((2, 3))
            size = tuple(args[0]) if len(args) == 1 and not isinstance(args[0], int) else tuple(args)
            put = lambda s: (args.clear(), args.append(s))  # noqa: E731
        if not size or size[0] != self.local:
            return func(*args, **kwargs)  # not per-sample: stays this process's own
        put((self.local * self.world, *size[1:]))
        full = func(*args, **kwargs)
        return full[self.rank * self.local : (self.rank + 1) * self.local].clone()


class Dist:
    """This process's place among `world` processes, and the few collectives genclf needs."""

    def __init__(self, accelerator):
        self.accelerator = accelerator
        self.rank = accelerator.process_index
        self.world = accelerator.num_processes
        self.main = accelerator.is_main_process
        self.device = accelerator.device
        self.mixed_precision = str(accelerator.mixed_precision)

    def __repr__(self) -> str:
        return f"Dist(rank {self.rank}/{self.world}, {self.device}, mixed precision {self.mixed_precision})"

    # ---- training
    def autocast(self):
        return self.accelerator.autocast()

    def draws(self, gen: torch.Generator, local: int):
        return _Draws(gen, self.rank, self.world, local) if self.world > 1 else contextlib.nullcontext()

    @contextlib.contextmanager
    def sync_grads(self, modules: dict[str, torch.nn.Module]) -> Iterator[None]:
        """Start from process 0's weights, average gradients in every backward pass inside."""
        if self.world == 1:
            yield
            return
        for m in modules.values():
            for t in [*m.parameters(), *m.buffers()]:
                torch.distributed.broadcast(t.data, 0)
        sync = _GradSync([p for m in modules.values() for p in m.parameters()], self.world)
        try:
            yield
        finally:
            sync.remove()

    def sync_buffers(self, modules: dict[str, torch.nn.Module]) -> None:
        if self.world > 1:
            for m in modules.values():
                for b in m.buffers():
                    torch.distributed.broadcast(b.data, 0)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """The mean over processes of each value (the loss of the global batch when each is a per-slice mean)."""
        if self.world == 1:
            return values
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t.tolist())}

    def all(self, flag: bool) -> bool:
        """True when every process says True."""
        if self.world == 1:
            return flag
        t = torch.tensor([0 if flag else 1], device=self.device)
        torch.distributed.all_reduce(t)
        return int(t.item()) == 0

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()

    # ---- extraction
    def shard(self, n: int) -> slice:
        """This process's contiguous share of n items (shares differ by at most one)."""
        return slice(self.rank * n // self.world, (self.rank + 1) * n // self.world)

    def map_rows(self, n: int, fn: Callable[[slice], np.ndarray]) -> np.ndarray:
        """`fn(slice) -> rows` over n items, each process on its `shard(n)`; every process gets all n rows, in order."""
        if self.world == 1 or n < self.world:  # too few to split: every process computes them all
            return fn(slice(0, n))
        return self.gather_rows(fn(self.shard(n)), n)

    def gather_rows(self, x: np.ndarray, n: int) -> np.ndarray:
        """Every process's rows of an (n, ...) array, in order, on every process (x holds this one's `shard(n)`)."""
        if self.world == 1:
            return x
        sizes = [(r + 1) * n // self.world - r * n // self.world for r in range(self.world)]
        width = max(sizes)
        t = torch.zeros((width, *x.shape[1:]), dtype=torch.from_numpy(np.asarray(x[:0])).dtype, device=self.device)
        t[: len(x)] = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        parts = [torch.empty_like(t) for _ in range(self.world)]
        torch.distributed.all_gather(parts, t)
        return np.concatenate([p[:s].cpu().numpy() for p, s in zip(parts, sizes)])


_DIST: Dist | None = None


def _shutdown() -> None:
    # A process group left to the interpreter's teardown can abort the process ("terminate called without
    # an active exception", about 1 exit in 8 on 2 CPU processes: bench/ddp_exit.py). Destroying it is not
    # enough while the Accelerator and reference cycles still hold it: drop those, destroy it, collect.
    global _DIST
    if _DIST is not None:
        _DIST.accelerator.free_memory()
        _DIST = None
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    gc.collect()


def get() -> Dist | None:
    """This process's Dist under `accelerate launch`/torchrun; None in a plain process."""
    global _DIST
    if _DIST is None and launched():
        from accelerate import Accelerator

        # with no GPU, Accelerate runs several processes only when told it is on CPUs (DDP over gloo)
        acc = Accelerator(cpu=not torch.cuda.is_available())
        if str(acc.mixed_precision) == "fp16":
            raise GenclfError(
                "fp16 needs loss scaling, which genclf's training steps do not do; launch with --mixed_precision bf16 (or no)"
            )
        _DIST = Dist(acc)
        atexit.register(_shutdown)
        log.info("running as %s", _DIST)
    return _DIST
