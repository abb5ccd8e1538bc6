"""Fault injection, fast cases (issue 12): hostile uploads, damaged dataset files, a full disk, leftovers of
killed writers, and the small ways bad input slipped through. Each case failed on the commit before the fix.

The slow cases (kill -9 during training and cache writes, a real full tmpfs, a 1 GB zip bomb) are in
bench/faults.py.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genclf import data
from genclf.cache import Cache, make_key
from genclf.data import formats, upload
from genclf.errors import GenclfError, unknown


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def _png(v: int, size=(10, 10), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, v if mode == "L" else (v, 255 - v, v // 2)).save(buf, format="PNG")
    return buf.getvalue()


def _zip(files: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, blob in files.items():
            z.writestr(name, blob)
    return buf.getvalue()


def _classes(n=4) -> dict[str, bytes]:
    return {f"ds/{c}/{i}.png": _png(40 * i + (c == "b")) for c in ("a", "b") for i in range(n)}


@pytest.fixture
def uploads(data_dir) -> Path:
    return data_dir / "uploads"


def _nothing_added(uploads: Path) -> bool:
    return not uploads.exists() or not any(uploads.iterdir())


# ---------------------------------------------------------------- 1. zip bombs and memory


def test_zip_bomb_member_is_refused_before_inflating(uploads):
    files = _classes()
    files["ds/a/bomb.png"] = bytes(8 * 2**20)  # 8 MB of zeros deflate ~1000x
    with pytest.raises(GenclfError) as e:
        upload.import_zip(_zip(files), "bomb")
    assert "zip bomb" in _one_line(e) and "ds/a/bomb.png" in str(e.value)
    assert _nothing_added(uploads)


def test_oversized_member_is_refused(uploads):
    files = _classes()
    files["ds/a/huge.png"] = bytes(32 * 2**20 + 1)
    with pytest.raises(GenclfError, match="at most 32 MB"):
        upload.import_zip(_zip(files, zipfile.ZIP_STORED), "huge")
    assert _nothing_added(uploads)


def test_members_are_streamed_not_read_whole(uploads):
    """A 20 MB member (stored, not an image) must never sit in memory whole."""
    files = _classes()
    files["ds/a/big.png"] = np.random.default_rng(0).integers(0, 256, 20 * 2**20, dtype=np.uint8).tobytes()
    raw = _zip(files, zipfile.ZIP_STORED)
    tracemalloc.start()
    try:
        rep = upload.import_zip(raw, "streamed")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rep.counts == {"a": 4, "b": 4} and ("ds/a/big.png", "unreadable image (UnidentifiedImageError)") in rep.bad
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MB of Python allocations"


# ---------------------------------------------------------------- 5. classes too small for a test split


def _folder(root: Path, counts: dict[str, int], size=(28, 28), mode="L") -> Path:
    for c, n in counts.items():
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (root / c / f"{i}.png").write_bytes(_png(30 * i + 7 * len(c), size, mode))
    return root


def test_single_image_class_is_refused_at_load(tmp_path):
    root = _folder(tmp_path / "imgs", {"a": 3, "b": 1})
    with pytest.raises(GenclfError) as e:
        data.load(f"folder:{root}")
    assert "'b' has only 1 usable image" in _one_line(e) and "at least 2" in str(e.value)


def test_a_zip_of_broken_images_says_what_it_skipped(uploads):
    """The refusal names what unpacking dropped: it is usually why nothing usable is left."""
    files = {"cats/a.png": b"not a png", "cats/b.png": b"nor this", "dogs/readme.txt": b"hello"}
    with pytest.raises(GenclfError) as e:
        upload.import_zip(_zip(files), "broken")
    msg = _one_line(e)
    assert "2 unreadable images (cats/a.png, cats/b.png)" in msg and "1 not an image file (dogs/readme.txt)" in msg, msg
    assert "0 unreadable" not in msg and _nothing_added(uploads)
    # with enough good images the dataset is made, and it keeps none of the broken files
    rep = upload.import_zip(_zip({**_classes(), "ds/a/bad.png": b"not a png"}), "mostly_good")
    assert rep.counts == {"a": 4, "b": 4} and [p for p, _ in rep.bad] == ["ds/a/bad.png"]
    assert not (rep.folder / "a" / "bad.png").exists() and len(list((rep.folder / "a").iterdir())) == 4


def test_single_image_class_is_refused_at_upload(uploads):
    files = _classes()
    files["ds/c/only.png"] = _png(9)
    with pytest.raises(GenclfError) as e:
        upload.import_zip(_zip(files), "tiny")
    msg = _one_line(e)
    assert "'c' has only 1 usable image" in msg and msg.startswith("the zip:")
    assert ".tmp-" not in msg and _nothing_added(uploads)  # no temp folder named, none left


def test_class_missing_from_test_level_is_refused(tmp_path):
    root = tmp_path / "imgs"
    _folder(root / "train", {"a": 2, "b": 2})
    _folder(root / "test", {"a": 1})
    with pytest.raises(GenclfError, match="'b' has no usable image in test/"):
        data.load(f"folder:{root}")


# ---------------------------------------------------------------- 6. tracebacks that became remedies


def _full_disk(monkeypatch, where: str) -> None:
    """Fail the cache's next write the way a full disk does (bench/faults.py does it for real on a tmpfs)."""
    from safetensors import SafetensorError

    from genclf import cache as cache_mod

    def save_file(arrays, path):  # what safetensors raises on a full disk, after a partial write
        Path(path).write_bytes(b"partial")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    def fsync(fd):  # delayed allocation: the data is accepted, the flush is refused
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "data":
        monkeypatch.setattr(cache_mod, "save_file", save_file)
    else:
        monkeypatch.setattr(cache_mod.os, "fsync", fsync)


@pytest.mark.parametrize("where", ["data", "fsync"])
def test_disk_full_while_writing_the_cache_is_one_line_and_loses_nothing(tmp_path, monkeypatch, where):
    store = Cache(tmp_path / "store")
    store.get_or_compute("features", {"k": 0}, lambda: {"x": np.zeros(3, np.float32)})
    _full_disk(monkeypatch, where)
    with pytest.raises(GenclfError) as e:
        store.get_or_compute("features", {"k": 1}, lambda: {"x": np.ones(3, np.float32)})
    assert "is full" in _one_line(e) and "GENCLF_CACHE_DIR" in str(e.value)
    assert not [p for p in store.root.rglob(".tmp-*")]  # the temp dir went
    assert [e.meta["parts"] for e in store.entries()] == [{"k": 0}]  # the old entry stayed
    assert (store.read("features", make_key("features", {"k": 0}))["x"] == 0).all()


def test_disk_full_in_the_cli_exits_2(tmp_path, monkeypatch, capsys):
    from genclf import features
    from genclf.cli import main

    features._MEMO.clear()  # an earlier test's features in memory would be served without a write
    _full_disk(monkeypatch, "data")
    assert main(["features", "--dataset", "digits", "--backbone", "pixels", "--limit", "20"]) == 2
    err = capsys.readouterr().err.strip()  # progress bars, then one error line
    assert "Traceback" not in err and err.splitlines()[-1].startswith("genclf: error: the disk holding the cache")


def _idx(dtype_code: int, dims: tuple[int, ...], body: bytes) -> bytes:
    return bytes([0, 0, dtype_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + body


def _mnist(folder: Path, images: bytes | None = None, labels: bytes | None = None, n=20) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x = _idx(0x08, (n, 28, 28), rng.integers(0, 256, n * 784, dtype=np.uint8).tobytes())
    y = _idx(0x08, (n,), (np.arange(n) % 10).astype(np.uint8).tobytes())
    for prefix in ("train", "t10k"):
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(images if images is not None and prefix == "train" else x)
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(labels if labels is not None and prefix == "train" else y)


BAD_IDX = {
    "1-D images": dict(images=_idx(0x08, (20,), bytes(20))),  # one value per label: was read as 20 1x1 images
    "zero images": dict(images=_idx(0x08, (0, 28, 28), b""), labels=_idx(0x08, (0,), b"")),
    "NaN float images": dict(images=_idx(0x0D, (20, 28, 28), np.full(20 * 784, np.nan, ">f4").tobytes())),
    "fractional float images": dict(images=_idx(0x0D, (20, 28, 28), np.full(20 * 784, 0.5, ">f4").tobytes())),
    "2-D labels": dict(labels=_idx(0x08, (20, 2), bytes(40))),
    "labels outside 0..9": dict(labels=_idx(0x08, (20,), bytes([0, 1, 2, 12] * 5))),
    "count overflow": dict(images=_idx(0x08, (2**22, 2**21, 2**21), b"")),  # 2**64 values wrapped to 0 in int64
    "count overflow, int32": dict(images=_idx(0x0C, (2**31, 2**31, 4), b"")),
}


@pytest.mark.parametrize("case", list(BAD_IDX))
def test_bad_idx_files_are_refused(data_dir, case):
    _mnist(data_dir / "MNIST" / "raw", **BAD_IDX[case])
    with pytest.raises(GenclfError) as e:
        data.load("mnist")
    assert "re-download" in _one_line(e)


def _damaged_gz(payload: bytes) -> bytes:
    """A .gz whose deflate stream is damaged such that zlib itself fails (not only the CRC check)."""
    good = gzip.compress(payload, mtime=0)
    for i in range(20, len(good) - 8):
        bad = bytearray(good)
        bad[i] ^= 0xFF
        try:
            zlib.decompress(bytes(bad[10:-8]), -15)
        except zlib.error:
            return bytes(bad)
    raise AssertionError("no damaging flip found")


def test_damaged_deflate_stream_in_idx_gz(data_dir):
    folder = data_dir / "MNIST" / "raw"
    _mnist(folder)
    (folder / "train-images-idx3-ubyte").unlink()
    images = _idx(0x08, (20, 28, 28), np.tile(np.arange(784, dtype=np.uint8) % 7, 20).tobytes())  # compressible
    (folder / "train-images-idx3-ubyte.gz").write_bytes(_damaged_gz(images))
    with pytest.raises(GenclfError, match="cannot be read"):
        data.load("mnist")


CIFAR_BAD = {
    "data is text": {"data": "ab", "labels": [0, 1]},
    "labels is a number": {"data": np.zeros((2, 3072), np.uint8), "labels": 5},
    "labels are text": {"data": np.zeros((2, 3072), np.uint8), "labels": ["cat", "dog"]},
    "no images": {"data": np.zeros((0, 3072), np.uint8), "labels": []},
}


@pytest.mark.parametrize("case", list(CIFAR_BAD))
def test_wrongly_typed_cifar_values_are_refused(data_dir, case):
    d = data_dir / "cifar-10-batches-py"
    d.mkdir()
    good = {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}
    for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (d / f).write_bytes(formats.py2_pickle(CIFAR_BAD[case] if f == "data_batch_3" else good))
    formats.write_cifar_meta(d / "batches.meta", [f"c{i}" for i in range(10)])
    with pytest.raises(GenclfError) as e:
        data.load("cifar10")
    assert "data_batch_3" in _one_line(e) and "re-download" in str(e.value)


def test_cifar_meta_of_the_wrong_type_is_refused(data_dir):
    d = data_dir / "cifar-10-batches-py"
    d.mkdir()
    for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        formats.write_cifar_batch(d / f, np.zeros((2, 3072), np.uint8), [0, 1])
    (d / "batches.meta").write_bytes(formats.py2_pickle({"label_names": 10}))
    with pytest.raises(GenclfError, match="not a list of class names"):
        data.load("cifar10")


def _corrupt_member(raw: bytes, name: str) -> bytes:
    """Flip bytes inside the compressed data of one member (its local header stays valid)."""
    zf = zipfile.ZipFile(io.BytesIO(raw))
    info = zf.getinfo(name)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    out = bytearray(raw)
    for i in range(start + 2, start + min(info.compress_size, 40)):
        out[i] ^= 0x5A
    return bytes(out)


def test_damaged_zip_member_is_one_line(uploads):
    files = _classes()
    files["ds/a/big.png"] = _png(1, (200, 200)) + bytes(range(256)) * 40
    with pytest.raises(GenclfError) as e:
        upload.import_zip(_corrupt_member(_zip(files), "ds/a/big.png"), "damaged")
    assert "is damaged" in _one_line(e) and "ds/a/big.png" in str(e.value)
    assert _nothing_added(uploads)


def test_over_long_member_name_is_one_line(uploads):
    files = _classes()
    files[f"ds/a/{'x' * 300}.png"] = _png(3)
    with pytest.raises(GenclfError) as e:
        upload.import_zip(_zip(files), "longname")
    assert "longer than 255 bytes" in _one_line(e)
    assert _nothing_added(uploads)


# ---------------------------------------------------------------- 7. bounded IDX .gz decompression


def test_idx_gz_inflating_past_its_header_is_refused_without_inflating_it(tmp_path):
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", 10, 28, 28)  # announces 7840 bytes
    f = tmp_path / "bomb-images-idx3-ubyte.gz"
    f.write_bytes(gzip.compress(header + bytes(64 * 2**20), compresslevel=9, mtime=0))  # inflates to 64 MB
    tracemalloc.start()
    try:
        with pytest.raises(GenclfError) as e:
            formats.read_idx(f)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "more than the 7840 bytes its header announces" in _one_line(e)
    assert peak < 4 * 2**20, f"peak {peak / 2**20:.1f} MB"


def test_idx_truncation_message_has_the_numbers_the_right_way_round(tmp_path):
    f = tmp_path / "x-idx3-ubyte"
    f.write_bytes(_idx(0x08, (10, 28, 28), bytes(7840))[:-40])
    with pytest.raises(GenclfError) as e:
        formats.read_idx(f)
    assert "announces 10x28x28 values (7840 bytes) but only 7800 bytes follow it" in _one_line(e)
    g = tmp_path / "y-idx3-ubyte.gz"
    g.write_bytes(gzip.compress(_idx(0x08, (10, 28, 28), bytes(7800))))
    with pytest.raises(GenclfError, match="holds 7800 of the 7840 bytes its header announces"):
        formats.read_idx(g)


# ---------------------------------------------------------------- 8. cache leftovers


def test_trash_of_a_killed_discarder_is_swept_and_du_never_recommends_clear(tmp_path, monkeypatch, capsys):
    from genclf.cli import main

    monkeypatch.setenv("GENCLF_CACHE_DIR", str(tmp_path / "store"))
    store = Cache()
    store.get_or_compute("features", {"k": 0}, lambda: {"x": np.zeros(3, np.float32)})
    parent = store.entry_dir("features", make_key("features", {"k": 0})).parent
    trash = parent / f".trash-{'ab' * 32}-999999999-1"  # a discarder killed mid-rmtree (no such pid)
    (trash / "sub").mkdir(parents=True)
    (trash / "data.safetensors").write_bytes(bytes(1000))
    assert main(["cache", "du"]) == 0
    out = capsys.readouterr().out
    assert "1 leftover" in out and "genclf cache sweep" in out and "clear" not in out
    assert main(["cache", "sweep"]) == 0
    assert "removed 1 leftover" in capsys.readouterr().out
    assert not trash.exists() and len(store.entries()) == 1


def test_first_write_of_a_process_sweeps_leftovers(tmp_path, monkeypatch):
    from genclf import cache as cache_mod

    store = Cache(tmp_path / "store")
    store.get_or_compute("features", {"k": 0}, lambda: {"x": np.zeros(3, np.float32)})
    parent = store.entry_dir("features", make_key("features", {"k": 0})).parent
    dead = [parent / f".trash-{'cd' * 32}-999999999-1", parent / ".tmp-0123456789ab-999999999-q1"]
    old = parent / f".tmp-0123456789ab-{os.getpid()}-old"  # a live pid, but far older than any write
    for d in [*dead, old]:
        d.mkdir()
    os.utime(old, (0, 0))
    monkeypatch.setattr(cache_mod, "_SWEPT", set(), raising=False)
    store.get_or_compute("features", {"k": 1}, lambda: {"x": np.ones(3, np.float32)})
    assert not any(d.exists() for d in [*dead, old]) and len(store.entries()) == 2


# ---------------------------------------------------------------- 10. minor


def test_plural_of_unknown_names():
    assert "valid strategies: a, b" in str(unknown("strategy", "x", ["a", "b"]))
    assert "valid splits:" in str(unknown("split", "x", ["a"]))


def test_text_files_in_class_folders_are_not_unreadable_images(tmp_path):
    root = _folder(tmp_path / "imgs", {"a": 3, "b": 3})
    (root / "a" / "notes.txt").write_text("hello")
    (root / "b" / "LICENSE").write_text("cc-by")
    (root / "b" / "broken.png").write_bytes(b"not a png")
    assert data.load(f"folder:{root}").skipped == 1  # only the broken PNG


@pytest.mark.parametrize("grid", ["٣", "03", "³"])  # each pooled like @3 under another cache key
def test_pooling_grid_must_be_one_ascii_digit(grid):
    from genclf.backbones import get

    bb = get("vae").from_preset("tiny", (1, 8, 8))
    assert bb.check_blocks(["dec.0@3"]) == ["dec.0@3"]
    with pytest.raises(GenclfError, match="bad pooling grid"):
        bb.check_blocks([f"dec.0@{grid}"])


def test_eval_out_unwritable_fails_before_evaluating(tmp_path, capsys):
    from genclf.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["eval", "--dataset", "digits", "--shots", "1", "--seeds", "1", "--out", str(blocker / "eval.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot write" in err and len(err.strip().splitlines()) == 1
    assert Cache().entries() == []  # nothing was computed


# ---------------------------------------------------------------- also expected: folders keep their images


def test_folder_keeps_grey_28px_images(tmp_path):
    root = _folder(tmp_path / "imgs", {"a": 3, "b": 3})
    ds = data.load(f"folder:{root}")
    assert ds.shape == (1, 28, 28)
    raw = np.asarray(Image.open(root / "a" / "0.png"))
    assert any((x[0] == raw).all() for x in np.concatenate([ds.x_train, ds.x_test]))  # pixels untouched


def test_folder_size_is_the_most_common_and_colour_only_when_needed(tmp_path):
    root = _folder(tmp_path / "imgs", {"a": 3, "b": 3}, size=(20, 20), mode="L")
    _folder(root, {"a": 1}, size=(40, 40), mode="L")  # overwrites a/0.png with a larger one
    assert data.load(f"folder:{root}").shape == (1, 20, 20)
    (root / "b" / "9.png").write_bytes(_png(5, (20, 20), "RGB"))  # one colour image: RGB for all
    assert data.load(f"folder:{root}").shape == (3, 20, 20)
    (root / "genclf.json").write_text('{"size": 16, "mode": "L"}')
    assert data.load(f"folder:{root}").shape == (1, 16, 16)


def test_upload_options_set_size_and_mode(uploads):
    rep = upload.import_zip(_zip(_classes()), "opts", options={"size": 16, "mode": "L"})
    assert data.load(rep.dataset).shape == (1, 16, 16)
    with pytest.raises(GenclfError, match="size an integer"):
        upload.import_zip(_zip(_classes()), "opts2", options={"size": 3})


# ---------------------------------------------------------------- also expected: backbones across datasets, paths, threads


def test_backbone_of_another_dataset_by_name(tmp_path):
    from genclf import features
    from genclf.backbones import find

    root = _folder(tmp_path / "grey28", {"a": 4, "b": 4})
    name = f"folder:{root}"
    assert find("fashion-mnist/vae", name).parts[-2:] == ("fashion-mnist", "vae")
    f = features.extract(name, "fashion-mnist/vae", split="test")
    assert f.x.shape[0] == 2 and np.isfinite(f.x).all()
    with pytest.raises(GenclfError, match="trained on 1-channel 28x28 images but digits holds 1-channel 8x8"):
        features.extract("digits", "fashion-mnist/vae", split="test", limit=20)
    with pytest.raises(GenclfError, match="neither a folder"):
        find("no/such/thing", name)


def test_folder_results_and_runs_have_readable_paths(tmp_path, monkeypatch, capsys):
    from genclf.backbones.io import run_dir
    from genclf.cli import main

    root = _folder(tmp_path / "My Shoes", {"a": 4, "b": 4})
    name = f"folder:{root}"
    slug = data.slug(name)
    assert slug.startswith("My-Shoes-") and ":" not in slug and "/" not in slug
    assert data.slug(f"folder:{tmp_path / 'other' / 'My Shoes'}") != slug  # same folder name, other place
    assert run_dir(name, "vae").parts[-2:] == (slug, "vae")
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--dataset", name, "--shots", "1", "--seeds", "1"]) == 0
    assert (tmp_path / "results" / slug / "eval.csv").is_file()


def test_threads_option(capsys, monkeypatch):
    import torch

    from genclf.cli import main

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)  # main sets them; restored after the test
    try:
        assert main(["--threads", "2", "data", "list"]) == 0
        assert torch.get_num_threads() == 2 and os.environ["OMP_NUM_THREADS"] == "2"
        assert main(["features", "--dataset", "digits", "--backbone", "pixels", "--limit", "20", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(1)
    with pytest.raises(SystemExit) as e:
        main(["--threads", "0", "data", "list"])
    assert e.value.code == 2 and "whole number of threads" in capsys.readouterr().err


def test_uploaded_dataset_is_in_the_sidebar_at_once(data_dir, monkeypatch):
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    init = PagesManager.__init__  # run pages through app.py's st.navigation only (as tests/test_app.py does)

    def navigation_only(self, *a, **kw):
        init(self, *a, **kw)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", navigation_only)
    for k, v in {"GENCLF_PROJECTION": "pca", "GENCLF_PRECOMPUTE": "inline", "GENCLF_NO_WARMUP": "1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("GENCLF_DATASET", "digits")
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("ui/datasets.py").run()
    assert not at.exception and not any("shoes" in o for o in at.sidebar.selectbox[0].options)
    at.file_uploader[0].set_value(("shoes.zip", _zip(_classes()), "application/zip"))
    at.text_input[0].set_value("shoes")
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "shoes (upload)" in at.sidebar.selectbox[0].options  # no reload needed
    assert "Created **shoes (upload)** with 8 images" in at.success[0].value
