"""Dataset loaders on real-format files, the folder dataset, honest splits and k-shot sampling.

Fashion-MNIST is read from the real Debian files; MNIST and CIFAR are read from small files these
tests write in the real formats (IDX, Python 2 pickled batches). Nothing is downloaded.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil

import numpy as np
import pytest
from PIL import Image

from genclf import data
from genclf.data import formats
from genclf.errors import GenclfError


@pytest.fixture(scope="module")
def fmnist():
    assert data.DEBIAN_FMNIST.is_dir(), "needs `apt-get install -y dataset-fashion-mnist` (make test does it)"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENCLF_DATA_DIR", "/nonexistent-genclf-data")  # so the Debian files are what loads
        data.registry._load_cached.cache_clear()
        yield data.load("fashion-mnist")
    data.registry._load_cached.cache_clear()


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------- Fashion-MNIST (real Debian files)


def test_fashion_mnist_real_files(fmnist):
    ds = fmnist
    assert ds.source == str(data.DEBIAN_FMNIST)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.x_train.dtype == ds.x_test.dtype == np.uint8
    assert ds.y_train.dtype == np.int64 and ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    assert ds.shape == (1, 28, 28) and ds.n_classes == 10
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.x_train.max() == 255 and ds.x_train.std() > 50  # real pixels, not zeros
    assert len(ds.fingerprint) == 16 and int(ds.fingerprint, 16) >= 0


def test_fashion_mnist_validation_split_is_stratified_and_fixed(fmnist):
    s = data.splits(fmnist)
    assert len(s.val) == 5000  # 10% of train, capped at 5000
    assert np.bincount(fmnist.y_train[s.val]).tolist() == [500] * 10
    assert len(np.intersect1d(s.val, s.pool)) == 0 and len(s.val) + len(s.pool) == 60000
    again = data.Dataset("copy", fmnist.classes, fmnist.x_train, fmnist.y_train, fmnist.x_test, fmnist.y_test)
    np.testing.assert_array_equal(data.splits(again).val, s.val)


def test_missing_fashion_mnist_names_both_remedies(data_dir, monkeypatch):
    monkeypatch.setattr(data.registry, "DEBIAN_FMNIST", data_dir / "not-installed")
    with pytest.raises(GenclfError) as e:
        data.load("fashion-mnist")
    msg = _one_line(e)
    assert "apt-get install -y dataset-fashion-mnist" in msg
    assert "train-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert str(data_dir / "fashion-mnist") in msg


# ---------------------------------------------------------------- MNIST (IDX files written here)


def _write_mnist(folder, n_train=40, n_test=20, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        ext = ".gz" if gz else ""
        formats.write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", x)
        formats.write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", y)
        arrays[prefix] = (x, y)
    return arrays


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_mnist_reads_idx_files(data_dir, gz):
    written = _write_mnist(data_dir / "MNIST" / "raw", gz=gz)
    ds = data.load("mnist")
    assert ds.classes == tuple(str(i) for i in range(10)) and not ds.hflip
    assert ds.x_train.shape == (40, 1, 28, 28) and ds.x_train.dtype == np.uint8
    np.testing.assert_array_equal(ds.x_train[:, 0], written["train"][0])
    np.testing.assert_array_equal(ds.y_train, written["train"][1])
    np.testing.assert_array_equal(ds.x_test[:, 0], written["t10k"][0])
    assert ds.y_test.dtype == np.int64 and len(ds.y_test) == 20


def test_fingerprint_is_content_not_path(data_dir, tmp_path, monkeypatch):
    _write_mnist(data_dir / "MNIST" / "raw", seed=1)
    fp = data.load("mnist").fingerprint
    other = tmp_path / "elsewhere"
    shutil.copytree(data_dir, other)
    monkeypatch.setenv("GENCLF_DATA_DIR", str(other))
    moved = data.load("mnist")
    assert moved.source.startswith(str(other)) and moved.fingerprint == fp
    _write_mnist(other / "MNIST" / "raw", seed=2)  # same shapes, other pixels
    data.registry._load_cached.cache_clear()
    assert data.load("mnist").fingerprint != fp


def test_truncated_idx_is_a_clear_error(data_dir):
    folder = data_dir / "MNIST" / "raw"
    _write_mnist(folder)
    f = folder / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(GenclfError, match="truncated"):
        data.load("mnist")


def test_missing_mnist_names_fetch_command_and_files(data_dir):
    with pytest.raises(GenclfError) as e:
        data.load("mnist")
    msg = _one_line(e)
    assert "genclf data fetch mnist" in msg
    for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert f in msg
    assert str(data_dir / "MNIST" / "raw") in msg


# ---------------------------------------------------------------- CIFAR (pickled batches written here)


def _cifar_images(n, offset):
    """(n, 3, 32, 32) with image i's R plane = offset + i, G = 1, B = 2: order and planes are checkable."""
    x = np.zeros((n, 3, 32, 32), np.uint8)
    x[:, 0] = (offset + np.arange(n))[:, None, None]
    x[:, 1], x[:, 2] = 1, 2
    return x


def _write_cifar10(root, per_batch=6, n_test=10):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for b in range(1, 6):
        formats.write_cifar_batch(
            d / f"data_batch_{b}", _cifar_images(per_batch, 10 * b), [(10 * b + i) % 10 for i in range(6)]
        )
    formats.write_cifar_batch(d / "test_batch", _cifar_images(n_test, 200), [i % 10 for i in range(n_test)])
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    formats.write_cifar_meta(d / "batches.meta", names)
    return d


def test_cifar10_reads_python_batches(data_dir):
    _write_cifar10(data_dir)
    ds = data.load("cifar10")
    assert ds.classes[0] == "airplane" and ds.classes[9] == "truck" and ds.hflip
    assert ds.x_train.shape == (30, 3, 32, 32) and ds.x_test.shape == (10, 3, 32, 32)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert ds.x_train[:, 0, 5, 5].tolist() == [10 * b + i for b in range(1, 6) for i in range(6)]  # batch order kept
    assert (ds.x_train[:, 1] == 1).all() and (ds.x_train[:, 2] == 2).all()  # planes are R, G, B
    assert ds.y_train.tolist() == [(10 * b + i) % 10 for b in range(1, 6) for i in range(6)]
    assert ds.y_test.tolist() == [i % 10 for i in range(10)]


def test_cifar100_reads_fine_labels(data_dir):
    d = data_dir / "cifar-100-python"
    d.mkdir()
    formats.write_cifar_batch(d / "train", _cifar_images(200, 0), [i % 100 for i in range(200)], label_key="fine_labels")
    formats.write_cifar_batch(d / "test", _cifar_images(100, 0), list(range(100)), label_key="fine_labels")
    formats.write_cifar_meta(d / "meta", [f"class{i:02d}" for i in range(100)], key="fine_label_names")
    ds = data.load("cifar100")
    assert ds.n_classes == 100 and ds.classes[42] == "class42"
    assert ds.x_train.shape == (200, 3, 32, 32) and ds.y_test.tolist() == list(range(100))


def test_cifar_reads_python3_protocol2_repickles(tmp_path):
    x = _cifar_images(3, 7).reshape(3, -1)
    path = tmp_path / "batch"
    with open(path, "wb") as f:
        pickle.dump({b"data": x, b"labels": [1, 2, 3], b"batch_label": b""}, f, protocol=2)
    batch = formats.read_cifar_batch(path)
    assert batch["labels"] == [1, 2, 3]
    np.testing.assert_array_equal(formats.cifar_images(batch)[:, 0, 0, 0], [7, 8, 9])


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_safe_unpickler_refuses_code(data_dir, tmp_path):
    d = _write_cifar10(data_dir)
    marker = tmp_path / "pwned"
    with open(d / "data_batch_3", "wb") as f:
        pickle.dump({"data": _Evil(marker), "labels": [0]}, f, protocol=2)
    with pytest.raises(GenclfError) as e:
        data.load("cifar10")
    assert "refusing to load" in _one_line(e) and "system" in str(e.value) and "data_batch_3" in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "name, folder, files",
    [
        ("cifar10", "cifar-10-batches-py", ["data_batch_1", "data_batch_5", "test_batch", "batches.meta"]),
        ("cifar100", "cifar-100-python", ["train", "test", "meta"]),
    ],
)
def test_missing_cifar_names_fetch_command_and_files(data_dir, name, folder, files):
    with pytest.raises(GenclfError) as e:
        data.load(name)
    msg = _one_line(e)
    assert f"genclf data fetch {name}" in msg and str(data_dir / folder) in msg
    for f in files:
        assert f in msg


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(GenclfError) as e:
        data.load("nope")
    msg = _one_line(e)
    for name in ("fashion-mnist", "mnist", "cifar10", "cifar100", "digits", "folder:PATH"):
        assert name in msg


# ---------------------------------------------------------------- folder:PATH


def _png(path, color, size=(12, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def _make_folder(root, per_class=5):
    colors = {"bird": (0, 0, 255), "cat": (255, 0, 0), "dog": (0, 255, 0)}
    for cls, color in colors.items():
        for i in range(per_class):
            _png(root / cls / f"{i}.png", tuple(min(255, c + 10 * i) for c in color))
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "empty").mkdir()  # a class with no images is dropped
    (root / ".ipynb_checkpoints").mkdir()  # hidden folders are not classes
    _png(root / ".ipynb_checkpoints" / "x.png", (1, 2, 3))
    for i in range(3):
        _png(root / "unlabeled" / f"u{i}.png", (128, 128, 128))
    return root


def test_folder_dataset(tmp_path):
    root = _make_folder(tmp_path / "imgs")
    ds = data.load(f"folder:{root}")
    assert ds.classes == ("bird", "cat", "dog")
    assert ds.skipped == 1
    assert ds.shape == (3, 12, 12) and ds.x_train.dtype == np.uint8  # inferred: 12x10 colour images -> 12x12 RGB
    assert len(ds.y_train) + len(ds.y_test) == 15
    assert set(ds.y_train.tolist()) == set(ds.y_test.tolist()) == {0, 1, 2}  # every class in both splits
    assert len(ds.x_unlabeled) == 3 and len(ds.unlabeled_pool()) == len(ds.y_train) + 3
    red = ds.x_train[ds.y_train == 1]  # cat images are red: labels follow folder names
    assert (red[:, 0] >= 250).all() and (red[:, 1] <= 40).all() and (red[:, 2] <= 40).all()


def test_folder_options_size_and_mode(tmp_path):
    root = _make_folder(tmp_path / "imgs")
    (root / "genclf.json").write_text('{"size": 16, "mode": "L", "test_fraction": 0.4}')
    ds = data.load(f"folder:{root}")
    assert ds.shape == (1, 16, 16)
    assert np.bincount(ds.y_test).tolist() == [2, 2, 2]  # 40% of 5 per class


@pytest.mark.parametrize("bad", ['{"size": "big"}', '{"mode": "CMYK"}', '{"colour": 1}', "not json", '{"test_fraction": 1}'])
def test_folder_bad_options_are_clear_errors(tmp_path, bad):
    root = _make_folder(tmp_path / "imgs")
    (root / "genclf.json").write_text(bad)
    with pytest.raises(GenclfError, match="genclf.json"):
        data.load(f"folder:{root}")


def test_folder_with_train_test_level(tmp_path):
    root = tmp_path / "imgs"
    for split, n in (("train", 4), ("test", 2)):
        for cls, color in (("a", (255, 0, 0)), ("b", (0, 0, 255))):
            for i in range(n):
                _png(root / split / cls / f"{i}.png", color)
    ds = data.load(f"folder:{root}")
    assert (
        ds.classes == ("a", "b") and np.bincount(ds.y_train).tolist() == [4, 4] and np.bincount(ds.y_test).tolist() == [2, 2]
    )


def test_folder_without_usable_images_is_an_error(tmp_path):
    root = tmp_path / "imgs"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "a" / "x.png").write_bytes(b"garbage")
    with pytest.raises(GenclfError) as e:
        data.load(f"folder:{root}")
    msg = _one_line(e)
    assert "usable" in msg and str(root) in msg and "1 unreadable" in msg


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(GenclfError, match="no folder"):
        data.load(f"folder:{tmp_path / 'nope'}")


def test_folder_reloads_after_images_are_added(tmp_path):
    root = _make_folder(tmp_path / "imgs")
    n = len(data.load(f"folder:{root}").y_train)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 255, 0)).save(buf, format="PNG")
    for i in range(5, 10):
        (root / "dog" / f"{i}.png").write_bytes(buf.getvalue())
    ds = data.load(f"folder:{root}")
    assert len(ds.y_train) + len(ds.y_test) == 20 and len(ds.y_train) > n


# ---------------------------------------------------------------- splits and k-shot sampling


def _toy(counts=(30, 20, 12), n_test=15):
    """Images carry their id in two pixels: train ids 0..N-1, test ids from 10000 up."""
    y = np.concatenate([np.full(c, i) for i, c in enumerate(counts)]).astype(np.int64)
    y = np.random.default_rng(0).permutation(y)

    def ids(a):
        x = np.zeros((len(a), 1, 4, 4), np.uint8)
        x[:, 0, 0, 0], x[:, 0, 0, 1] = a // 256, a % 256
        return x

    test_ids = 10000 + np.arange(n_test)
    yte = (np.arange(n_test) % len(counts)).astype(np.int64)
    return data.Dataset("toy", tuple("abc"), ids(np.arange(len(y))), y, ids(test_ids), yte)


def _ids(x):
    return x[:, 0, 0, 0].astype(int) * 256 + x[:, 0, 0, 1]


def test_shots_are_stratified_seeded_and_from_the_pool():
    ds = _toy()
    s = data.splits(ds)
    idx = data.shot_indices(ds, k=4, seed=0)
    assert np.bincount(ds.y_train[idx]).tolist() == [4, 4, 4]
    assert len(np.unique(idx)) == len(idx)
    assert np.isin(idx, s.pool).all() and not np.isin(idx, s.val).any()
    assert (_ids(ds.x_train[idx]) < 10000).all()  # train images only, never test ones
    np.testing.assert_array_equal(idx, data.shot_indices(ds, k=4, seed=0))
    assert not np.array_equal(np.sort(idx), np.sort(data.shot_indices(ds, k=4, seed=1)))


def test_oversized_k_names_the_largest_possible():
    ds = _toy()
    pool = data.splits(ds).pool
    largest = int(np.bincount(ds.y_train[pool]).min())
    assert len(data.shot_indices(ds, k=largest, seed=0)) == 3 * largest
    with pytest.raises(GenclfError) as e:
        data.shot_indices(ds, k=largest + 1, seed=0)
    assert f"largest k possible for toy is {largest}" in _one_line(e)
    with pytest.raises(GenclfError, match="at least 1"):
        data.shot_indices(ds, k=0, seed=0)


def test_validation_split_is_stratified_and_fixed():
    ds = _toy(counts=(100, 60, 40))
    s = data.splits(ds)
    assert len(s.val) == 20 and np.bincount(ds.y_train[s.val]).tolist() == [10, 6, 4]
    np.testing.assert_array_equal(np.union1d(s.val, s.pool), np.arange(200))
    np.testing.assert_array_equal(data.splits(_toy(counts=(100, 60, 40))).val, s.val)
    xv, yv = ds.split("val")
    np.testing.assert_array_equal(_ids(xv), s.val)  # the ids in the pixels are the train indices
    assert ds.split("test")[0] is ds.x_test
    with pytest.raises(GenclfError, match="valid splits"):
        ds.split("nope")
