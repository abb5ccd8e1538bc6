"""Content-addressed disk store for heavy artifacts (features, projections, sweeps).

An entry lives at `<root>/<kind>/<key[:2]>/<key>/` with `data.safetensors` (named numpy arrays) and
`meta.json` (the key parts, shapes, the data file's sha256, timings). The key is the sha256 of the
canonical JSON of {kind, format version, code version, *parts} (parts carry the data fingerprint,
config, seed, t, blocks...).

Guarantees:
- writes go to a temp dir in the same parent and are published with `os.replace`: a reader sees a
  whole entry or none;
- a per-key `fcntl.flock` makes concurrent processes compute a missing entry once;
- an entry whose checksum fails is deleted and recomputed, never served;
- a killed writer leaves only a `.tmp-<key>-<pid>-*` dir (or, killed while discarding an entry, a
  `.trash-<key>-<pid>-*` dir), which is never listed or read; the first write of each process sweeps
  every such leftover whose writer is gone, and `genclf cache sweep` does so on demand;
- a full disk (or an unwritable cache dir) is one GenclfError: the temp dir is removed and every
  existing entry is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from genclf.errors import GenclfError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CODE_VERSION = "0.1"  # bump when a change alters what any artifact would contain
KINDS = ("features", "projection", "sweep", "denoise")  # what genclf stores (`genclf cache ls --kind KIND`)
STALE_TMP_S = 3600  # a temp dir this old is a leftover even if its pid was reused (writes take seconds)
_SWEPT: set[str] = set()  # stores already swept by this process


def cache_root() -> Path:
    return Path(os.environ.get("GENCLF_CACHE_DIR", "cache"))


def canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, (tuple, set, frozenset)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serializable in a cache key: {type(o).__name__}")


def make_key(kind: str, parts: dict) -> str:
    doc = {"kind": kind, "format": FORMAT_VERSION, "code": CODE_VERSION, "parts": parts}
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Entry:
    kind: str
    key: str
    path: Path
    meta: dict

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())


class Cache:
    """The store. `get_or_compute` is the one call most code needs."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else cache_root()
        self._verified: dict[str, tuple] = {}  # path -> (inode, mtime, size, sha256) already checksummed

    def entry_dir(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / key

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        d = self.root / ".locks"
        with self._disk_errors("a lock file"):
            d.mkdir(parents=True, exist_ok=True)
            f = open(d / f"{key}.lock", "w")  # noqa: SIM115 -- closed below, after the errors are mapped
        with f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def read(self, kind: str, key: str, *, discard_corrupt: bool = True) -> dict[str, np.ndarray] | None:
        """The arrays of a valid entry, or None (absent or corrupt; a corrupt one is removed unless told not to)."""
        d = self.entry_dir(kind, key)
        data, meta_file = d / "data.safetensors", d / "meta.json"
        if not (data.is_file() and meta_file.is_file()):
            return None
        try:
            meta = json.loads(meta_file.read_text())
            st = data.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size, meta["sha256"])
            if self._verified.get(str(data)) != stamp:
                if _sha256_file(data) != meta["sha256"]:
                    raise ValueError("checksum mismatch")
                self._verified[str(data)] = stamp
            return load_file(str(data))
        except Exception as e:  # any damage means recompute
            if discard_corrupt:
                log.warning("cache entry %s/%s is corrupt (%s); recomputing", kind, key[:12], e)
                self._discard(d)
            return None

    @contextlib.contextmanager
    def _disk_errors(self, what: str) -> Iterator[None]:
        """A full disk or an unwritable store becomes one GenclfError with the remedy."""
        try:
            yield
        except (OSError, SafetensorError) as exc:
            e = exc if isinstance(exc, OSError) else _os_error(exc)
            if e is None:
                raise
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise GenclfError(
                    f"the disk holding the cache {self.root} is full ({e.strerror}) while writing {what}; free space "
                    "(`genclf cache du`, `genclf cache clear --kind KIND --yes`) or set GENCLF_CACHE_DIR to a larger "
                    "disk, then rerun (no cached entry was lost)"
                ) from None
            # ENOENT: a folder that takes no new entries, such as /proc
            if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.ENOENT):
                raise GenclfError(
                    f"cannot write the cache {self.root} ({e.strerror}); make it writable or set GENCLF_CACHE_DIR "
                    "to a writable folder"
                ) from None
            raise

    def write(self, kind: str, key: str, arrays: dict[str, np.ndarray], meta: dict) -> Path:
        size = sum(np.asarray(v).nbytes for v in arrays.values())
        with self._disk_errors(f"a {kind} entry of {size / 1e6:.1f} MB"):
            return self._write(kind, key, arrays, meta)

    def _write(self, kind: str, key: str, arrays: dict[str, np.ndarray], meta: dict) -> Path:
        final = self.entry_dir(kind, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        if str(self.root) not in _SWEPT:  # once per process: leftovers of writers killed earlier
            _SWEPT.add(str(self.root))
            self.sweep()
        # the pid in the name tells an orphan (its writer died) from a write in progress
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key[:12]}-{os.getpid()}-", dir=final.parent))
        try:
            data = tmp / "data.safetensors"
            save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(data))
            meta = {
                **meta,
                "kind": kind,
                "key": key,
                "sha256": _sha256_file(data),
                "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "format": FORMAT_VERSION,
                "code": CODE_VERSION,
            }
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=_json_default))
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            if final.exists():
                self._discard(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def get_or_compute(
        self,
        kind: str,
        parts: dict,
        compute: Callable[[], dict[str, np.ndarray]],
        meta: dict | None = None,
    ) -> dict[str, np.ndarray]:
        """Serve the entry for (kind, parts), computing it under a lock when absent or corrupt."""
        key = make_key(kind, parts)
        # outside the lock a writer may be swapping the entry, so a failed check proves nothing yet
        hit = self.read(kind, key, discard_corrupt=False)
        if hit is not None:
            return hit
        with self.lock(key):
            hit = self.read(kind, key)  # another process may have finished while we waited
            if hit is not None:
                return hit
            # we hold the key's lock, so any temp dir of this key belongs to a writer that died
            for orphan in self.entry_dir(kind, key).parent.glob(f".tmp-{key[:12]}-*"):
                shutil.rmtree(orphan, ignore_errors=True)
            t0 = time.time()
            arrays = compute()
            self.write(kind, key, arrays, {"parts": parts, "seconds": round(time.time() - t0, 3), **(meta or {})})
            return arrays

    def has(self, kind: str, parts: dict) -> bool:
        d = self.entry_dir(kind, make_key(kind, parts))
        return (d / "data.safetensors").is_file() and (d / "meta.json").is_file()

    def entries(self, kind: str | None = None) -> list[Entry]:
        """Published entries, oldest first (temp dirs of unfinished or killed writes are not entries)."""
        if not self.root.is_dir():
            return []
        out = []
        kinds = [self.root / kind] if kind else [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        for kd in kinds:
            if not kd.is_dir():
                continue
            for meta_file in kd.glob("*/*/meta.json"):
                if meta_file.parent.name.startswith("."):
                    continue
                try:
                    meta = json.loads(meta_file.read_text())
                except ValueError:
                    meta = {}
                out.append(Entry(kd.name, meta_file.parent.name, meta_file.parent, meta))
        return sorted(out, key=lambda e: e.meta.get("created", ""))

    def kinds(self) -> list[str]:
        """The kinds genclf writes, and any other kind already in this store."""
        present = self.root.iterdir() if self.root.is_dir() else []
        return sorted({*KINDS, *(p.name for p in present if p.is_dir() and not p.name.startswith("."))})

    def du(self) -> dict[str, tuple[int, int]]:
        """kind -> (entries, bytes)."""
        out: dict[str, tuple[int, int]] = {}
        for e in self.entries():
            n, b = out.get(e.kind, (0, 0))
            out[e.kind] = (n + 1, b + e.size)
        return out

    def clear(self, kind: str | None = None) -> int:
        """Remove entries (of one kind, or all) and the leftovers of killed writers; returns the entry count."""
        n = 0
        for e in self.entries(kind):
            self._discard(e.path)
            n += 1
        for d in self.leftovers(kind):
            shutil.rmtree(d, ignore_errors=True)
        return n

    def leftovers(self, kind: str | None = None) -> list[Path]:
        """Temp dirs of writers that are gone (or older than STALE_TMP_S); half-deleted entries whose discarder is gone."""
        if not self.root.is_dir():
            return []
        return [d for d in self.root.glob(f"{kind or '*'}/*/.*") if _leftover(d)]

    def sweep(self, kind: str | None = None) -> tuple[int, int]:
        """Remove leftovers (never an entry); returns (folders, bytes) removed."""
        n = b = 0
        for d in self.leftovers(kind):
            with contextlib.suppress(OSError):
                size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
                shutil.rmtree(d)
                n, b = n + 1, b + size
        return n, b

    @staticmethod
    def _discard(d: Path) -> None:
        # rename first so no reader ever sees a half-deleted entry
        trash = d.with_name(f".trash-{d.name}-{os.getpid()}-{time.time_ns()}")
        with contextlib.suppress(FileNotFoundError):
            os.replace(d, trash)
            shutil.rmtree(trash, ignore_errors=True)


def _os_error(e: SafetensorError) -> OSError | None:
    """safetensors reports a failed write as 'Error while serializing: I/O error: ... (os error 28)'."""
    m = re.search(r"\(os error (\d+)\)", str(e))
    return OSError(int(m.group(1)), os.strerror(int(m.group(1)))) if m else None


def _leftover(d: Path) -> bool:
    """`.tmp-<key12>-<pid>-*` or `.trash-<key>-<pid>-<ns>` whose process is gone (or a temp dir older than an hour)."""
    parts = d.name.split("-")
    if len(parts) < 4 or parts[0] not in (".tmp", ".trash") or not d.is_dir():
        return False
    if not _alive(parts[2]):
        return True
    with contextlib.suppress(OSError):
        return parts[0] == ".tmp" and time.time() - d.stat().st_mtime > STALE_TMP_S
    return False


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def default_cache() -> Cache:
    return Cache()
