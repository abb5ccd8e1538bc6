"""Generative backbones behind one protocol and one registry.

from genclf.backbones import get, resolve
bb = resolve("ddpm", "fashion-mnist")          # shipped weights
f = bb.features(images_uint8, t=50)             # (N, D) float32
"""

from genclf.backbones import ddpm, gan, pixels, simclr, vae, vqvae  # noqa: F401  (registration side effects)
from genclf.backbones.base import T_MAX, Backbone
from genclf.backbones.io import available, find, load_backbone, resolve, with_options
from genclf.backbones.registry import BACKBONES, get, names

__all__ = ["T_MAX", "Backbone", "BACKBONES", "available", "find", "get", "load_backbone", "names", "resolve", "with_options"]
