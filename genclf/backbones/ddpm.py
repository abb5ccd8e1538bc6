"""DDPM backbone: a diffusers UNet2DModel trained with epsilon-prediction; features from its EMA weights.

Features at timestep t (diffusers convention: t in 0..999, t=0 is almost no noise):
  x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, eps drawn from a per-image seeded generator;
  run the UNet with forward hooks on named blocks; average-pool each activation over a
  `pool` x `pool` grid; concatenate; average over `noise_draws` draws.

Defaults follow the published findings (REFERENCE.md): the bottleneck and the first decoder block
at small t (DDAE, Xiang et al. 2023, arXiv 2303.09769; Baranchuk et al. 2022), not the final
full-resolution block. A small pooling grid keeps the spatial layout that matters on small images.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from genclf.backbones.base import Backbone, Hooks, image_seeds, pad_to, run_features, to_uint8
from genclf.backbones.registry import register
from genclf.errors import GenclfError

_DIFFUSERS = threading.Lock()


def _diffusers():
    """The diffusers module, imported on first use, not with genclf: it (and the torch._dynamo it pulls in) costs
    seconds, and most processes that import genclf build no UNet (the CLI's data verbs, other backbones, the
    dashboard's frame). Under a lock: diffusers' lazy module is not safe to import from two threads at once (the
    dashboard's preload thread and a first page run both load the DDPM at server start)."""
    with _DIFFUSERS:
        import diffusers
        from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel  # noqa: F401  (resolve the lazy names here)

        return diffusers


@dataclass(frozen=True)
class DDPMConfig:
    channels: int = 1
    size: int = 28
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    norm_num_groups: int = 16
    attention_head_dim: int = 8
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    ema_decay: float = 0.999
    lr: float = 5e-4
    # feature-time options (do not change the weights)
    blocks: tuple[str, ...] = ("mid_block", "up_blocks.0")
    pool: int = 4
    noise_draws: int = 1
    # down levels with attention (0: full resolution; the up path mirrors them); None: the lowest level only
    attention_levels: tuple[int, ...] | None = None


@register
class DDPM(Backbone):
    name = "ddpm"
    Config = DDPMConfig
    has_t = True
    grid_variants = (2, 7)  # the block sweep also tries each default block at these pooling grids (config.pool: 4)
    # tiny: tests; small (1.1M): the shipped Fashion-MNIST model, a CPU-sized UNet.
    # medium (9M) and large (35.7M) are for GPUs and 32x32 RGB: the DDPM CIFAR-10 UNet (Ho et al. 2020, the
    # backbone DDAE probes, arXiv 2303.09769) has widths 128/256/256/256, two res blocks per level and
    # attention at 16x16; medium halves the widths. Both use that paper's lr 2e-4 at a global batch of 128;
    # the EMA decay grows with the run length each is meant for (README, "DDPM presets").
    PRESETS = {
        "tiny": {"block_out_channels": (4, 8), "norm_num_groups": 4, "attention_head_dim": 4, "pool": 2},
        "small": {},
        "medium": {
            "block_out_channels": (64, 128, 128, 128),
            "layers_per_block": 2,
            "norm_num_groups": 32,
            "attention_head_dim": 64,
            "attention_levels": (1,),
            "lr": 2e-4,
            "ema_decay": 0.9995,
        },
        "large": {
            "block_out_channels": (128, 256, 256, 256),
            "layers_per_block": 2,
            "norm_num_groups": 32,
            "attention_head_dim": 64,
            "attention_levels": (1,),
            "lr": 2e-4,
            "ema_decay": 0.9999,
        },
    }

    def __init__(self, config: DDPMConfig):
        super().__init__(config)
        c = config
        n = len(c.block_out_channels)
        attn = set(c.attention_levels) if c.attention_levels is not None else {n - 1}
        if not attn <= set(range(n)):
            raise GenclfError(f"attention_levels {sorted(attn)} must be down levels in 0..{n - 1}")
        diffusers = _diffusers()
        self.unet = diffusers.UNet2DModel(
            sample_size=c.size,
            in_channels=c.channels,
            out_channels=c.channels,
            layers_per_block=c.layers_per_block,
            block_out_channels=c.block_out_channels,
            down_block_types=tuple("AttnDownBlock2D" if i in attn else "DownBlock2D" for i in range(n)),
            up_block_types=tuple("AttnUpBlock2D" if n - 1 - j in attn else "UpBlock2D" for j in range(n)),
            norm_num_groups=c.norm_num_groups,
            attention_head_dim=c.attention_head_dim,
        )
        self.ema = copy.deepcopy(self.unet).eval().requires_grad_(False)
        self.scheduler = diffusers.DDPMScheduler(num_train_timesteps=c.num_train_timesteps, beta_schedule=c.beta_schedule)
        self.multiple = 2 ** (n - 1)

    def config_dict(self) -> dict:
        d = super().config_dict()
        if d["attention_levels"] is None:  # the original layout keeps its config (and cache keys) as they were
            del d["attention_levels"]
        return d

    def modules(self):
        return {"unet": self.unet, "ema": self.ema}

    def export_modules(self):
        return {"ema": self.ema}

    def block_names(self) -> list[str]:
        n = len(self.config.block_out_channels)
        return [f"down_blocks.{i}" for i in range(n)] + ["mid_block"] + [f"up_blocks.{i}" for i in range(n)]

    def default_blocks(self) -> list[str]:
        return list(self.config.blocks)

    def noised(self, x0: torch.Tensor, t: int, seeds: list[int]) -> torch.Tensor:
        noise = torch.stack([torch.randn(x0.shape[1:], generator=torch.Generator().manual_seed(s)) for s in seeds])
        ts = torch.full((len(x0),), t, dtype=torch.long)
        return self.scheduler.add_noise(x0, noise.to(x0.device), ts.to(x0.device))

    def features(self, x, t=None, *, blocks=None, seed=0, batch_size=256, progress=None) -> np.ndarray:
        """x: uint8 (N, C, H, W) -> (N, sum_b C_b * pool^2) float32 from the EMA UNet at timestep t."""
        t = self.check_t(t)
        blocks = self.check_blocks(blocks)
        self.ema.eval()

        def fn(xb: torch.Tensor, s: slice) -> torch.Tensor:
            xb = pad_to(xb, self.multiple)
            total = 0
            for d in range(self.config.noise_draws):
                seeds = image_seeds(x[s], seed * 1000 + d)
                xt = self.noised(xb, t, seeds)
                ts = torch.full((len(xb),), t, dtype=torch.long, device=xb.device)

                with Hooks(self.ema, sorted({b.split("@")[0] for b in blocks})) as h:
                    self.ema(xt, ts)
                    total = total + self.pooled(h.out, blocks)
            return total / self.config.noise_draws

        return run_features(self, x, fn, batch_size, progress)

    # ---- training
    def make_optimizers(self, lr):
        return {"unet": torch.optim.Adam(self.unet.parameters(), lr=lr or self.config.lr)}

    def train_step(self, x, opts, gen, step):
        x0 = pad_to(x, self.multiple)
        noise = torch.randn(x0.shape, generator=gen).to(x0.device)
        t = torch.randint(0, self.config.num_train_timesteps, (len(x0),), generator=gen).to(x0.device)
        xt = self.scheduler.add_noise(x0, noise, t)
        pred = self.unet(xt, t).sample
        loss = F.mse_loss(pred.float(), noise)
        opt = opts["unet"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.unet.parameters(), 1.0)
        opt.step()
        # EMA with warm-up (decay ramps to ema_decay) so early checkpoints are usable
        decay = min(self.config.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            ema_p, p = list(self.ema.parameters()), list(self.unet.parameters())
            torch._foreach_lerp_(ema_p, p, 1 - decay)
        return {"loss": loss.item()}

    @torch.inference_mode()
    def samples(self, n: int, seed: int = 0, images=None, steps: int = 50) -> np.ndarray:
        """n generated images (DDIM, `steps` steps, EMA weights) -> uint8 (n, C, H, W)."""
        c = self.config
        ddim = _diffusers().DDIMScheduler.from_config(self.scheduler.config)
        ddim.set_timesteps(steps)
        g = torch.Generator().manual_seed(seed)
        side = c.size + (-c.size) % self.multiple
        x = torch.randn((n, c.channels, side, side), generator=g)
        self.ema.eval()
        for t in ddim.timesteps:
            eps = self.ema(x, t).sample
            x = ddim.step(eps, t, x).prev_sample
        off = (side - c.size) // 2
        return to_uint8(x[..., off : off + c.size, off : off + c.size])
