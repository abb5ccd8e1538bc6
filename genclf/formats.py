"""Readers for on-disk dataset formats: IDX (MNIST family), CIFAR python batches, image folders.

All readers return uint8 arrays shaped (N, C, H, W) and int64 labels. None of them unpickles
arbitrary objects: CIFAR's batch files are pickles, so they are read with an unpickler that only
admits the few numpy and builtin names those files contain.
"""

from __future__ import annotations

import gzip
import io
import logging
import pickle
import struct
from pathlib import Path

import numpy as np

from genclf.errors import GenclfError

log = logging.getLogger(__name__)

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) as written by LeCun's MNIST distribution."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise GenclfError(f"{path} is not an IDX file; re-download or re-copy it")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(dims))
    body = raw[4 + 4 * ndim :]
    if len(body) != count * dtype.itemsize:
        raise GenclfError(f"{path} is truncated ({len(body)} of {count * dtype.itemsize} bytes); re-download it")
    return np.frombuffer(body, dtype=dtype, count=count).reshape(dims).copy()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as IDX (used by tests and by `genclf data fetch` conversions)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_idx_pair(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, H, W) and labels for `prefix` in {'train', 't10k'}."""
    images = read_idx(find_file(folder, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find_file(folder, f"{prefix}-labels-idx1-ubyte"))
    if len(images) != len(labels):
        raise GenclfError(f"{folder}: {prefix} has {len(images)} images but {len(labels)} labels; re-download it")
    return images[:, None].astype(np.uint8), labels.astype(np.int64)


class _SafeUnpickler(pickle.Unpickler):
    """Admits only what CIFAR's python batches contain: dicts, lists, bytes and numpy arrays."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_cifar_batch(path: Path) -> dict:
    """One CIFAR python batch file -> dict with str keys."""
    try:
        with open(path, "rb") as f:
            obj = _SafeUnpickler(io.BytesIO(f.read()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise GenclfError(f"{path} is not a valid CIFAR batch ({e}); re-download it") from None
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def cifar_images(batch: dict) -> np.ndarray:
    data = np.asarray(batch["data"], dtype=np.uint8)
    return data.reshape(-1, 3, 32, 32)


def write_cifar_batch(path: Path, data: np.ndarray, labels: list[int], label_key: str = "labels") -> None:
    """Write a batch in CIFAR's python format (tests use this to build real-format fixtures)."""
    obj = {b"batch_label": b"test", label_key.encode(): list(labels), b"data": data.reshape(len(data), -1)}
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def read_image_dir(folder: Path, size: int, mode: str) -> tuple[list[np.ndarray], int]:
    """All images directly under `folder`, resized to size x size in PIL `mode`.

    Returns (arrays (C, H, W) uint8, number of unreadable files skipped).
    """
    from PIL import Image, UnidentifiedImageError

    arrays, skipped = [], 0
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if path.name.startswith("."):
            continue
        try:
            with Image.open(path) as im:
                im = im.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
                a = np.asarray(im, dtype=np.uint8)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            log.warning("skipping unreadable image %s", path)
            skipped += 1
            continue
        arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    return arrays, skipped
