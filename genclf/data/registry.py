"""Dataset registry, honest splits and k-shot sampling.

Images are uint8 arrays shaped (N, C, H, W); labels are int64 in [0, n_classes).

The protocol (see README, "Honest science"):
- the unlabeled pool that trains a backbone is the train split (+ any `unlabeled/` images), labels hidden;
- a stratified validation split is carved from train with a fixed seed; it picks t, blocks and heads;
- k-shot labeled sets are random, stratified, seeded and drawn from train minus validation;
- the test split is only used for final scoring.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genclf.data import folders, formats
from genclf.data.splits import VAL_SEED, splits, stratified_subset
from genclf.errors import GenclfError, unknown

DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_DATASET = "fashion-mnist"

FMNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def data_dir() -> Path:
    return Path(os.environ.get("GENCLF_DATA_DIR", "data"))


def slug(name: str) -> str:
    """A folder name for a dataset's runs and results: registered names as they are; `folder:PATH` becomes
    `<folder name>-<6 hex of its absolute path>` (readable, and two folders named alike never share runs)."""
    if not name.startswith("folder:"):
        return name
    root = Path(name.split(":", 1)[1]).expanduser().resolve()
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", root.name).strip("-.")[:40] or "folder"
    return f"{base}-{hashlib.sha256(str(root).encode()).hexdigest()[:6]}"


@dataclass(eq=False)
class Dataset:
    """A loaded dataset. `x_*` are (N, C, H, W) uint8; `y_*` are (N,) int64."""

    name: str
    classes: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_unlabeled: np.ndarray | None = None
    hflip: bool = False  # whether horizontal flips preserve the class (clothing, objects: yes; digits: no)
    skipped: int = 0  # unreadable files skipped while loading (folder datasets)
    source: str = ""

    def __post_init__(self) -> None:
        if self.x_unlabeled is None:
            self.x_unlabeled = np.zeros((0, *self.x_train.shape[1:]), np.uint8)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def unlabeled_pool(self) -> np.ndarray:
        """What a backbone may train on: train images (labels withheld) plus unlabeled extras."""
        if len(self.x_unlabeled) == 0:
            return self.x_train
        return np.concatenate([self.x_train, self.x_unlabeled])

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 over the image and label bytes (not paths): identical data, identical key."""
        h = hashlib.sha256()
        for a in (self.x_train, self.y_train, self.x_test, self.y_test, self.x_unlabeled):
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(json.dumps(self.classes).encode())
        return h.hexdigest()[:16]

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of 'train', 'val', 'pool' (train minus val) or 'test'."""
        if name == "test":
            return self.x_test, self.y_test
        if name == "train":
            return self.x_train, self.y_train
        idx = self.split_indices(name)
        return self.x_train[idx], self.y_train[idx]

    def split_indices(self, name: str) -> np.ndarray:
        """Indices of a split into its source array (x_test for 'test', x_train otherwise)."""
        if name in ("test", "train"):
            return np.arange(len(self.y_test if name == "test" else self.y_train))
        if name in ("val", "pool"):
            return getattr(splits(self), name)
        raise unknown("split", name, ("train", "val", "pool", "test"))


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    present: Callable[[], bool]
    load: Callable[[], Dataset]
    remedy: Callable[[], str] = lambda: ""
    fetchable: bool = False


REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    REGISTRY[spec.name] = spec
    return spec


def dataset_names() -> list[str]:
    return list(REGISTRY) + ["folder:PATH"]


def spec(name: str) -> DatasetSpec:
    if name.startswith("folder:"):
        return _folder_spec(name)
    if name not in REGISTRY:
        raise unknown("dataset", name, dataset_names())
    return REGISTRY[name]


def load(name: str = DEFAULT_DATASET) -> Dataset:
    """Load a dataset by name; a missing one raises GenclfError naming both remedies."""
    s = spec(name)
    if not s.present():
        raise GenclfError(f"dataset {name!r} is not on this machine: {s.remedy()}")
    return _load_cached(name, _freshness(name))


def _freshness(name: str) -> tuple:
    """What invalidates the in-memory copy: the data dir, and for folders the folder mtimes."""
    if not name.startswith("folder:"):
        return (os.path.abspath(data_dir()),)
    root = Path(name.split(":", 1)[1]).expanduser()
    dirs = [root, *(d for d in root.iterdir() if d.is_dir())]
    dirs += [d for top in dirs[1:] if top.name in ("train", "test") for d in top.iterdir() if d.is_dir()]
    opts = root / "genclf.json"
    return tuple((str(d), d.stat().st_mtime_ns) for d in dirs + ([opts] if opts.is_file() else []))


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, freshness: tuple = ()) -> Dataset:
    return spec(name).load()


# ---------------------------------------------------------------- Fashion-MNIST / MNIST (IDX)


def _fmnist_dirs() -> list[Path]:
    root = data_dir()
    return [root / "fashion-mnist", root / "FashionMNIST" / "raw", DEBIAN_FMNIST]


def _idx_dir(candidates: list[Path]) -> Path | None:
    for d in candidates:
        if all(
            formats.find_file(d, f"{p}-{k}-idx{n}-ubyte") for p in ("train", "t10k") for k, n in (("images", 3), ("labels", 1))
        ):
            return d
    return None


def _same_size(d: Path, xtr: np.ndarray, xte: np.ndarray) -> None:
    if xtr.shape[1:] != xte.shape[1:]:
        raise GenclfError(f"{d}: train images are {xtr.shape[2:]} but test images {xte.shape[2:]}; re-download the files")


def _load_fmnist() -> Dataset:
    d = _idx_dir(_fmnist_dirs())
    xtr, ytr = formats.read_idx_pair(d, "train", len(FMNIST_CLASSES))
    xte, yte = formats.read_idx_pair(d, "t10k", len(FMNIST_CLASSES))
    _same_size(d, xtr, xte)
    return Dataset("fashion-mnist", FMNIST_CLASSES, xtr, ytr, xte, yte, hflip=True, source=str(d))


register(
    DatasetSpec(
        "fashion-mnist",
        "Zalando Fashion-MNIST, 28x28 grey, 10 classes (default)",
        present=lambda: _idx_dir(_fmnist_dirs()) is not None,
        load=_load_fmnist,
        remedy=lambda: (
            "run `sudo apt-get install -y dataset-fashion-mnist` (files land in /usr/share/datasets/fashion-mnist/), "
            f"or copy train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
            f"t10k-labels-idx1-ubyte.gz into {data_dir() / 'fashion-mnist'}/"
        ),
    )
)


def _mnist_dir() -> Path:
    return data_dir() / "MNIST" / "raw"


def _load_mnist() -> Dataset:
    # the folder torchvision downloads into; read with our IDX reader, which (unlike torchvision's
    # MNIST(download=False)) also accepts the .gz files that `present` accepts
    d = _mnist_dir()
    xtr, ytr = formats.read_idx_pair(d, "train", 10)
    xte, yte = formats.read_idx_pair(d, "t10k", 10)
    _same_size(d, xtr, xte)
    return Dataset("mnist", tuple(str(i) for i in range(10)), xtr, ytr, xte, yte, hflip=False, source=str(d))


register(
    DatasetSpec(
        "mnist",
        "MNIST handwritten digits, 28x28 grey, 10 classes",
        present=lambda: _idx_dir([_mnist_dir()]) is not None,
        load=_load_mnist,
        remedy=lambda: (
            "run `genclf data fetch mnist` on a machine with internet, or copy train-images-idx3-ubyte, "
            f"train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (or their .gz) into {_mnist_dir()}/"
        ),
        fetchable=True,
    )
)

# ---------------------------------------------------------------- CIFAR (python batches)

# name -> (folder, train files, test files, meta file, label key, class-names key in meta)
_CIFAR = {
    "cifar10": (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        "batches.meta",
        "labels",
        "label_names",
    ),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "meta", "fine_labels", "fine_label_names"),
}


def _cifar_present(name: str) -> bool:
    folder, train, test, meta, *_ = _CIFAR[name]
    d = data_dir() / folder
    return all((d / f).is_file() for f in [*train, *test, meta])


def _load_cifar(name: str) -> Dataset:
    folder, train, test, meta, key, names_key = _CIFAR[name]
    d = data_dir() / folder
    classes = formats.cifar_names(formats.read_cifar_batch(d / meta), names_key, d / meta)

    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for f in files:
            b = formats.read_cifar_batch(d / f)
            xs.append(formats.cifar_images(b, d / f))
            ys.append(formats.checked_labels(b.get(key), len(classes), d / f))
            if len(ys[-1]) != len(xs[-1]):
                raise GenclfError(f"{d / f} holds {len(xs[-1])} images but {len(ys[-1])} labels; re-download {name}")
        return np.concatenate(xs), np.concatenate(ys)

    return Dataset(name, classes, *read(train), *read(test), hflip=True, source=str(d))


def _cifar_remedy(name: str) -> str:
    folder, train, test, meta, *_ = _CIFAR[name]
    files = ", ".join([*train, *test, meta])
    return f"run `genclf data fetch {name}` on a machine with internet, or copy {files} into {data_dir() / folder}/"


for _name, _desc in (("cifar10", "CIFAR-10, 32x32 RGB, 10 classes"), ("cifar100", "CIFAR-100, 32x32 RGB, 100 fine classes")):
    _p = functools.partial
    register(DatasetSpec(_name, _desc, _p(_cifar_present, _name), _p(_load_cifar, _name), _p(_cifar_remedy, _name), True))


def fetch(name: str) -> Path:
    """Download a fetchable dataset into GENCLF_DATA_DIR with torchvision (needs internet)."""
    s = spec(name)
    if not s.fetchable:
        raise GenclfError(f"dataset {name!r} cannot be fetched; {s.remedy() or 'it ships with genclf'}")
    from torchvision import datasets as tvd

    cls = {"mnist": tvd.MNIST, "cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}[name]
    root = data_dir()
    root.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as e:  # network errors come in many types
        raise GenclfError(f"could not download {name} ({type(e).__name__}: {e}); {s.remedy()}") from None
    _load_cached.cache_clear()
    return root


# ---------------------------------------------------------------- sklearn digits


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.clip(d.images * (255 / 16), 0, 255).round().astype(np.uint8)[:, None]
    y = d.target.astype(np.int64)
    test = stratified_subset(y, np.arange(len(y)), 360, seed=VAL_SEED)
    train = np.setdiff1d(np.arange(len(y)), test)
    return Dataset("digits", tuple(str(i) for i in range(10)), x[train], y[train], x[test], y[test], source="sklearn")


register(DatasetSpec("digits", "sklearn 8x8 digits, 10 classes (quick demos and tests)", lambda: True, _load_digits))

# ---------------------------------------------------------------- folder:PATH


def _folder_spec(name: str) -> DatasetSpec:
    root = Path(name.split(":", 1)[1]).expanduser()
    return DatasetSpec(
        name,
        f"your images under {root}",
        present=root.is_dir,
        load=functools.partial(load_folder, root, name),
        remedy=lambda: f"no folder {root}; create it with one subfolder of images per class (optional unlabeled/)",
    )


def load_folder(root: Path, name: str | None = None, where: str | None = None) -> Dataset:
    """`root/<class>/*.png` (+ optional `unlabeled/`, optional train/ and test/ level); see `folders.read_image_folder`."""
    f = folders.read_image_folder(Path(root), seed=VAL_SEED, where=where)
    name = name or f"folder:{root}"
    return Dataset(
        name, f.classes, f.x_train, f.y_train, f.x_test, f.y_test, f.x_unlabeled, skipped=f.skipped, source=str(root)
    )
