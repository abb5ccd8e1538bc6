"""Tensor plumbing shared by the backbones and the training loop: device, bf16 autocast, pixel scaling, pooling.

The lowest layer of `genclf.backbones`: it imports nothing from genclf.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

Progress = Callable[[int, int, dict], None]  # (done, total, info) -> None


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def autocast(enabled: bool = True) -> Iterator[None]:
    """bf16 autocast: about 2x faster on CPUs with AVX-512 BF16/AMX; a no-op where unsupported."""
    dev = device().type
    if enabled and _bf16_ok(dev):
        with torch.autocast(dev, dtype=torch.bfloat16):
            yield
    else:
        yield


_BF16: dict[str, bool] = {}


def _bf16_ok(dev: str) -> bool:
    if dev not in _BF16:
        try:
            with torch.autocast(dev, dtype=torch.bfloat16):
                torch.nn.functional.conv2d(torch.ones(1, 1, 4, 4, device=dev), torch.ones(1, 1, 3, 3, device=dev))
            _BF16[dev] = True
        except Exception:  # older CPUs / builds
            _BF16[dev] = False
    return _BF16[dev]


def to_unit(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in [-1, 1]."""
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
    return t.float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float in [-1, 1] -> uint8 (N, C, H, W)."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().cpu().numpy()


def pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad H and W (with -1, the background) up to a multiple; 28 stays 28 for multiple 4."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=-1.0)


def pool(a: torch.Tensor, grid: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C * grid * grid): average over a grid x grid layout (grid=1 is global pooling)."""
    if a.ndim == 2:
        return a
    g = min(grid, a.shape[-1], a.shape[-2])
    return F.adaptive_avg_pool2d(a.float(), g).flatten(1)
