"""Small image helpers shared by the CLI and the dashboard: grids, thumbnails, PNG bytes."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np


def to_hwc(img: np.ndarray) -> np.ndarray:
    """(C, H, W) uint8 -> (H, W) for grey or (H, W, 3) for RGB."""
    return img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)


def grid(images: np.ndarray, cols: int = 8, pad: int = 2, scale: int = 1) -> np.ndarray:
    """uint8 (N, C, H, W) -> one uint8 (H', W') or (H', W', 3) mosaic, `cols` per row."""
    n, c, h, w = images.shape
    cols = max(1, min(cols, n))
    rows = max(1, -(-n // cols))
    out = np.full((c, rows * (h + pad) + pad, cols * (w + pad) + pad), 255, np.uint8)
    for i, im in enumerate(images):
        r, k = divmod(i, cols)
        out[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + k * (w + pad) : pad + k * (w + pad) + w] = im
    out = to_hwc(out)
    if scale > 1:
        out = out.repeat(scale, 0).repeat(scale, 1)
    return out


def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def save_png(path: Path, array: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(array))
    return path


def data_uri(img: np.ndarray, scale: int = 2) -> str:
    """(C, H, W) uint8 -> 'data:image/png;base64,...' for hover thumbnails and tables."""
    a = to_hwc(img)
    if scale > 1:
        a = a.repeat(scale, 0).repeat(scale, 1)
    return "data:image/png;base64," + base64.b64encode(png_bytes(a)).decode()
