"""What every backbone shares: config handling, image scaling, hooks, pooling, safetensors I/O.

A backbone is a frozen dataclass config plus torch modules. It implements:
- `fit(images, *, seed, progress)` -> self (trains from scratch or continues, see genclf.train);
- `features(x, t=None, *, blocks=None, seed=0)` -> (N, D) float32;
- `save(dir)` / `load(dir)`: `model.safetensors` + `config.json`, never a pickle.

Images come in as uint8 (N, C, H, W) and are scaled to [-1, 1].
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from genclf.atomic import atomic_write, write_json
from genclf.backbones.ops import Progress, autocast, device, pad_to, pool, to_uint8, to_unit  # noqa: F401
from genclf.errors import GenclfError

log = logging.getLogger(__name__)

T_MAX = 999  # diffusers counts timesteps 0..999; t=0 is (almost) no noise


class Hooks:
    """Forward hooks on named submodules; `out[name]` is the block's output tensor after a forward."""

    def __init__(self, model: nn.Module, names: list[str]):
        self.out: dict[str, torch.Tensor] = {}
        self._handles = []
        for n in names:
            mod = model.get_submodule(n)
            self._handles.append(mod.register_forward_hook(self._grab(n)))

    def _grab(self, name: str):
        def hook(_m, _inp, output):
            self.out[name] = output[0] if isinstance(output, tuple) else output

        return hook

    def __enter__(self) -> Hooks:
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()


def config_from_dict(cls: type, d: dict) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    bad = sorted(set(d) - names)
    if bad:
        raise GenclfError(f"unknown config key(s) {bad} for {cls.__name__}; valid keys: {', '.join(sorted(names))}")
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    return cls(**kw)


class Backbone:
    """Base class; subclasses set `name`, `Config`, `PRESETS` and build modules in `__init__`."""

    name: ClassVar[str]
    Config: ClassVar[type]
    PRESETS: ClassVar[dict[str, dict]] = {}
    has_t: ClassVar[bool] = False
    grid_variants: ClassVar[tuple[int, ...]] = ()  # extra pooling grids the block sweep tries on the default blocks
    trainable: ClassVar[bool] = True

    def __init__(self, config: Any):
        self.config = config
        self.meta: dict = {}  # provenance written by the trainer (dataset, images seen, time)

    # ---- construction
    @classmethod
    def from_preset(cls, preset: str, shape: tuple[int, int, int], seed: int = 0, **overrides: Any) -> Backbone:
        """A freshly initialised backbone for images of `shape` (C, H, W); the init is seeded."""
        if preset not in cls.PRESETS:
            raise GenclfError(f"unknown preset {preset!r} for {cls.name}; valid presets: {', '.join(cls.PRESETS)}")
        c, h, w = shape
        cfg = config_from_dict(cls.Config, {**cls.PRESETS[preset], "channels": c, "size": max(h, w), **overrides})
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return cls(cfg)

    def config_dict(self) -> dict:
        return dataclasses.asdict(self.config)

    # ---- what subclasses provide
    def modules(self) -> dict[str, nn.Module]:
        """Every module whose state is saved (for resumable checkpoints)."""
        return {}

    def export_modules(self) -> dict[str, nn.Module]:
        """Modules needed for features and samples (what `model.safetensors` holds)."""
        return self.modules()

    def block_names(self) -> list[str]:
        return []

    def default_blocks(self) -> list[str]:
        return self.block_names()

    def features(self, x: np.ndarray, t: int | None = None, *, blocks: list[str] | None = None, seed: int = 0) -> np.ndarray:
        raise NotImplementedError

    # ---- shared checks
    def check_t(self, t: int | None) -> int | None:
        if self.has_t:
            if t is None:
                raise GenclfError(f"{self.name} needs a timestep t in [0, {T_MAX}]; pass --t")
            try:
                v = int(t)
            except (TypeError, ValueError):  # 'auto' reaching a verb that takes t as given
                raise GenclfError(
                    f"t={t!r} is not a timestep; pass a whole number 0..{T_MAX}, e.g. --t 50 "
                    "('auto' is for `genclf eval --t auto` alone, which chooses t on validation)"
                ) from None
            if not 0 <= v <= T_MAX:
                raise GenclfError(f"t={t} is outside [0, {T_MAX}] (diffusers counts timesteps 0..{T_MAX})")
            return v
        if t is not None:
            raise GenclfError(f"backbone {self.name!r} has no timestep; drop --t (only ddpm takes one)")
        return None

    def check_blocks(self, blocks: list[str] | None) -> list[str]:
        """Validate block names; `name@g` pools that block over a g x g grid instead of config.pool."""
        blocks = list(blocks) if blocks else self.default_blocks()
        valid = self.block_names()
        bad = [b for b in blocks if b.split("@")[0] not in valid]
        if bad:
            raise GenclfError(
                f"unknown block(s) {bad} for {self.name}; valid blocks: {', '.join(valid)} (optionally name@grid)"
            )
        for b in blocks:  # exactly one ASCII digit: '@٣' or '@03' would pool like '@3' under another cache key
            if "@" in b and b.split("@", 1)[1] not in tuple("12345678"):
                raise GenclfError(f"bad pooling grid in block {b!r}; write name@g with g in 1..8, e.g. mid_block@2")
        return blocks

    def pooled(self, acts: dict[str, torch.Tensor], blocks: list[str]) -> torch.Tensor:
        """Concatenate grid-pooled activations of `blocks` (each 'name' or 'name@grid')."""
        out = []
        for b in blocks:
            name, _, g = b.partition("@")
            out.append(pool(acts[name], int(g) if g else self.config.pool).float())
        return torch.cat(out, 1)

    def check_images(self, x: np.ndarray) -> None:
        if x.ndim != 4 or x.dtype != np.uint8:
            raise GenclfError(f"images must be uint8 (N, C, H, W); got {x.dtype} {x.shape}")
        if x.shape[1] != self.config.channels:
            raise GenclfError(
                f"{self.name} was built for {self.config.channels}-channel images but got {x.shape[1]}; "
                "use a backbone trained on this dataset (genclf train --dataset ...)"
            )

    # ---- identity and I/O
    def state_tensors(self, export: bool = True) -> dict[str, torch.Tensor]:
        mods = self.export_modules() if export else self.modules()
        return {f"{m}.{k}": v.detach().cpu().contiguous() for m, mod in mods.items() for k, v in mod.state_dict().items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], export: bool = True, where: str = "") -> None:
        mods = self.export_modules() if export else self.modules()
        expected = {f"{m}.{k}": v.shape for m, mod in mods.items() for k, v in mod.state_dict().items()}
        missing = sorted(set(expected) - set(tensors))
        wrong = sorted(k for k in expected if k in tensors and tuple(tensors[k].shape) != tuple(expected[k]))
        if missing or wrong:
            what = f"missing {missing[:3]}" if missing else f"shape mismatch at {wrong[:3]}"
            raise GenclfError(f"checkpoint {where} does not match its config.json ({what}); retrain it with genclf train")
        for m, mod in mods.items():
            prefix = f"{m}."
            mod.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})

    def fingerprint(self) -> str:
        """sha256 over config and weights: the backbone part of every cache key."""
        h = hashlib.sha256(json.dumps({"name": self.name, "config": self.config_dict()}, sort_keys=True).encode())
        for k, v in sorted(self.state_tensors().items()):
            h.update(k.encode())
            h.update(v.float().numpy().tobytes())
        return h.hexdigest()[:16]

    def save(self, out: Path | str) -> Path:
        from safetensors.torch import save_file

        from genclf.backbones.checkpoint import digest

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        tensors = self.state_tensors()  # with their digest, checked on load (genclf.backbones.io.read_weights)
        atomic_write(out / "model.safetensors", lambda tmp: save_file(tensors, tmp, metadata={"digest": digest(tensors)}))
        write_json(out / "config.json", {"backbone": self.name, "config": self.config_dict(), **self.meta})
        return out

    def samples(self, n: int, seed: int = 0, images: np.ndarray | None = None) -> np.ndarray:
        """uint8 (n, C, H, W): generated samples, or reconstructions of `images` for autoencoders."""
        raise NotImplementedError

    # ---- training (genclf.backbones.train drives these)
    def make_optimizers(self, lr: float | None) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, x: torch.Tensor, opts: dict[str, torch.optim.Optimizer], gen: torch.Generator, step: int) -> dict:
        raise NotImplementedError

    def augment(self, x: torch.Tensor, gen: torch.Generator, hflip: bool) -> torch.Tensor:
        if not hflip:
            return x
        flip = torch.rand(x.shape[0], generator=gen) < 0.5
        return torch.where(flip[:, None, None, None], x.flip(-1), x)

    def fit(
        self,
        images: np.ndarray,
        *,
        seed: int = 0,
        progress: Progress | None = None,
        epochs: float = 1,
        batch_size: int = 64,
        lr: float | None = None,
        max_steps: int | None = None,
        hflip: bool = False,
    ) -> Backbone:
        """Train on unlabeled uint8 images (N, C, H, W) in memory; returns self."""
        from genclf.backbones.train import TrainConfig, train

        cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, max_steps=max_steps, hflip=hflip)
        train(self, images, cfg, out_dir=None, progress=progress)
        return self


def batched(n: int, size: int) -> Iterator[slice]:
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


def image_seeds(x: np.ndarray, seed: int) -> list[int]:
    """A per-image seed from the pixels: an image's noise never depends on its batch or subset."""
    import zlib

    flat = x.reshape(len(x), -1)
    return [(zlib.crc32(row.tobytes()) ^ (seed * 0x9E3779B1)) & 0x7FFFFFFF for row in flat]


@torch.inference_mode()
def run_features(
    backbone: Backbone,
    x: np.ndarray,
    fn: Callable[[torch.Tensor, slice], torch.Tensor],
    batch_size: int = 256,
    progress: Progress | None = None,
) -> np.ndarray:
    """Apply `fn(x_batch in [-1,1], slice) -> (B, D)` over x in batches under bf16 autocast."""
    backbone.check_images(x)
    dev = device()
    for m in backbone.export_modules().values():
        m.to(dev)  # a backbone loaded from disk starts on the CPU; on a GPU machine the inputs go to the GPU
    outs = []
    for s in batched(len(x), batch_size):
        xb = to_unit(x[s]).to(dev)
        with autocast():
            outs.append(fn(xb, s).float().cpu())
        if progress:
            progress(s.stop, len(x), {})
    if not outs:
        return np.zeros((0, 0), np.float32)
    return torch.cat(outs).numpy().astype(np.float32)
