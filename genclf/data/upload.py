"""Dataset upload: a zip of class folders unpacked into data/uploads/<name> (the Datasets page calls import_zip).

Nothing is trusted before it is checked, and nothing is held whole in memory:
- the zip's directory is sized from its end record before `zipfile` parses it (MAX_DIRECTORY);
- every member path is checked before anything is written (no absolute paths, '..', symlinks, names
  longer than the file system allows, encryption);
- declared sizes are capped per member (MEMBER_LIMIT) and in total (UNPACKED_LIMIT), and large members
  may not claim more than RATIO_LIMIT times their compressed size (a zip bomb) -- all before inflating;
- members are streamed to disk in chunks, so a member can never inflate past its declared size in memory;
- the folder appears under its name only once it loads as a dataset; a damaged member, a full disk or
  any other failure leaves nothing behind.
Peak memory of an upload stays within ~200 MB above the server's baseline for any zip (bench/faults.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import json
import os
import re
import shutil
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from genclf import data
from genclf.data.folders import IMAGE_SUFFIXES, MAX_PIXELS, FolderOptions, check_options, read_folder_options
from genclf.errors import GenclfError

UPLOAD_LIMIT = 200 * 2**20  # compressed bytes
UNPACKED_LIMIT = 2 * 2**30  # all members, as declared (and enforced while streaming)
MEMBER_LIMIT = 32 * 2**20  # one file: images are at most a few MB
RATIO_LIMIT = 100  # members over 1 MB may not inflate more than this (PNG/JPEG barely compress)
MAX_DIRECTORY = 8 * 2**20  # bytes of central directory (about 100k files); zipfile holds ~500 B per entry
NAME_MAX = 255  # bytes in one path component (Linux)
_CHUNK = 1 << 20
IMAGE_EXT = IMAGE_SUFFIXES
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@dataclass
class ImportReport:
    dataset: str
    folder: Path
    counts: dict[str, int]
    bad: list[tuple[str, str]] = field(default_factory=list)  # (path in zip, why it was skipped)


def _parts(name: str) -> list[str]:
    """Path components of a zip member; refuses absolute paths, '..' (zip-slip) and over-long names."""
    n = name.replace("\\", "/")
    if n.startswith("/") or re.match(r"^[A-Za-z]:", n):
        raise GenclfError(f"the zip holds an absolute path ({name!r}); zip the class folders with relative paths")
    parts = [p for p in n.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise GenclfError(f"the zip holds a path that leaves its folder ({name!r}); rebuild the zip without '..'")
    if any(len(os.fsencode(p)) > NAME_MAX for p in parts):
        short = name if len(name) <= 60 else name[:57] + "..."
        raise GenclfError(f"the zip holds a name longer than {NAME_MAX} bytes ({short!r}); shorten it and zip again")
    return parts


def _directory_size(f: BinaryIO) -> int | None:
    """Bytes of the central directory, from the end record (zip64 too); None when there is no end record."""
    end = f.seek(0, 2)
    f.seek(max(0, end - 22 - 65535))
    tail = f.read()
    i = tail.rfind(b"PK\x05\x06")
    if i < 0 or len(tail) - i < 22:
        return None
    (size,) = struct.unpack("<I", tail[i + 12 : i + 16])
    if size == 0xFFFFFFFF and i >= 20 and tail[i - 20 : i - 16] == b"PK\x06\x07":  # zip64 locator
        (off,) = struct.unpack("<Q", tail[i - 12 : i - 4])
        f.seek(off)
        rec = f.read(56)
        if rec[:4] == b"PK\x06\x06":
            (size,) = struct.unpack("<Q", rec[40:48])
    f.seek(0)
    return size


def _open(src: bytes | str | Path | BinaryIO, max_bytes: int) -> BinaryIO:
    """A seekable binary file over `src` no larger than `max_bytes`."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        f = io.BytesIO(src)  # shares the buffer: no copy
    elif isinstance(src, (str, Path)):
        f = open(src, "rb")  # noqa: SIM115 -- closed by import_zip
    else:
        f = src
        try:
            f.seek(0)
        except (OSError, AttributeError, io.UnsupportedOperation):
            f = io.BytesIO(f.read(max_bytes + 1))  # not seekable: bounded read
    size = f.seek(0, 2)
    f.seek(0)
    if size > max_bytes:
        raise GenclfError(f"the zip is larger than {max_bytes // 2**20} MB; split it or copy the folder to the server instead")
    return f


def _check_member(info: zipfile.ZipInfo) -> None:
    """Refuse a member before inflating it: encrypted, too large, or claiming a bomb-like ratio."""
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        raise GenclfError(f"the zip holds a symbolic link ({info.filename!r}); zip real files only")
    if info.flag_bits & 0x1:
        raise GenclfError(f"the zip member {info.filename!r} is encrypted; zip the images without a password")
    if info.file_size > MEMBER_LIMIT:
        raise GenclfError(
            f"the zip member {info.filename!r} unpacks to {info.file_size / 2**20:.0f} MB; files may be at most "
            f"{MEMBER_LIMIT // 2**20} MB (resize or re-encode large images as PNG or JPEG)"
        )
    if info.file_size > 2**20 and info.file_size > RATIO_LIMIT * max(info.compress_size, 1):
        raise GenclfError(
            f"the zip member {info.filename!r} inflates {info.file_size // max(info.compress_size, 1)}x (more than "
            f"{RATIO_LIMIT}x for a file over 1 MB: a zip bomb, not images); zip the image files themselves"
        )


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: Path) -> None:
    """Stream one member to `out` in chunks, never past its declared size; a damaged member is a GenclfError."""
    out.parent.mkdir(parents=True, exist_ok=True)
    done = 0
    try:
        with zf.open(info) as src, open(out, "wb") as dst:
            while chunk := src.read(_CHUNK):
                done += len(chunk)
                if done > min(info.file_size, MEMBER_LIMIT):  # zipfile stops at the declared size; belt and braces
                    raise GenclfError(f"the zip member {info.filename!r} inflates past its declared size; rebuild the zip")
                dst.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
        raise GenclfError(
            f"the zip member {info.filename!r} is damaged or uses an unsupported compression ({e}); "
            "re-create the zip (plain deflate) and upload it again"
        ) from None


def _sweep(root: Path) -> None:
    """Remove temp folders of uploads whose process died (the pid is in the name)."""
    for d in root.glob(".tmp-*"):
        pid = d.name.rsplit("-", 2)[-2] if d.name.count("-") >= 3 else ""
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def import_zip(
    src: bytes | str | Path | BinaryIO, name: str, max_bytes: int = UPLOAD_LIMIT, options: dict | None = None
) -> ImportReport:
    """Unpack a zip of class folders (<class>/<image>, optional unlabeled/ or train/ and test/) into data/uploads/<name>.

    `options` (size, mode, test_fraction; README "Datasets") are written to the dataset's genclf.json,
    over any genclf.json in the zip; None values mean "infer from the images".
    """
    if not _NAME.match(name):
        raise GenclfError(f"dataset name {name!r} is not allowed; use letters, digits, '-' and '_' (at most 48)")
    opts = {k: v for k, v in (options or {}).items() if v is not None}
    try:
        check_options(FolderOptions(**opts), "upload options")
    except TypeError:
        raise GenclfError(f"unknown upload option(s) {sorted(opts)}; valid: size, mode, test_fraction") from None
    root = data.data_dir() / "uploads"
    dest = root / name
    if dest.exists():
        raise GenclfError(f"a dataset named {name!r} already exists in {root}; pick another name (uploads never overwrite)")
    f = _open(src, max_bytes)
    try:
        with contextlib.ExitStack() as stack:
            if f is not src:
                stack.callback(f.close)
            return _import(f, name, root, dest, opts)
    except OSError as e:
        if e.errno in _DISK_FULL:
            why = f"the disk holding {root} is full ({e.strerror}); free space and upload again"
        else:
            why = f"cannot unpack the zip into {root} ({e.strerror or e}); check that folder"
        raise GenclfError(f"{why} (nothing was added)") from None


def _dropped(bad: list[tuple[str, str]]) -> str:
    """'; while unpacking, 2 unreadable images were removed (cats/a.png, cats/b.png) ...' for an error message."""
    if not bad:
        return ""
    plural = {"unreadable image": "unreadable images", "not an image file": "files that are not images",
              "not inside a class folder": "files outside a class folder"}  # fmt: skip
    kinds: dict[str, list[str]] = {}
    for path, why in bad:
        kinds.setdefault(why.split(" (")[0], []).append(path)
    listed = [f"{len(ps)} {why if len(ps) == 1 else plural.get(why, why)} ({', '.join(ps[:3])}{', …' if len(ps) > 3 else ''})"
              for why, ps in kinds.items()]  # fmt: skip
    return "; skipped while unpacking the zip: " + "; ".join(listed)


def _import(f: BinaryIO, name: str, root: Path, dest: Path, opts: dict) -> ImportReport:
    from PIL import Image

    cd = _directory_size(f)
    if cd is not None and cd > MAX_DIRECTORY:
        raise GenclfError(
            f"the zip's directory is {cd / 2**20:.0f} MB (more than {MAX_DIRECTORY // 2**20} MB, about 100k files); "
            "upload fewer files, or copy the folder to the server and use folder:PATH"
        )
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, ValueError, EOFError, struct.error):
        raise GenclfError(
            "that file is not a zip archive (or it is damaged); zip a folder holding one subfolder of images per class"
        ) from None
    members = [i for i in zf.infolist() if not i.is_dir()]
    paths = [_parts(i.filename) for i in members]  # validates every path before anything is written
    hidden = lambda p: any(c.startswith(".") or c == "__MACOSX" for c in p)  # noqa: E731
    used = [(i, p) for i, p in zip(members, paths, strict=True) if not hidden(p)]
    for info, _ in used:
        _check_member(info)
    if sum(i.file_size for i, _ in used) > UNPACKED_LIMIT:
        raise GenclfError(f"the zip unpacks to more than {UNPACKED_LIMIT // 2**30} GB; upload a smaller dataset")
    visible = [p for _, p in used if p[-1] != "genclf.json"]
    strip = len({p[0] for p in visible}) == 1 and any(len(p) > 2 for p in visible)  # one wrapper folder
    bad: list[tuple[str, str]] = []
    broken: list[Path] = []
    root.mkdir(parents=True, exist_ok=True)
    _sweep(root)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-{os.getpid()}-", dir=root))
    try:
        for info, p in used:
            p = p[1:] if strip and len(p) > 1 else p
            if p == ["genclf.json"]:
                _extract(zf, info, tmp / "genclf.json")
                continue
            ok_depth = (len(p) == 2 and p[0] not in ("train", "test")) or (len(p) == 3 and p[0] in ("train", "test"))
            if not ok_depth:
                bad.append((info.filename, "not inside a class folder"))
                continue
            if Path(p[-1]).suffix.lower() not in IMAGE_SUFFIXES:
                bad.append((info.filename, "not an image file"))
                continue
            out = tmp.joinpath(*p)
            _extract(zf, info, out)
            try:
                with Image.open(out) as im:
                    if im.width * im.height > MAX_PIXELS:
                        raise ValueError(f"{im.width}x{im.height} pixels")
                    im.verify()
            except Exception as e:  # PIL raises many types for broken files
                broken.append(out)  # kept until the folder is read, which counts it as skipped too
                bad.append((info.filename, f"unreadable image ({type(e).__name__})"))
        if opts:  # the form's choices win over the zip's genclf.json
            base = dataclasses.asdict(read_folder_options(tmp, "the zip"))
            (tmp / "genclf.json").write_text(json.dumps({**base, **opts}) + "\n")
        try:
            ds = data.load_folder(tmp, f"folder:{dest}", where="the zip")
        except GenclfError as e:  # what was dropped while unpacking is often the very reason
            raise GenclfError(f"{e}{_dropped(bad)}") from None
        for out in broken:  # the dataset keeps only the images it can read
            out.unlink()
        counts = dict(zip(ds.classes, np.bincount(np.r_[ds.y_train, ds.y_test], minlength=ds.n_classes).tolist()))
        if dest.exists():
            raise GenclfError(f"a dataset named {name!r} appeared meanwhile; pick another name")
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ImportReport(f"folder:{dest}", dest, counts, bad)
