"""Image folders: one subfolder of images per class (+ optional `unlabeled/`), optionally under train/ and test/.

Images keep their size and colour unless `<folder>/genclf.json` says otherwise: the side is the most
common image size (its larger side when not square, kept within 8..256), and the mode is grey ("L")
when every image is grey, RGB otherwise. Files that are not images (by suffix) are ignored; images
that cannot be decoded are skipped and counted.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genclf.errors import GenclfError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MIN_SIZE, MAX_SIZE = 8, 256
MAX_PIXELS = 4096 * 4096  # larger images are skipped: decoding one would take 50+ MB
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
OPTIONS_HINT = 'e.g. {"size": 28, "mode": "L", "test_fraction": 0.2}'


@dataclass(frozen=True)
class FolderOptions:
    """`<folder>/genclf.json`, every key optional (README, "Datasets").

    size: side of the square images, 8..256 (default: inferred, see the module docstring);
    mode: "L" (grey) or "RGB" (default: "L" when every image is grey);
    test_fraction: share of each class held out for test without a train/ and test/ level (default 0.2).
    """

    size: int | None = None
    mode: str | None = None
    test_fraction: float = 0.2


def check_options(opts: FolderOptions, where: str) -> FolderOptions:
    size_ok = opts.size is None or (type(opts.size) is int and MIN_SIZE <= opts.size <= MAX_SIZE)
    frac_ok = type(opts.test_fraction) in (int, float) and 0 < opts.test_fraction < 1
    if opts.mode not in (None, "L", "RGB") or not size_ok or not frac_ok:
        raise GenclfError(
            f"{where}: mode must be L or RGB, size an integer in [{MIN_SIZE}, {MAX_SIZE}], test_fraction in (0, 1); "
            f"{OPTIONS_HINT}"
        )
    return opts


def read_folder_options(root: Path, where: str | None = None) -> FolderOptions:
    f = root / "genclf.json"
    if not f.is_file():
        return FolderOptions()
    label = f"{where}'s genclf.json" if where else str(f)
    try:
        doc = json.loads(f.read_text())
        opts = FolderOptions(**doc) if isinstance(doc, dict) else None
    except (ValueError, TypeError) as e:  # UnicodeDecodeError is a ValueError
        raise GenclfError(f"{label} is invalid ({e}); valid keys: size, mode, test_fraction, {OPTIONS_HINT}") from None
    if opts is None:
        raise GenclfError(f"{label} must hold a JSON object; valid keys: size, mode, test_fraction, {OPTIONS_HINT}")
    return check_options(opts, label)


def image_files(folder: Path) -> list[Path]:
    """Image files directly under `folder` (by suffix; hidden files and other files are not images)."""
    ok = lambda p: p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()  # noqa: E731
    return sorted(p for p in folder.iterdir() if ok(p))


def _probe(path: Path) -> tuple[tuple[int, int], bool] | None:
    """(size, grey by its mode) from the header alone; None when it is no readable image or too large to decode."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    log.warning("skipping %s: %dx%d is more than %d pixels", path, im.width, im.height, MAX_PIXELS)
                    return None
                grey = im.mode in GREY_MODES or (im.mode == "P" and _grey_palette(im))
                return im.size, grey
    except Exception as e:  # PIL reports damaged files through many types (SyntaxError: 'broken PNG file')
        log.warning("skipping unreadable image %s (%s)", path, type(e).__name__)
        return None


def _grey_palette(im) -> bool:
    pal = np.asarray(im.getpalette() or [], np.int32)[: 3 * 256].reshape(-1, 3)
    return bool(len(pal)) and bool((pal == pal[:, :1]).all())


def _decode(path: Path, size: int, grey: bool) -> np.ndarray | None:
    """(1 or 3, size, size) uint8; None when decoding fails."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im = im.convert("L" if grey else "RGB")
                if im.size != (size, size):
                    im = im.resize((size, size), Image.Resampling.BILINEAR)
                a = np.asarray(im, dtype=np.uint8)
    except Exception as e:
        log.warning("skipping unreadable image %s (%s)", path, type(e).__name__)
        return None
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def _others(short: list[str]) -> str:
    return f" (and {len(short) - 1} more class(es))" if len(short) > 1 else ""


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


def read_image_folder(root: Path, seed: int = 0, where: str | None = None) -> ImageFolder:
    """One subfolder per class (+ optional unlabeled/), optionally under train/ and test/.

    Unreadable images are skipped and counted; class folders with no usable images are dropped.
    Without train/ and test/, a seeded per-class holdout (`test_fraction`) is the test split, so every
    class needs at least 2 images; with them, at least one in each. `where` names the folder in
    errors (an upload passes "the zip": its temp folder is gone by the time the user reads them).
    """
    opts = read_folder_options(root, where)
    where = where or str(root)
    has_split = (root / "train").is_dir() and (root / "test").is_dir()
    tops = {"train": root / "train", "test": root / "test"} if has_split else {"all": root}
    reserved = ("unlabeled", "train", "test")
    names = sorted({p.name for t in tops.values() for p in t.iterdir() if p.is_dir() and p.name not in reserved})
    names = [n for n in names if not n.startswith(".")]  # .ipynb_checkpoints and friends are not classes
    # (split key, class index or -1 for unlabeled, path)
    files = [
        (k, c, p)
        for k, top in tops.items()
        for c, n in [*enumerate(names), (-1, "unlabeled")]
        if (top / n).is_dir()
        for p in image_files(top / n)
    ]
    probes = [_probe(p) for _, _, p in files]
    sizes = Counter(pr[0] for pr in probes if pr)
    size = opts.size or (min(MAX_SIZE, max(MIN_SIZE, *sizes.most_common(1)[0][0])) if sizes else MIN_SIZE)
    arrays, keep = [], []
    for (k, c, p), pr in zip(files, probes, strict=True):
        a = None if pr is None else _decode(p, size, opts.mode == "L" or (opts.mode is None and pr[1]))
        if a is not None:
            arrays.append(a)
            keep.append((k, c))
    skipped = len(files) - len(keep)
    grey = opts.mode == "L" or (opts.mode is None and all(len(a) == 1 or (a == a[:1]).all() for a in arrays))
    arrays = [(a[:1] if grey else (a if len(a) == 3 else np.repeat(a, 3, 0))) for a in arrays]
    shape = (1 if grey else 3, size, size)

    def stack(key: str) -> tuple[np.ndarray, np.ndarray]:
        rows = [i for i, (k, c) in enumerate(keep) if k == key and c >= 0]
        x = np.stack([arrays[i] for i in rows]) if rows else np.zeros((0, *shape), np.uint8)
        return x, np.asarray([keep[i][1] for i in rows], np.int64)

    arr = {k: stack(k) for k in tops}
    counts = {k: np.bincount(y, minlength=len(names)) for k, (_, y) in arr.items()}
    total = sum(counts.values())
    used = [i for i in range(len(names)) if total[i] > 0]  # empty class folders are dropped
    if len(used) < 2:
        raise GenclfError(
            f"{where}: found {int(total.sum())} usable images in {len(used)} class folder(s) ({skipped} unreadable "
            "image(s) skipped); need at least two subfolders with images, one per class"
        )
    if not has_split and (short := [names[i] for i in used if total[i] < 2]):
        raise GenclfError(
            f"{where}: class {short[0]!r} has only 1 usable image{_others(short)}; every class needs at least 2 (one to "
            "train on, one for the test split): add images to it or remove its folder"
        )
    for k in ("train", "test") if has_split else ():
        if short := [names[i] for i in used if counts[k][i] == 0]:
            raise GenclfError(
                f"{where}: class {short[0]!r} has no usable image in {k}/{_others(short)}; every class needs at least "
                f"one in train/ and one in test/: add images to {k}/{short[0]}/ or remove the class"
            )
    remap = np.full(len(names), -1)
    remap[used] = np.arange(len(used))
    arr = {k: (x, remap[y]) for k, (x, y) in arr.items()}
    if has_split:
        (xtr, ytr), (xte, yte) = arr["train"], arr["test"]
    else:
        x, y = arr["all"]
        te = holdout(y, opts.test_fraction, seed)
        tr = np.setdiff1d(np.arange(len(y)), te)
        xtr, ytr, xte, yte = x[tr], y[tr], x[te], y[te]
    unl = [arrays[i] for i, (_, c) in enumerate(keep) if c < 0]
    xu = np.stack(unl) if unl else None
    return ImageFolder(tuple(names[i] for i in used), xtr, ytr, xte, yte, xu, skipped)
