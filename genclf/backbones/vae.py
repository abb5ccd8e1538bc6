"""Convolutional VAE (Kingma & Welling 2014, arXiv 1312.6114) with a configurable latent size.

Features: the posterior mean mu(x), optionally with grid-pooled encoder and decoder activations
(blocks `mu`, `enc.0`, `enc.1`, `dec.0`, `dec.1`). Bernoulli likelihood on pixels in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genclf.backbones.base import Backbone, pad_to, run_features, to_uint8, to_unit
from genclf.backbones.registry import register


def conv_stack(channels: list[int], transpose: bool = False) -> nn.ModuleList:
    """Stride-2 conv (or transposed conv) blocks, each halving (or doubling) the resolution."""
    layers = nn.ModuleList()
    for a, b in zip(channels[:-1], channels[1:]):
        conv = nn.ConvTranspose2d(a, b, 4, 2, 1) if transpose else nn.Conv2d(a, b, 4, 2, 1)
        layers.append(nn.Sequential(conv, nn.GroupNorm(min(8, b), b), nn.SiLU()))
    return layers


class Encoder(nn.Module):
    def __init__(self, c_in: int, width: tuple[int, ...]):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(c_in, width[0], 3, 1, 1), nn.SiLU())
        self.blocks = conv_stack(list(width[:1]) + list(width))
        self.acts: list[torch.Tensor] = []

    def forward(self, x):
        h = self.stem(x)
        self.acts = []
        for b in self.blocks:
            h = b(h)
            self.acts.append(h)
        return h


class Decoder(nn.Module):
    def __init__(self, c_out: int, width: tuple[int, ...]):
        super().__init__()
        rev = list(reversed(width))
        self.blocks = conv_stack(rev + [rev[-1]], transpose=True)
        self.head = nn.Conv2d(rev[-1], c_out, 3, 1, 1)
        self.acts: list[torch.Tensor] = []

    def forward(self, h):
        self.acts = []
        for b in self.blocks:
            h = b(h)
            self.acts.append(h)
        return self.head(h)  # logits


@dataclass(frozen=True)
class VAEConfig:
    channels: int = 1
    size: int = 28
    width: tuple[int, ...] = (32, 64)
    latent: int = 32
    beta: float = 1.0
    lr: float = 1e-3
    blocks: tuple[str, ...] = ("mu", "enc.1")
    pool: int = 2


@register
class VAE(Backbone):
    name = "vae"
    Config = VAEConfig
    PRESETS = {"tiny": {"width": (4, 8), "latent": 4}, "small": {}}

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        c = config
        self.multiple = 2 ** len(c.width)
        side = (c.size + (-c.size) % self.multiple) // self.multiple
        self.grid = (c.width[-1], side, side)
        flat = c.width[-1] * side * side
        self.net = nn.ModuleDict(
            {
                "enc": Encoder(c.channels, c.width),
                "to_stats": nn.Linear(flat, 2 * c.latent),
                "from_z": nn.Linear(c.latent, flat),
                "dec": Decoder(c.channels, c.width),
            }
        )

    def modules(self):
        return {"net": self.net}

    def block_names(self):
        n = len(self.config.width)
        return ["mu"] + [f"enc.{i}" for i in range(n)] + [f"dec.{i}" for i in range(n)]

    def default_blocks(self):
        return list(self.config.blocks)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net["enc"](pad_to(x, self.multiple))
        mu, logvar = self.net["to_stats"](h.flatten(1)).float().chunk(2, dim=1)
        return mu, logvar.clamp(-12, 8)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        logits = self.net["dec"](self.net["from_z"](z).view(-1, *self.grid))
        c = self.config.size
        off = (logits.shape[-1] - c) // 2
        return logits[..., off : off + c, off : off + c]

    def features(self, x, t=None, *, blocks=None, seed=0, batch_size=512, progress=None) -> np.ndarray:
        """x: uint8 (N, C, H, W) -> concat of the chosen blocks: mu (latent) and grid-pooled activations."""
        self.check_t(t)
        blocks = self.check_blocks(blocks)
        self.net.eval()

        def fn(xb, s):
            mu, _ = self.encode(xb)
            feats = {"mu": mu}
            feats.update({f"enc.{i}": a for i, a in enumerate(self.net["enc"].acts)})
            if any(b.startswith("dec.") for b in blocks):  # the decoder runs only when asked
                self.decode(mu)
                feats.update({f"dec.{i}": a for i, a in enumerate(self.net["dec"].acts)})
            return self.pooled(feats, blocks)

        return run_features(self, x, fn, batch_size, progress)

    def make_optimizers(self, lr):
        return {"net": torch.optim.Adam(self.net.parameters(), lr=lr or self.config.lr)}

    def train_step(self, x, opts, gen, step):
        mu, logvar = self.encode(x)
        z = mu + torch.randn(mu.shape, generator=gen).to(mu.device) * (0.5 * logvar).exp()
        logits = self.decode(z).float()
        target = (x + 1) / 2
        rec = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(x)
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(x)
        loss = rec + self.config.beta * kl
        opts["net"].zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 5.0)
        opts["net"].step()
        return {"loss": loss.item(), "rec": rec.item(), "kl": kl.item()}

    @torch.inference_mode()
    def samples(self, n, seed=0, images=None):
        """Reconstructions of `images[:n]` (top half: inputs, bottom half: reconstructions) when given."""
        self.net.eval()
        if images is not None:
            x = to_unit(images[:n])
            mu, _ = self.encode(x)
            rec = torch.sigmoid(self.decode(mu)) * 2 - 1
            return np.concatenate([images[:n], to_uint8(rec)])
        z = torch.randn((n, self.config.latent), generator=torch.Generator().manual_seed(seed))
        return to_uint8(torch.sigmoid(self.decode(z)) * 2 - 1)
