"""Readers for on-disk dataset formats: IDX (MNIST family), CIFAR python batches, image folders.

All readers return uint8 arrays shaped (N, C, H, W) and int64 labels. None of them unpickles
arbitrary objects: CIFAR's batch files are pickles, so they are read with an unpickler that only
admits the few numpy and builtin names those files contain.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genclf.errors import GenclfError

log = logging.getLogger(__name__)

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) as written by LeCun's MNIST distribution."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # a damaged .gz raises BadGzipFile (OSError) or EOFError
        raise GenclfError(f"{path} cannot be read ({e}); re-download or re-copy it") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or len(raw) < 4 + 4 * raw[3]:
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
    """Admits only what CIFAR's python batches contain: dicts, lists, bytes and numpy arrays.

    The downloads are Python 2 pickles (`numpy.core.multiarray._reconstruct`); a Python 3
    protocol-2 re-pickle spells bytes as `_codecs.encode(str, 'latin1')`, a pure data transform.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("builtins", "bytes"),
        ("__builtin__", "bytes"),  # protocol 2 spells builtins the Python 2 way
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
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise GenclfError(f"{path} is not a valid CIFAR batch ({e}); re-download it") from None
    if not isinstance(obj, dict):
        raise GenclfError(f"{path} is not a valid CIFAR batch (holds a {type(obj).__name__}, not a dict); re-download it")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def cifar_images(batch: dict) -> np.ndarray:
    """(N, 3, 32, 32) uint8 from a batch's 'data' rows (R plane, G plane, B plane, each row-major)."""
    data = np.asarray(batch["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise GenclfError(f"CIFAR batch data has shape {data.shape}, expected (N, 3072); re-download it")
    return data.reshape(-1, 3, 32, 32)


def py2_pickle(obj) -> bytes:
    """`obj` as Python 2 cPickle protocol 2 bytes, the exact format of the CIFAR downloads.

    Supports dict, list, int, str (written as Python 2 8-bit strings) and uint8 numpy arrays.
    """

    def s(b: bytes) -> bytes:  # SHORT_BINSTRING / BINSTRING
        return (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<I", len(b))) + b

    def i(n: int) -> bytes:  # BININT
        return b"J" + struct.pack("<i", n)

    def enc(o) -> bytes:
        if isinstance(o, dict):  # EMPTY_DICT MARK ... SETITEMS
            return b"}(" + b"".join(enc(k) + enc(v) for k, v in o.items()) + b"u"
        if isinstance(o, list):  # EMPTY_LIST MARK ... APPENDS
            return b"](" + b"".join(enc(v) for v in o) + b"e"
        if isinstance(o, (int, np.integer)):
            return i(int(o))
        if isinstance(o, (str, bytes)):
            return s(o.encode() if isinstance(o, str) else o)
        if isinstance(o, np.ndarray):
            dtype = (
                b"cnumpy\ndtype\n"
                + s(b"u1")
                + i(0)
                + i(1)
                + b"\x87R("
                + i(3)
                + s(b"|")
                + b"NNN"
                + i(-1)
                + i(-1)
                + i(0)
                + b"tb"
            )
            shape = b"(" + b"".join(i(d) for d in o.shape) + b"t"
            head = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + i(0) + b"\x85" + s(b"b") + b"\x87R"
            data = np.ascontiguousarray(o, dtype=np.uint8).tobytes()
            return head + b"(" + i(1) + shape + dtype + b"\x89" + s(data) + b"tb"
        raise TypeError(f"py2_pickle cannot encode {type(o).__name__}")

    return b"\x80\x02" + enc(obj) + b"."


def write_cifar_batch(path: Path, data: np.ndarray, labels: list[int], label_key: str = "labels") -> None:
    """Write a batch the way the CIFAR python downloads are written (tests build real-format fixtures).

    `data`: (N, 3, 32, 32) or (N, 3072) uint8; `label_key`: 'labels' (CIFAR-10) or 'fine_labels' (CIFAR-100).
    """
    rows = np.asarray(data, np.uint8).reshape(len(data), -1)
    obj = {"data": rows, label_key: [int(v) for v in labels], "batch_label": "genclf fixture"}
    if label_key == "fine_labels":
        obj["coarse_labels"] = [int(v) // 5 for v in labels]
    obj["filenames"] = [f"img_{i:05d}.png" for i in range(len(rows))]
    Path(path).write_bytes(py2_pickle(obj))


def write_cifar_meta(path: Path, names: list[str], key: str = "label_names") -> None:
    """`batches.meta` (key 'label_names') or CIFAR-100's `meta` (key 'fine_label_names')."""
    Path(path).write_bytes(py2_pickle({key: list(names)}))


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
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
            # PIL reports damaged files through all of these (SyntaxError: 'broken PNG file')
            log.warning("skipping unreadable image %s", path)
            skipped += 1
            continue
        arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    return arrays, skipped


# ---------------------------------------------------------------- image folders


@dataclass(frozen=True)
class FolderOptions:
    """Read from `<folder>/genclf.json` when present, e.g. {"size": 28, "mode": "L", "test_fraction": 0.2}."""

    size: int = 32
    mode: str = "RGB"
    test_fraction: float = 0.2  # per class, when the folder has no train/ and test/ level


def read_folder_options(root: Path) -> FolderOptions:
    f = root / "genclf.json"
    if not f.is_file():
        return FolderOptions()
    hint = 'e.g. {"size": 28, "mode": "L", "test_fraction": 0.2}'
    try:
        opts = FolderOptions(**json.loads(f.read_text()))
    except (ValueError, TypeError) as e:
        raise GenclfError(f"{f} is invalid ({e}); valid keys: size, mode, test_fraction, {hint}") from None
    size_ok = isinstance(opts.size, int) and 8 <= opts.size <= 256
    frac_ok = isinstance(opts.test_fraction, (int, float)) and 0 < opts.test_fraction < 1
    if opts.mode not in ("L", "RGB") or not size_ok or not frac_ok:
        raise GenclfError(f"{f}: mode must be L or RGB, size an integer in [8, 256], test_fraction in (0, 1); {hint}")
    return opts


def holdout(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Seeded per-class test indices: about `fraction` of each class, at least one, never all of it."""
    rng = np.random.default_rng(seed)
    out = [np.zeros(0, np.int64)]
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        n = 0 if len(idx) < 2 else min(len(idx) - 1, max(1, round(len(idx) * fraction)))
        out.append(rng.choice(idx, size=n, replace=False))
    return np.sort(np.concatenate(out)).astype(np.int64)


@dataclass(frozen=True)
class ImageFolder:
    classes: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_unlabeled: np.ndarray | None
    skipped: int


def read_image_folder(root: Path, seed: int = 0) -> ImageFolder:
    """One subfolder per class (+ optional unlabeled/), optionally under train/ and test/.

    Images are converted to the size and mode of `genclf.json`; unreadable files are skipped and
    counted; class folders with no usable (train) images are dropped. Without train/ and test/, a
    seeded per-class holdout (`test_fraction`) is the test split.
    """
    opts = read_folder_options(root)
    has_split = (root / "train").is_dir() and (root / "test").is_dir()
    tops = {"train": root / "train", "test": root / "test"} if has_split else {"all": root}
    reserved = ("unlabeled", "train", "test")
    names = sorted({p.name for t in tops.values() for p in t.iterdir() if p.is_dir() and p.name not in reserved})
    names = [n for n in names if not n.startswith(".")]  # .ipynb_checkpoints and friends are not classes
    xs: dict[str, list] = {k: [] for k in tops}
    ys: dict[str, list] = {k: [] for k in tops}
    skipped, unlabeled = 0, []
    for key, top in tops.items():
        for c, cname in enumerate(names):
            if (top / cname).is_dir():
                arrays, bad = read_image_dir(top / cname, opts.size, opts.mode)
                xs[key] += arrays
                ys[key] += [c] * len(arrays)
                skipped += bad
        if (top / "unlabeled").is_dir():
            arrays, bad = read_image_dir(top / "unlabeled", opts.size, opts.mode)
            unlabeled += arrays
            skipped += bad
    counts = np.bincount(np.asarray(ys["train" if has_split else "all"], np.int64), minlength=len(names))
    used = [n for n, k in zip(names, counts, strict=True) if k > 0]
    if len(used) < 2:
        raise GenclfError(
            f"{root}: found {int(counts.sum())} usable training images in {len(used)} class folder(s) ({skipped} unreadable "
            "file(s) skipped); need at least two subfolders with images, one per class"
        )
    remap = {names.index(n): i for i, n in enumerate(used)}  # empty class folders are dropped
    shape = (1 if opts.mode == "L" else 3, opts.size, opts.size)
    arr = {}
    for k in tops:
        keep = [i for i, y in enumerate(ys[k]) if y in remap]
        x = np.stack([xs[k][i] for i in keep]) if keep else np.zeros((0, *shape), np.uint8)
        arr[k] = (x, np.asarray([remap[ys[k][i]] for i in keep], np.int64))
    if has_split:
        (xtr, ytr), (xte, yte) = arr["train"], arr["test"]
        if len(yte) == 0:
            raise GenclfError(f"{root / 'test'} has no usable images of the classes in {root / 'train'}; add some")
    else:
        x, y = arr["all"]
        te = holdout(y, opts.test_fraction, seed)
        tr = np.setdiff1d(np.arange(len(y)), te)
        xtr, ytr, xte, yte = x[tr], y[tr], x[te], y[te]
    xu = np.stack(unlabeled) if unlabeled else None
    return ImageFolder(tuple(used), xtr, ytr, xte, yte, xu, skipped)
