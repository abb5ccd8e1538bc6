"""SimCLR (Chen et al. 2020, arXiv 2002.05709): a contrastive self-supervised backbone, the competitor a user
with unlabeled images would otherwise pick.

Training: two augmented views of every image (random resized crop, flip, brightness/contrast jitter, a little
blur; batched torch ops seeded by the loop's generator), a small ResNet encoder, an MLP projection head, and
the NT-Xent loss at temperature `temperature` over the 2B views of a batch.

Features come from the encoder only (the projection head serves the loss; SimCLR's finding is that the layer
before it transfers better). Blocks are named stages read through forward hooks: `stem`, `layer1`..`layerN`
(`layerN`, the last stage, globally pooled, is the default; `name@g` pools a stage over a g x g grid).

There is nothing generative here: `samples()` returns images beside two of their augmented views (what the
loss pairs), and `neighbour_grid` draws query images beside their nearest neighbours in feature space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genclf.backbones.base import Backbone, Hooks, run_features, to_uint8, to_unit
from genclf.backbones.registry import register


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016): two 3x3 convs with BatchNorm and a (projected) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.short = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.short(x))


class Encoder(nn.Module):
    """A CIFAR-style small ResNet: 3x3 stem, then one stage per width (the first at full resolution,
    each later one halving it), `depth` basic blocks per stage; returns the globally pooled last stage."""

    def __init__(self, c_in: int, width: tuple[int, ...], depth: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(c_in, width[0], 3, 1, 1, bias=False), nn.BatchNorm2d(width[0]), nn.ReLU())
        prev = width[0]
        for i, w in enumerate(width):
            blocks = [BasicBlock(prev if j == 0 else w, w, 2 if (i > 0 and j == 0) else 1) for j in range(depth)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            prev = w
        self.n = len(width)

    def forward(self, x):
        h = self.stem(x)
        for i in range(self.n):
            h = getattr(self, f"layer{i + 1}")(h)
        return h.mean((2, 3))


@dataclass(frozen=True)
class SimCLRConfig:
    channels: int = 1
    size: int = 28
    width: tuple[int, ...] = (32, 64, 128)
    depth: int = 1  # basic blocks per stage
    proj_dim: int = 64
    temperature: float = 0.2
    lr: float = 1e-3
    weight_decay: float = 1e-5
    # augmentation strengths
    crop_min: float = 0.35  # smallest crop area, as a fraction of the image
    jitter: float = 0.4  # brightness and contrast factors in [1 - jitter, 1 + jitter]
    blur_p: float = 0.3  # probability of a small gaussian blur
    # feature-time options (do not change the weights)
    blocks: tuple[str, ...] = ("layer3",)
    pool: int = 1


def nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent over 2B projections where rows i and i+B are the two views of one image."""
    z = F.normalize(z.float(), dim=1)
    n = z.shape[0] // 2
    sim = z @ z.t() / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def random_view(x: torch.Tensor, gen: torch.Generator, *, crop_min: float, jitter: float, blur_p: float, hflip: bool):
    """One augmented view of a batch x in [-1, 1] (B, C, H, W); every random draw comes from `gen`."""
    b, c = x.shape[:2]
    # random resized crop (area in [crop_min, 1], aspect in [3/4, 4/3]) and flip, as one affine resampling
    area = _uniform(b, crop_min, 1.0, gen)
    log_r = _uniform(b, math.log(3 / 4), math.log(4 / 3), gen)
    sw = (area * log_r.exp()).sqrt().clamp(max=1.0)
    sh = (area / log_r.exp()).sqrt().clamp(max=1.0)
    tx = (1 - sw) * _uniform(b, -1, 1, gen)
    ty = (1 - sh) * _uniform(b, -1, 1, gen)
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0) if hflip else torch.ones(b)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sw * flip, tx, sh, ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    v = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # brightness and contrast jitter on [0, 1] intensities, with probability 0.8
    u = (v + 1) / 2
    on = (torch.rand(b, generator=gen) < 0.8).float()
    bright = 1 + on * _uniform(b, -jitter, jitter, gen)
    contrast = 1 + on * _uniform(b, -jitter, jitter, gen)
    u = u * bright[:, None, None, None]
    mean = u.mean((1, 2, 3), keepdim=True)
    u = (u - mean) * contrast[:, None, None, None] + mean
    if c == 3:  # colour images: random greyscale with probability 0.2
        grey = (torch.rand(b, generator=gen) < 0.2)[:, None, None, None]
        u = torch.where(grey, u.mean(1, keepdim=True).expand_as(u), u)
    # a small gaussian blur (3x3, sigma in [0.1, 1]) on a random subset
    sigma = _uniform(b, 0.1, 1.0, gen)
    blur = torch.rand(b, generator=gen) < blur_p
    if blur.any():
        k1 = torch.exp(-(torch.tensor([-1.0, 0.0, 1.0])[None] ** 2) / (2 * sigma[:, None] ** 2))
        k1 = k1 / k1.sum(1, keepdim=True)
        k2 = (k1[:, :, None] * k1[:, None, :]).repeat_interleave(c, 0)[:, None]  # (B*C, 1, 3, 3)
        blurred = F.conv2d(F.pad(u.reshape(1, b * c, *u.shape[2:]), (1, 1, 1, 1), mode="replicate"), k2, groups=b * c)
        u = torch.where(blur[:, None, None, None], blurred.reshape(u.shape), u)
    return u.clamp(0, 1) * 2 - 1


@register
class SimCLR(Backbone):
    name = "simclr"
    Config = SimCLRConfig
    grid_variants = (2, 4, 7)  # the block sweep also tries the default block pooled over these grids
    samples_caption: ClassVar[str] = "not generative: in each band of three rows, images and two augmented views of each"
    PRESETS = {"tiny": {"width": (4, 8), "proj_dim": 8, "blocks": ("layer2",)}, "small": {}}

    def __init__(self, config: SimCLRConfig):
        super().__init__(config)
        c = config
        self.encoder = Encoder(c.channels, c.width, c.depth)
        d = c.width[-1]
        self.head = nn.Sequential(nn.Linear(d, d), nn.BatchNorm1d(d), nn.ReLU(), nn.Linear(d, c.proj_dim))

    def modules(self):
        return {"encoder": self.encoder, "head": self.head}

    def export_modules(self):
        return {"encoder": self.encoder}  # the projection head only serves the loss

    def block_names(self) -> list[str]:
        return ["stem"] + [f"layer{i + 1}" for i in range(len(self.config.width))]

    def default_blocks(self) -> list[str]:
        return list(self.config.blocks)

    def views(self, x: torch.Tensor, gen: torch.Generator, hflip: bool = True) -> torch.Tensor:
        """Two augmented views of x in [-1, 1], stacked: rows i and i + B are views of image i."""
        c = self.config
        kw = {"crop_min": c.crop_min, "jitter": c.jitter, "blur_p": c.blur_p, "hflip": hflip}
        return torch.cat([random_view(x, gen, **kw), random_view(x, gen, **kw)])

    def features(self, x, t=None, *, blocks=None, seed=0, batch_size=512, progress=None) -> np.ndarray:
        """x: uint8 (N, C, H, W) -> grid-pooled encoder stages (deterministic: `seed` is unused)."""
        self.check_t(t)
        blocks = self.check_blocks(blocks)
        self.encoder.eval()

        def fn(xb, s):
            with Hooks(self.encoder, sorted({b.split("@")[0] for b in blocks})) as h:
                self.encoder(xb)
                return self.pooled(h.out, blocks)

        return run_features(self, x, fn, batch_size, progress)

    # ---- training: the loop calls augment (on CPU, seeded) and then train_step on the result
    def augment(self, x, gen, hflip):
        return self.views(x, gen, hflip)

    def make_optimizers(self, lr):
        params = list(self.encoder.parameters()) + list(self.head.parameters())
        return {"net": torch.optim.AdamW(params, lr=lr or self.config.lr, weight_decay=self.config.weight_decay)}

    def train_step(self, x, opts, gen, step):
        self.encoder.train()
        self.head.train()
        loss = nt_xent(self.head(self.encoder(x)), self.config.temperature)
        opt = opts["net"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    @torch.inference_mode()
    def samples(self, n, seed=0, images=None, cols=8):
        """Not generative: `images[:n]` (or n noise images) with two augmented views each, as the loss sees them
        (flips only if training used them). Laid out for a `cols`-wide grid: bands of three rows, the images
        on top and their two views below."""
        if images is None:
            g = np.random.default_rng(seed)
            images = g.integers(0, 256, (n, self.config.channels, self.config.size, self.config.size), dtype=np.uint8)
        x = to_unit(images[:n])
        hflip = bool(self.meta.get("train", {}).get("hflip", False))
        va, vb = self.views(x, torch.Generator().manual_seed(seed), hflip).chunk(2)
        bands = [torch.cat([x[i : i + cols], va[i : i + cols], vb[i : i + cols]]) for i in range(0, len(x), cols)]
        return to_uint8(torch.cat(bands))


def nearest_neighbours(query: np.ndarray, pool: np.ndarray, k: int) -> np.ndarray:
    """Indices (len(query), k) of the k nearest rows of `pool` by cosine similarity of standardized features."""
    mu, sd = pool.mean(0), pool.std(0) + 1e-6
    q = F.normalize(torch.as_tensor((query - mu) / sd), dim=1)
    p = F.normalize(torch.as_tensor((pool - mu) / sd), dim=1)
    return (q @ p.t()).topk(k, dim=1).indices.numpy()


def neighbour_grid(query_images: np.ndarray, query_feats: np.ndarray, pool_images, pool_feats, k: int = 7) -> np.ndarray:
    """uint8 images (n * (k + 1), C, H, W): each query followed by its k nearest pool images, row by row."""
    idx = nearest_neighbours(query_feats, pool_feats, k)
    rows = [np.concatenate([query_images[i : i + 1], pool_images[idx[i]]]) for i in range(len(query_images))]
    return np.concatenate(rows)
