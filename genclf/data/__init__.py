"""Datasets: the registry (name -> uint8 images + labels + fingerprint), file formats, splits and shots, uploads.

    from genclf import data
    ds = data.load("fashion-mnist")          # Dataset: x_train (N, C, H, W) uint8, y_train, ..., fingerprint
    idx = data.shot_indices(ds, k=10, seed=0)  # stratified, seeded k-shot set from train minus validation

The lowest layer with `genclf.cache`: it imports only `genclf.errors` and `genclf.atomic`.
Submodules: `registry` (datasets and loaders, `slug`), `formats` (IDX, CIFAR batches), `folders` (image
folders and their genclf.json), `splits` (validation split, stratified subsets, shots), `upload` (zip of
class folders -> dataset, hostile zips refused), `images` (grids, thumbnails, PNG bytes).
"""

from genclf.data.registry import (
    DEBIAN_FMNIST,
    DEFAULT_DATASET,
    FMNIST_CLASSES,
    REGISTRY,
    Dataset,
    DatasetSpec,
    data_dir,
    dataset_names,
    fetch,
    load,
    load_folder,
    register,
    slug,
    spec,
)
from genclf.data.splits import VAL_SEED, Splits, max_shots, sample_shots, shot_indices, splits, stratified_subset

__all__ = [
    "DEBIAN_FMNIST", "DEFAULT_DATASET", "FMNIST_CLASSES", "REGISTRY", "VAL_SEED", "Dataset", "DatasetSpec", "Splits",
    "data_dir", "dataset_names", "fetch", "load", "load_folder", "max_shots", "register", "sample_shots",
    "shot_indices", "slug", "spec", "splits", "stratified_subset",
]  # fmt: skip
