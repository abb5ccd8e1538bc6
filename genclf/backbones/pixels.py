"""Raw pixels as features: the baseline every generative backbone must beat.

Pixels are scaled to [0, 1] and flattened, and nothing else: REFERENCE.md shows that
standardizing raw pixels handicaps the baseline, so heads see them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genclf.backbones.base import Backbone
from genclf.backbones.registry import register


@dataclass(frozen=True)
class PixelsConfig:
    channels: int = 1
    size: int = 28


@register
class Pixels(Backbone):
    name = "pixels"
    Config = PixelsConfig
    PRESETS = {"tiny": {}, "small": {}}
    trainable = False

    def __init__(self, config: PixelsConfig | None = None):
        super().__init__(config or PixelsConfig())

    @classmethod
    def for_shape(cls, shape: tuple[int, int, int]) -> Pixels:
        return cls(PixelsConfig(channels=shape[0], size=max(shape[1:])))

    def block_names(self) -> list[str]:
        return ["pixels"]

    def features(self, x, t=None, *, blocks=None, seed=0, batch_size=None, progress=None) -> np.ndarray:
        """x: uint8 (N, C, H, W) -> (N, C*H*W) float32 in [0, 1]."""
        self.check_t(t)
        self.check_blocks(blocks)
        self.check_images(x)
        if progress:
            progress(len(x), len(x), {})
        return x.reshape(len(x), -1).astype(np.float32) / 255.0

    def fit(self, images, *, seed=0, progress=None, **_):
        return self

    def samples(self, n, seed=0, images=None):
        return (
            images[:n]
            if images is not None
            else np.zeros((0, self.config.channels, self.config.size, self.config.size), np.uint8)
        )

    def save(self, out):
        from genclf.atomic import write_json

        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", {"backbone": self.name, "config": self.config_dict()})
        from safetensors.torch import save_file

        save_file({}, str(out / "model.safetensors"))
        return out
