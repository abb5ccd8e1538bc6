"""VQ-VAE (van den Oord et al. 2017, arXiv 1711.00937) with an EMA codebook and straight-through gradients.

The codebook is updated by exponential moving averages of assigned encoder outputs (the paper's
appendix variant), with dead codes restarted from random encoder outputs so all codes stay used.
Features: grid-pooled pre-quantization activations `z_e` and quantized activations `z_q`, plus
optional encoder blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genclf.backbones.base import Backbone, pad_to, run_features, to_uint8, to_unit
from genclf.backbones.registry import register
from genclf.backbones.vae import Decoder, Encoder


class EMACodebook(nn.Module):
    def __init__(self, codes: int, dim: int, decay: float = 0.99):
        super().__init__()
        self.decay = decay
        self.register_buffer("embed", torch.randn(codes, dim) * 0.1)
        self.register_buffer("cluster_size", torch.ones(codes))
        self.register_buffer("embed_sum", self.embed.clone())

    def forward(self, z: torch.Tensor, gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """z: (N, D, H, W) -> (z_q straight-through, code indices (N, H, W))."""
        n, d, h, w = z.shape
        flat = z.float().permute(0, 2, 3, 1).reshape(-1, d)
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.embed.t() + self.embed.pow(2).sum(1)[None]
        idx = dist.argmin(1)
        q = self.embed[idx]
        if self.training and gen is not None:
            with torch.no_grad():
                onehot = F.one_hot(idx, len(self.embed)).float()
                self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
                self.embed_sum.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
                total = self.cluster_size.sum()
                size = (self.cluster_size + 1e-5) / (total + len(self.embed) * 1e-5) * total
                self.embed.copy_(self.embed_sum / size[:, None])
                dead = self.cluster_size < 1e-2
                if dead.any():  # restart unused codes at random encoder outputs
                    pick = torch.randint(0, len(flat), (int(dead.sum()),), generator=gen).to(flat.device)
                    self.embed[dead] = flat[pick]
                    self.embed_sum[dead] = flat[pick]
                    self.cluster_size[dead] = 1.0
        q = q.view(n, h, w, d).permute(0, 3, 1, 2)
        return z + (q - z).detach(), idx.view(n, h, w)


@dataclass(frozen=True)
class VQVAEConfig:
    channels: int = 1
    size: int = 28
    width: tuple[int, ...] = (32, 64)
    codes: int = 256
    code_dim: int = 32
    commitment: float = 0.25
    lr: float = 1e-3
    blocks: tuple[str, ...] = ("z_e", "z_q")
    pool: int = 4


@register
class VQVAE(Backbone):
    name = "vqvae"
    Config = VQVAEConfig
    PRESETS = {"tiny": {"width": (4, 8), "codes": 16, "code_dim": 4, "pool": 2}, "small": {}}

    def __init__(self, config: VQVAEConfig):
        super().__init__(config)
        c = config
        self.multiple = 2 ** len(c.width)
        self.net = nn.ModuleDict(
            {
                "enc": Encoder(c.channels, c.width),
                "pre": nn.Conv2d(c.width[-1], c.code_dim, 1),
                "codebook": EMACodebook(c.codes, c.code_dim),
                "post": nn.Conv2d(c.code_dim, c.width[-1], 1),
                "dec": Decoder(c.channels, c.width),
            }
        )

    def modules(self):
        return {"net": self.net}

    def block_names(self):
        return [f"enc.{i}" for i in range(len(self.config.width))] + ["z_e", "z_q"]

    def default_blocks(self):
        return list(self.config.blocks)

    def forward(self, x: torch.Tensor, gen: torch.Generator | None = None):
        z_e = self.net["pre"](self.net["enc"](pad_to(x, self.multiple))).float()
        z_q, idx = self.net["codebook"](z_e, gen)
        out = self.net["dec"](self.net["post"](z_q))
        c = self.config.size
        off = (out.shape[-1] - c) // 2
        return out[..., off : off + c, off : off + c], z_e, z_q, idx

    def features(self, x, t=None, *, blocks=None, seed=0, batch_size=512, progress=None) -> np.ndarray:
        """x: uint8 (N, C, H, W) -> concat of grid-pooled chosen blocks (z_e, z_q, enc.i)."""
        self.check_t(t)
        blocks = self.check_blocks(blocks)
        self.net.eval()

        def fn(xb, s):
            z_e = self.net["pre"](self.net["enc"](pad_to(xb, self.multiple))).float()
            z_q, _ = self.net["codebook"](z_e)
            feats = {"z_e": z_e, "z_q": z_q, **{f"enc.{i}": a for i, a in enumerate(self.net["enc"].acts)}}
            return self.pooled(feats, blocks)

        return run_features(self, x, fn, batch_size, progress)

    def make_optimizers(self, lr):
        params = [p for n, p in self.net.named_parameters()]
        return {"net": torch.optim.Adam(params, lr=lr or self.config.lr)}

    def train_step(self, x, opts, gen, step):
        out, z_e, z_q, idx = self.forward(x, gen)
        rec = F.mse_loss(out.float(), x)
        commit = F.mse_loss(z_e, z_q.detach())
        loss = rec + self.config.commitment * commit
        opts["net"].zero_grad(set_to_none=True)
        loss.backward()
        opts["net"].step()
        used = torch.unique(idx).numel() / self.config.codes
        return {"loss": loss.item(), "rec": rec.item(), "commit": commit.item(), "codes_used": used}

    @torch.inference_mode()
    def samples(self, n, seed=0, images=None):
        """Inputs (top) and reconstructions (bottom) of `images[:n]`."""
        self.net.eval()
        if images is None:
            raise ValueError("vqvae shows reconstructions; pass images")
        out, *_ = self.forward(to_unit(images[:n]))
        return np.concatenate([images[:n], to_uint8(out)])
