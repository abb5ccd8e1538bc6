"""What the diffusion model sees at t: the noised input x_t and its one-step denoised guess x̂0, cached.

    d = denoise.run("fashion-mnist", "ddpm", "test", [17], t=100)
    d.x0, d.xt, d.x0_hat      uint8 (N, C, H, W);  d.error (N,) mean squared error of x̂0 in [0, 1] pixels
    denoise.strip("fashion-mnist", "ddpm", "test", 17, ts=(0, 10, 50, 500))   # one image along the t grid
    denoise.class_error("fashion-mnist", "ddpm", "test", idx, t=100)          # mean error per class

For the ddpm backbone (diffusers convention, t in 0..999, abar_t = prod_{s<=t} (1 - beta_s)):
  x_t  = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps   -- exactly the UNet input the features use: the same
         `image_seeds(x, seed * 1000)` noise (draw 0) through the backbone's own `noised`, bit for bit;
  x̂0  = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t), eps_hat from the EMA UNet (Ho et al. 2020,
         eq. 15; diffusers' `pred_original_sample`). It runs in fp32, not the features' bf16 autocast: at
         batch 1 fp32 is faster on a CPU, and a cached picture must not depend on whether the CPU has bf16.
x̂0 is shown and scored clipped to [-1, 1], as diffusers' sampler clips it. SNR(t) = abar_t / (1 - abar_t).
The VAE and VQ-VAE have no timestep: they show their reconstruction of x0 instead (`mode` says which).
The GAN (no encoder) and the raw-pixel baseline have nothing to show.

Results are content-addressed in the disk cache (kind "denoise": data and weights fingerprints, image
bytes, t, seed), plus an in-process memo, so a slider revisiting a t costs nothing.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from genclf import data, features
from genclf.backbones.base import Backbone, image_seeds
from genclf.backbones.ops import pad_to, to_uint8, to_unit
from genclf.cache import Cache, make_key
from genclf.errors import GenclfError

KIND = "denoise"
VERSION = 1  # bump when what an entry holds changes
RECONSTRUCTS = ("vae", "vqvae")  # autoencoders: `samples(n, images=x)` returns x then its reconstructions
MAX_SET = 200  # class_error scores a stratified subset of at most this many (a new t: seconds on 2 cores, bench/denoise.py)


def mode(bb: Backbone) -> str:
    """'denoise' (ddpm), 'reconstruct' (vae, vqvae) or 'none' (gan, pixels)."""
    if bb.has_t and hasattr(bb, "scheduler") and hasattr(bb, "ema"):
        return "denoise"
    return "reconstruct" if bb.name in RECONSTRUCTS else "none"


def nothing_to_show(bb: Backbone) -> str:
    """Why a backbone without a denoiser or a decoder of real images shows nothing."""
    if bb.name == "pixels":
        return "`pixels` is the raw-pixel baseline: there is no model, so no noised image or reconstruction to show."
    return (
        f"`{bb.name}` cannot noise or reconstruct a given image (a GAN has no encoder), so there is nothing to show "
        "here; pick ddpm to see what the model sees at t, or vae/vqvae for reconstructions."
    )


def about(dataset: str, backbone: str) -> tuple[str, str]:
    """(mode, why there is nothing to show or '') for a backbone of a dataset."""
    bb = features.backbone(backbone, dataset)
    m = mode(bb)
    return m, nothing_to_show(bb) if m == "none" else ""


# ------------------------------------------------------------------ the maths (pure, uncached)


def alpha_bar(bb: Backbone, t: int) -> float:
    """abar_t of the backbone's noise schedule (1 at no noise, ~0 at pure noise)."""
    t = bb.check_t(t)
    return float(bb.scheduler.alphas_cumprod[t])


def snr(bb: Backbone, t: int) -> float:
    """Signal-to-noise ratio abar_t / (1 - abar_t) of x_t (10 log10 of it is in dB)."""
    a = alpha_bar(bb, t)
    return a / (1.0 - a)


def _crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo `pad_to` (centre padding) back to (H, W)."""
    h, w = size
    oh, ow = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[..., oh : oh + h, ow : ow + w]


@torch.inference_mode()
def denoise_batch(bb: Backbone, x: np.ndarray, ts: list[int], seed: int = 0) -> dict[str, np.ndarray]:
    """x: uint8 (N, C, H, W), ts: N timesteps (one per image) -> float32 (N, C, H, W) arrays in [-1, 1] units:
    `xt` (the UNet's input, unclipped), `eps_hat` (its noise prediction), `x0_hat` (unclipped estimate)."""
    if mode(bb) != "denoise":
        raise GenclfError(f"{bb.name} has no timestep to denoise at; only ddpm does")
    bb.check_images(x)
    if len(ts) != len(x):
        raise GenclfError(f"one timestep per image: got {len(ts)} for {len(x)} images")
    ts = [bb.check_t(t) for t in ts]
    dev = next(bb.ema.parameters()).device
    x0 = pad_to(to_unit(x).to(dev), bb.multiple)
    # the noise of features: draw 0 of the per-image seeds, through the backbone's own `noised`
    seeds = image_seeds(x, seed * 1000)
    xt = torch.empty_like(x0)
    for t in sorted(set(ts)):
        m = [i for i, tt in enumerate(ts) if tt == t]
        xt[m] = bb.noised(x0[m], t, [seeds[i] for i in m])
    tt = torch.tensor(ts, dtype=torch.long, device=dev)
    bb.ema.eval()
    eps_hat = bb.ema(xt, tt).sample.float()
    abar = bb.scheduler.alphas_cumprod.to(dev, torch.float32)[tt].view(-1, 1, 1, 1)
    x0_hat = (xt - (1 - abar) ** 0.5 * eps_hat) / abar**0.5
    size = x.shape[-2:]
    out = {"xt": xt, "eps_hat": eps_hat, "x0_hat": x0_hat}
    return {k: _crop(v, size).cpu().numpy().astype(np.float32) for k, v in out.items()}


@torch.inference_mode()
def reconstruct_batch(bb: Backbone, x: np.ndarray) -> np.ndarray:
    """An autoencoder's reconstructions of uint8 x (N, C, H, W) -> uint8 (N, C, H, W)."""
    if mode(bb) != "reconstruct":
        raise GenclfError(f"{bb.name} does not reconstruct images; only {', '.join(RECONSTRUCTS)} do")
    bb.check_images(x)
    return bb.samples(len(x), images=x)[len(x) :]


def mse01(x0: np.ndarray, x0_hat: np.ndarray) -> np.ndarray:
    """Per-image mean squared error between uint8 images, on the [0, 1] pixel scale -> (N,) float32."""
    d = (x0.astype(np.float32) - x0_hat.astype(np.float32)) / 255.0
    return (d**2).reshape(len(d), -1).mean(1).astype(np.float32)


# ------------------------------------------------------------------ cached views of a dataset split


@dataclass
class Denoised:
    """One row per image (or per t, for a strip). `xt` is None for autoencoders (no timestep)."""

    mode: str  # 'denoise' or 'reconstruct'
    x0: np.ndarray  # uint8 (N, C, H, W)
    xt: np.ndarray | None  # uint8 (N, C, H, W), clipped to [-1, 1] for display
    x0_hat: np.ndarray  # uint8 (N, C, H, W): clipped x̂0, or the reconstruction
    error: np.ndarray  # (N,) float32, mean squared error of x0_hat against x0, pixels in [0, 1]
    ts: np.ndarray | None  # (N,) timesteps, None for autoencoders
    snr: np.ndarray | None  # (N,) abar/(1-abar) at ts
    y: np.ndarray  # (N,) labels
    idx: np.ndarray  # (N,) indices into the split's source array


_FP: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MEMO: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
_MEMO_ENTRIES = 4096


def _fingerprint(bb: Backbone) -> str:
    if bb not in _FP:  # hashing the weights costs a while; once per loaded backbone object
        _FP[bb] = bb.fingerprint()
    return _FP[bb]


def _images(ds: data.Dataset, split: str, idx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src = ds.split_indices(split)  # validates the split name
    idx = np.asarray(idx, dtype=np.int64).reshape(-1)
    if len(idx) == 0:
        raise GenclfError("no images to show; select at least one point")
    if idx.min() < 0 or idx.max() >= (len(ds.y_test) if split == "test" else len(ds.y_train)):
        raise GenclfError(f"image index out of range for the {split} split of {ds.name}; pick a shown point")
    if split in ("val", "pool") and not np.isin(idx, src).all():
        raise GenclfError(f"some indices are not in the {split} split of {ds.name}")
    x, y = (ds.x_test, ds.y_test) if split == "test" else (ds.x_train, ds.y_train)
    return x[idx], y[idx], idx


def _cached(bb: Backbone, ds: data.Dataset, x: np.ndarray, ts: list[int] | None, seed: int, cache: Cache | None):
    """{'xt', 'x0_hat' (uint8), 'error' (float32)} for images x at per-image ts, through memo and disk."""
    m = mode(bb)
    if m == "none":
        raise GenclfError(nothing_to_show(bb))
    parts = {
        "version": VERSION,
        "dataset": ds.name,
        "data": ds.fingerprint,
        "backbone": bb.name,
        "weights": _fingerprint(bb),
        "config": bb.config_dict(),
        "mode": m,
        "t": ts,
        "seed": seed if m == "denoise" else None,
        "images": hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16],
    }
    key = make_key(KIND, parts)
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]

    def compute() -> dict[str, np.ndarray]:
        if m == "denoise":
            out = denoise_batch(bb, x, ts, seed)
            x0_hat = np.clip(out["x0_hat"], -1, 1)
            err = ((x0_hat - to_unit(x).numpy()) / 2) ** 2  # scored before rounding to uint8
            return {
                "xt": to_uint8(torch.from_numpy(out["xt"])),
                "x0_hat": to_uint8(torch.from_numpy(x0_hat)),
                "error": err.reshape(len(x), -1).mean(1).astype(np.float32),
            }
        rec = reconstruct_batch(bb, x)
        return {"xt": np.zeros((0,), np.uint8), "x0_hat": rec, "error": mse01(x, rec)}

    arrays = (cache or Cache()).get_or_compute(KIND, parts, compute, meta={"n": len(x)})
    _MEMO[key] = arrays
    while len(_MEMO) > _MEMO_ENTRIES:
        _MEMO.popitem(last=False)
    return arrays


def _result(bb, x, y, idx, ts, arrays) -> Denoised:
    m = mode(bb)
    ts_arr = None if ts is None else np.asarray(ts, dtype=np.int64)
    return Denoised(
        m,
        x,
        arrays["xt"] if m == "denoise" else None,
        arrays["x0_hat"],
        arrays["error"],
        ts_arr,
        None if ts is None else np.array([snr(bb, int(t)) for t in ts_arr]),
        y,
        idx,
    )


def run(dataset: str, backbone: str, split: str, idx, t: int | None, seed: int = 0, cache: Cache | None = None) -> Denoised:
    """x0, x_t and x̂0 at one t for images `idx` of a split (autoencoders: x0 and the reconstruction; t=None)."""
    ds, bb = data.load(dataset), features.backbone(backbone, dataset)
    x, y, idx = _images(ds, split, idx)
    ts = [bb.check_t(t)] * len(x) if mode(bb) == "denoise" else None
    if mode(bb) == "reconstruct":
        bb.check_t(t)  # an autoencoder given a t is a caller's mistake, said plainly
    return _result(bb, x, y, idx, ts, _cached(bb, ds, x, ts, seed, cache))


def strip(dataset: str, backbone: str, split: str, i: int, ts, seed: int = 0, cache: Cache | None = None) -> Denoised:
    """One image at every t of `ts` (one forward pass): row k is (x_t, x̂0) at ts[k]. ddpm only."""
    ds, bb = data.load(dataset), features.backbone(backbone, dataset)
    if mode(bb) != "denoise":
        raise GenclfError(f"{bb.name} has no timestep; the strip over t needs ddpm")
    ts = [bb.check_t(int(t)) for t in ts]
    if not ts:
        raise GenclfError("no timesteps for the strip; pass e.g. 0, 10, 50, 150")
    x, y, idx = _images(ds, split, [i] * len(ts))
    return _result(bb, x, y, idx, ts, _cached(bb, ds, x, ts, seed, cache))


@dataclass
class ClassError:
    classes: tuple[str, ...]
    mean: np.ndarray  # (n_classes,) mean error (NaN where the set has no image of that class)
    count: np.ndarray  # (n_classes,) images of each class scored
    n_set: int  # images in the set before subsampling
    mode: str


def error_subset(labels: np.ndarray, idx: np.ndarray, limit: int = MAX_SET) -> np.ndarray:
    """At most `limit` of `idx`, class proportions kept, fixed seed (the same set gives the same subset)."""
    idx = np.asarray(idx, dtype=np.int64)
    return idx if len(idx) <= limit else data.stratified_subset(labels, idx, limit, seed=0)


def class_error(
    dataset: str,
    backbone: str,
    split: str,
    idx,
    t: int | None,
    seed: int = 0,
    limit: int = MAX_SET,
    cache: Cache | None = None,
) -> ClassError:
    """Mean denoising (or reconstruction) error per class at t over images `idx` (a stratified subset of
    at most `limit` of them): how hard each class is for the model at that noise level."""
    ds = data.load(dataset)
    idx = np.asarray(idx, dtype=np.int64)
    labels = ds.y_test if split == "test" else ds.y_train
    sub = error_subset(labels, idx, limit) if len(idx) else idx
    d = run(dataset, backbone, split, sub, t, seed, cache)
    count = np.bincount(d.y, minlength=ds.n_classes)
    sums = np.bincount(d.y, weights=d.error.astype(np.float64), minlength=ds.n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, sums / np.maximum(count, 1), np.nan)
    return ClassError(ds.classes, mean, count, len(idx), d.mode)
