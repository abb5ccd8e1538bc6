"""Readers for on-disk dataset files: IDX (MNIST family) and CIFAR python batches (image folders: `folders`).

All readers return uint8 arrays shaped (N, C, H, W) and int64 labels, and refuse what they cannot read
faithfully (NaN or out-of-range pixels, labels outside the classes, wrongly shaped or typed arrays) with
a GenclfError. None of them unpickles arbitrary objects: CIFAR's batch files are pickles, so they are
read with an unpickler that only admits the few numpy and builtin names those files contain.
"""

from __future__ import annotations

import gzip
import io
import logging
import math
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np

from genclf.errors import GenclfError

log = logging.getLogger(__name__)

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_MAX_BYTES = 8 * 2**30  # a header announcing more is damage, not a dataset
_GZ_MAX_RATIO = 1100  # deflate inflates at most ~1032x: a header announcing more than that is a lie
_CHUNK = 1 << 20


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) as written by LeCun's MNIST distribution.

    Reads the header, then at most the bytes it announces (+1 to tell a longer file): a damaged or
    hostile .gz that inflates to far more than announced is refused without inflating the rest.
    """
    gz = path.suffix == ".gz"
    try:
        size = path.stat().st_size
        with (gzip.open if gz else open)(path, "rb") as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in _IDX_DTYPES or magic[3] == 0:
                raise GenclfError(f"{path} is not an IDX file; re-download or re-copy it")
            ndim, dtype = magic[3], np.dtype(_IDX_DTYPES[magic[2]])
            head = f.read(4 * ndim)
            if len(head) < 4 * ndim:
                raise GenclfError(f"{path} is truncated inside its header; re-download it")
            dims = struct.unpack(f">{ndim}I", head)
            want = math.prod(dims) * dtype.itemsize  # Python ints: a hostile header cannot overflow this
            room = size * _GZ_MAX_RATIO if gz else size - 4 - 4 * ndim
            if want > min(room, IDX_MAX_BYTES):
                announced = f"its header announces {'x'.join(map(str, dims))} values ({want} bytes)"
                why = (
                    f"a {size}-byte .gz cannot inflate to that"
                    if gz and want <= IDX_MAX_BYTES
                    else f"only {room} bytes follow it"
                    if want <= IDX_MAX_BYTES
                    else f"more than the {IDX_MAX_BYTES // 2**30} GB any dataset file may hold"
                )
                raise GenclfError(f"{path}: {announced} but {why}; it is truncated or damaged -- re-download it")
            buf = bytearray(want)
            got = 0
            while got < want:
                chunk = f.read(min(_CHUNK, want - got))
                if not chunk:
                    break
                buf[got : got + len(chunk)] = chunk
                got += len(chunk)
            extra = f.read(1) if got == want else b""
    except (OSError, EOFError, zlib.error) as e:  # a damaged .gz: BadGzipFile (OSError), EOFError, zlib.error
        raise GenclfError(f"{path} cannot be read ({e}); re-download or re-copy it") from None
    if got < want:
        raise GenclfError(f"{path} is truncated: it holds {got} of the {want} bytes its header announces; re-download it")
    if extra:
        raise GenclfError(f"{path} holds more than the {want} bytes its header announces; it is damaged -- re-download it")
    return np.frombuffer(buf, dtype=dtype).astype(dtype.newbyteorder("="), copy=False).reshape(dims)


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


def read_idx_pair(folder: Path, prefix: str, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, H, W) uint8 and labels in 0..n_classes-1 for `prefix` in {'train', 't10k'}."""
    ipath = find_file(folder, f"{prefix}-images-idx3-ubyte")
    lpath = find_file(folder, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(ipath), read_idx(lpath)
    if images.ndim != 3 or min(images.shape) == 0:
        what = "no images" if images.ndim == 3 else f"an array of shape {images.shape}"
        raise GenclfError(f"{ipath} holds {what}, not N images of H x W pixels; re-download it")
    if labels.ndim != 1:
        raise GenclfError(f"{lpath} holds an array of shape {labels.shape}, not one label per image; re-download it")
    if len(images) != len(labels):
        raise GenclfError(f"{folder}: {prefix} has {len(images)} images but {len(labels)} labels; re-download it")
    return as_uint8(images, ipath)[:, None], checked_labels(labels, n_classes, lpath)


def as_uint8(a: np.ndarray, where: Path | str) -> np.ndarray:
    """`a` as uint8 when every value is an integer in 0..255 (NaN, fractions and overflow are refused, not cast)."""
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind not in "iuf" or (a.size and not (np.isfinite(a).all() and (a == np.round(a)).all())):
        raise GenclfError(f"{where} holds {a.dtype} values that are not whole numbers (NaN or fractions); re-download it")
    if a.size and not 0 <= a.min() <= a.max() <= 255:
        raise GenclfError(f"{where} holds pixel values outside 0..255 ({a.min()}..{a.max()}); re-download it")
    return a.astype(np.uint8)


def checked_labels(y, n_classes: int, where: Path | str) -> np.ndarray:
    """Labels as int64, refused unless they are whole numbers in 0..n_classes-1."""
    a = np.asarray(y) if isinstance(y, (list, tuple, np.ndarray)) else None
    if a is None or a.ndim != 1 or a.dtype.kind not in "iuf" or (a.size and not np.isfinite(a).all()):
        what = ("none" if y is None else type(y).__name__) if a is None else f"{a.dtype} of shape {a.shape}"
        raise GenclfError(f"{where}: labels must be a list of class numbers, found {what}; re-download it")
    if a.size and ((a != np.round(a)).any() or not 0 <= a.min() <= a.max() < n_classes):
        raise GenclfError(f"{where}: labels outside 0..{n_classes - 1} (found {a.min()}..{a.max()}); re-download it")
    return a.astype(np.int64)


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


def cifar_images(batch: dict, where: Path | str = "CIFAR batch") -> np.ndarray:
    """(N, 3, 32, 32) uint8 from a batch's 'data' rows (R plane, G plane, B plane, each row-major)."""
    data = batch.get("data")
    if not isinstance(data, np.ndarray):
        raise GenclfError(f"{where}: 'data' is a {type(data).__name__}, not an image array; re-download it")
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) == 0:
        raise GenclfError(f"{where}: 'data' has shape {data.shape}, expected (N, 3072) with N > 0; re-download it")
    return as_uint8(data, where).reshape(-1, 3, 32, 32)


def cifar_names(meta: dict, key: str, where: Path | str) -> tuple[str, ...]:
    """Class names from a CIFAR meta file: a list of str or bytes."""
    names = meta.get(key)
    if not isinstance(names, list) or not names or not all(isinstance(n, (str, bytes)) for n in names):
        raise GenclfError(f"{where}: {key!r} is not a list of class names; re-download it")
    return tuple(n.decode("latin1") if isinstance(n, bytes) else n for n in names)


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
