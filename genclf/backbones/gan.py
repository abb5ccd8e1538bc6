"""DCGAN (Radford et al. 2016, arXiv 1511.06434) made stable on CPU with a spectrally normalized
discriminator and the hinge loss (Miyato et al. 2018, arXiv 1802.05957).

Features follow Radford et al.'s recipe: the discriminator's intermediate activations, each
average-pooled over a small grid and concatenated (blocks `d.0`, `d.1`, `d.2`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from genclf.backbones.base import Backbone, pad_to, run_features, to_uint8
from genclf.backbones.registry import register


class Generator(nn.Module):
    def __init__(self, z_dim: int, width: int, c_out: int, side: int):
        super().__init__()
        self.side = side  # output side before cropping, a multiple of 4
        s = side // 4
        self.fc = nn.Sequential(nn.Linear(z_dim, 4 * width * s * s), nn.BatchNorm1d(4 * width * s * s), nn.ReLU())
        self.shape = (4 * width, s, s)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, c_out, 3, 1, 1),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.net(self.fc(z).view(-1, *self.shape))


class Discriminator(nn.Module):
    def __init__(self, c_in: int, width: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            [
                nn.Sequential(spectral_norm(nn.Conv2d(c_in, width, 4, 2, 1)), nn.LeakyReLU(0.2)),
                nn.Sequential(spectral_norm(nn.Conv2d(width, 2 * width, 4, 2, 1)), nn.LeakyReLU(0.2)),
                nn.Sequential(spectral_norm(nn.Conv2d(2 * width, 4 * width, 3, 1, 1)), nn.LeakyReLU(0.2)),
            ]
        )
        self.out = spectral_norm(nn.Linear(4 * width, 1))
        self.acts: list[torch.Tensor] = []

    def forward(self, x):
        self.acts = []
        h = x
        for b in self.blocks:
            h = b(h)
            self.acts.append(h)
        return self.out(h.float().sum(dim=(2, 3)))


@dataclass(frozen=True)
class GANConfig:
    channels: int = 1
    size: int = 28
    z_dim: int = 64
    g_width: int = 32
    d_width: int = 64
    lr: float = 2e-4
    blocks: tuple[str, ...] = ("d.1", "d.2")
    pool: int = 4


@register
class GAN(Backbone):
    name = "gan"
    Config = GANConfig
    PRESETS = {"tiny": {"z_dim": 8, "g_width": 4, "d_width": 4, "pool": 2}, "small": {}}

    def __init__(self, config: GANConfig):
        super().__init__(config)
        c = config
        self.side = c.size + (-c.size) % 4
        self.G = Generator(c.z_dim, c.g_width, c.channels, self.side)
        self.D = Discriminator(c.channels, c.d_width)

    def modules(self):
        return {"G": self.G, "D": self.D}

    def block_names(self):
        return ["d.0", "d.1", "d.2"]

    def default_blocks(self):
        return list(self.config.blocks)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        x = self.G(z)
        off = (self.side - self.config.size) // 2
        return x[..., off : off + self.config.size, off : off + self.config.size]

    def features(self, x, t=None, *, blocks=None, seed=0, batch_size=512, progress=None) -> np.ndarray:
        """x: uint8 (N, C, H, W) -> concat of grid-pooled discriminator activations."""
        self.check_t(t)
        blocks = self.check_blocks(blocks)
        self.D.eval()

        def fn(xb, s):
            self.D(pad_to(xb, 4))
            return self.pooled({f"d.{i}": a for i, a in enumerate(self.D.acts)}, blocks)

        return run_features(self, x, fn, batch_size, progress)

    def make_optimizers(self, lr):
        lr = lr or self.config.lr
        return {
            "G": torch.optim.Adam(self.G.parameters(), lr=lr, betas=(0.0, 0.9)),
            "D": torch.optim.Adam(self.D.parameters(), lr=lr, betas=(0.0, 0.9)),
        }

    def train_step(self, x, opts, gen, step):
        real = pad_to(x, 4)
        z = torch.randn((len(x), self.config.z_dim), generator=gen).to(x.device)
        fake = pad_to(self.generate(z), 4)
        d_loss = F.relu(1 - self.D(real)).mean() + F.relu(1 + self.D(fake.detach())).mean()
        opts["D"].zero_grad(set_to_none=True)
        d_loss.backward()
        opts["D"].step()
        g_loss = -self.D(fake).mean()
        opts["G"].zero_grad(set_to_none=True)
        g_loss.backward()
        opts["G"].step()
        return {"loss": d_loss.item() + g_loss.item(), "d_loss": d_loss.item(), "g_loss": g_loss.item()}

    @torch.inference_mode()
    def samples(self, n, seed=0, images=None):
        self.G.eval()
        z = torch.randn((n, self.config.z_dim), generator=torch.Generator().manual_seed(seed))
        return to_uint8(self.generate(z))
