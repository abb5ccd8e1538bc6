"""Dataset upload: a zip of class folders unpacked into data/uploads/<name> (the Datasets page calls import_zip).

Every member path is checked before anything is written (no absolute paths, '..' or symlinks), sizes are capped,
and the folder appears under its name only once it loads as a dataset.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genclf import data
from genclf.errors import GenclfError

UPLOAD_LIMIT = 200 * 2**20  # compressed bytes
UNPACKED_LIMIT = 2 * 2**30
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")


@dataclass
class ImportReport:
    dataset: str
    folder: Path
    counts: dict[str, int]
    bad: list[tuple[str, str]] = field(default_factory=list)  # (path in zip, why it was skipped)


def _parts(name: str) -> list[str]:
    """Path components of a zip member; refuses absolute paths and '..' (zip-slip)."""
    n = name.replace("\\", "/")
    if n.startswith("/") or re.match(r"^[A-Za-z]:", n):
        raise GenclfError(f"the zip holds an absolute path ({name!r}); zip the class folders with relative paths")
    parts = [p for p in n.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise GenclfError(f"the zip holds a path that leaves its folder ({name!r}); rebuild the zip without '..'")
    return parts


def import_zip(src: bytes | io.BufferedIOBase, name: str, max_bytes: int = UPLOAD_LIMIT) -> ImportReport:
    """Unpack a zip of class folders (<class>/<image>, optional unlabeled/ or train/ and test/) into data/uploads/<name>."""
    from PIL import Image

    if not _NAME.match(name):
        raise GenclfError(f"dataset name {name!r} is not allowed; use letters, digits, '-' and '_' (at most 48)")
    root = data.data_dir() / "uploads"
    dest = root / name
    if dest.exists():
        raise GenclfError(f"a dataset named {name!r} already exists in {root}; pick another name (uploads never overwrite)")
    raw = src if isinstance(src, bytes) else src.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise GenclfError(f"the zip is larger than {max_bytes // 2**20} MB; split it or copy the folder to the server instead")
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise GenclfError("that file is not a zip archive; zip a folder holding one subfolder of images per class") from None
    members = [i for i in zf.infolist() if not i.is_dir()]
    paths = [_parts(i.filename) for i in members]  # validates every path before anything is written
    for i in members:
        if (i.external_attr >> 16) & 0o170000 == 0o120000:
            raise GenclfError(f"the zip holds a symbolic link ({i.filename!r}); zip real files only")
    if sum(i.file_size for i in members) > UNPACKED_LIMIT:
        raise GenclfError(f"the zip unpacks to more than {UNPACKED_LIMIT // 2**30} GB; upload a smaller dataset")
    hidden = lambda p: any(c.startswith(".") or c == "__MACOSX" for c in p)
    visible = [p for p in paths if not hidden(p) and p[-1] != "genclf.json"]
    tops = {p[0] for p in visible}
    strip = len(tops) == 1 and any(len(p) > 2 for p in visible)  # one wrapper folder around the class folders
    bad: list[tuple[str, str]] = []
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
    try:
        for info, p in zip(members, paths):
            if hidden(p):
                continue
            p = p[1:] if strip and len(p) > 1 else p
            if p == ["genclf.json"]:
                (tmp / "genclf.json").write_bytes(zf.read(info))
                continue
            ok_depth = (len(p) == 2 and p[0] not in ("train", "test")) or (len(p) == 3 and p[0] in ("train", "test"))
            if not ok_depth:
                bad.append((info.filename, "not inside a class folder"))
                continue
            if Path(p[-1]).suffix.lower() not in IMAGE_EXT:
                bad.append((info.filename, "not an image file"))
                continue
            blob = zf.read(info)
            try:
                Image.open(io.BytesIO(blob)).verify()
            except Exception as e:  # PIL raises many types for broken files
                bad.append((info.filename, f"unreadable image ({type(e).__name__})"))
                continue
            out = tmp.joinpath(*p)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(blob)
        ds = data.load_folder(tmp, f"folder:{dest}")
        counts = dict(zip(ds.classes, np.bincount(np.r_[ds.y_train, ds.y_test], minlength=ds.n_classes).tolist()))
        if dest.exists():
            raise GenclfError(f"a dataset named {name!r} appeared meanwhile; pick another name")
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ImportReport(f"folder:{dest}", dest, counts, bad)
