"""Classification heads: pure functions over frozen (N, D) float32 features (the DINO/MAE habit).

    pred = fit_predict("logreg", x_train, y_train, x_test, seed=0)     # (N_test,) int64
    s = fit_predict_proba("logreg", x_train, y_train, x_test, seed=0)  # s.pred, s.proba (N_test, C), s.classes (C,)

Every head sees the same preprocessing: features are standardized with statistics fitted on the
labeled shots only (`standardize=True`). Raw pixels must be passed with `standardize=False`:
REFERENCE.md shows that standardizing pixels handicaps the baseline.

- `logreg`: sklearn LogisticRegression, C=1 (the pixel baseline of REFERENCE.md).
- `linear`: one torch Linear layer ("Lin" in the original work).
- `mlp`: Linear-ReLU-Linear with 128 hidden units ("NonLin").
- `knn`: cosine 1-nearest-neighbour (REFERENCE.md's pixels + 1-NN). Its probabilities are a score, not a
  calibrated model: a softmax (temperature KNN_TEMPERATURE) over each class's best cosine similarity.
- `labelprop`: label spreading (Zhou et al. 2004) over a kNN graph of the labeled shots plus an
  unlabeled pool, then inductive prediction for the test points from their pool neighbours; test
  labels are never used. Its graph space (z-score, whitened PCA, unit length) is fitted on the
  shots plus the pool, so `standardize` does not change it.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import NamedTuple

import numpy as np

from genclf.errors import GenclfError, unknown

HEADS: tuple[str, ...] = ("logreg", "linear", "mlp", "knn", "labelprop")
HIDDEN = 128
LABELPROP_NEIGHBORS = 10
LABELPROP_DIMS = 128  # whitened PCA components of the graph space (see _graph_space)
ALPHA = 0.99  # Zhou et al. 2004; sklearn's 0.2 stalls before labels reach far points of the graph
KNN_TEMPERATURE = 0.07  # softmax over cosine similarities, as in DINO's kNN eval (Wu et al. 2018)


class Scores(NamedTuple):
    """What fit_predict_proba returns: pred (M,) int64; proba (M, C) float32, each row sums to 1 and its argmax is
    pred; classes (C,) int64, the labels of proba's columns (the classes present in y_train, ascending)."""

    pred: np.ndarray
    proba: np.ndarray
    classes: np.ndarray

    @property
    def confidence(self) -> np.ndarray:
        """(M,) float32 in (0, 1]: the probability of the predicted class."""
        return self.proba.max(1) if self.proba.size else np.zeros(len(self.pred), np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def check_head(head: str) -> str:
    if head not in HEADS:
        raise unknown("head", head, HEADS)
    return head


def standardizer(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) per feature, fitted on the shots.

    With 10 shots a feature can be (almost) constant on the shots but not on the test set; its
    scale is floored at 10% of the median scale so it cannot blow up to dominate the head.
    """
    mean = x_train.mean(0)
    std = x_train.std(0)
    floor = max(0.1 * float(np.median(std)), 1e-6)
    return mean.astype(np.float32), np.maximum(std, floor).astype(np.float32)


def _prep(x: np.ndarray, stats: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x if stats is None else (x - stats[0]) / stats[1]


def _span_view(x_train: np.ndarray, x_test: np.ndarray, stats) -> tuple[np.ndarray, np.ndarray]:
    """Standardized features, expressed in an orthonormal basis of the shots' span when D >> N.

    For an L2-penalized linear model the weights lie in the span of the training rows (representer
    theorem), so this is the same problem in N instead of D dimensions: 2048-d fits become 100-d.
    Standardization is folded into the test projection, saving a pass over the (M, D) test matrix.
    """
    x = _prep(x_train, stats)
    n, d = x.shape
    if 2 * n > d:
        return x, _prep(x_test, stats)
    q = np.linalg.qr(x.T)[0].astype(np.float32)  # (D, N)
    if stats is None:
        return x @ q, np.asarray(x_test, np.float32) @ q
    mean, scale = stats
    return x @ q, np.asarray(x_test, np.float32) @ (q / scale[:, None]) - (mean / scale) @ q


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _check(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> None:
    if x_train.ndim != 2 or x_test.ndim != 2 or x_train.shape[1] != x_test.shape[1]:
        raise GenclfError(f"features must be (N, D) with the same D; got train {x_train.shape} and test {x_test.shape}")
    if len(x_train) != len(y_train) or len(x_train) == 0:
        raise GenclfError(f"need one label per training row; got {len(x_train)} rows and {len(y_train)} labels")


# ------------------------------------------------------------------ sklearn heads
# Each head returns (pred (M,), proba (M, C) over np.unique(y) or None when `proba` is False: the report's sweeps
# call thousands of heads and only need labels).


def _logreg(x, y, xt, seed: int, C: float = 1.0, proba: bool = False):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y)) < 2:
        return np.full(len(xt), y[0]), np.ones((len(xt), 1), np.float32) if proba else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=C, random_state=seed).fit(x, y)  # sklearn defaults, as REFERENCE.md's baseline
    return clf.predict(xt), clf.predict_proba(xt).astype(np.float32) if proba else None


def _knn(x, y, xt, stats=None, proba: bool = False):
    """Cosine 1-NN. x: standardized shots; xt: raw test rows, standardized on the fly by folding the
    statistics into the product (a test row's own norm does not change its nearest neighbour). Its proba: a
    softmax over each class's best cosine (dividing by the test row's norm keeps the argmax)."""
    xn = _l2(x)
    if stats is None:
        sim = xt @ xn.T
    else:
        mean, scale = stats
        sim = xt @ (xn / scale).T - (mean / scale) @ xn.T
    pred = y[sim.argmax(1)]
    if not proba:
        return pred, None
    cos = sim / np.maximum(_row_norms(xt, stats), 1e-12)[:, None]
    best = np.stack([cos[:, y == c].max(1) for c in np.unique(y)], 1)
    return pred, _softmax(best / KNN_TEMPERATURE)


def _row_norms(x: np.ndarray, stats, chunk: int = 4096) -> np.ndarray:
    """Norms of the standardized rows of x, a chunk at a time (never a second (M, D) copy)."""
    out = np.empty(len(x), np.float32)
    for i in range(0, len(x), chunk):
        out[i : i + chunk] = np.linalg.norm(_prep(x[i : i + chunk], stats), axis=1)
    return out


def _graph_space(x: np.ndarray, xu: np.ndarray, dims: int = LABELPROP_DIMS):
    """The space the labelprop graph lives in, fitted on the shots plus the unlabeled pool (never a
    label): z-scored; above `dims` features, also PCA to `dims` whitened components and unit length
    (so Euclidean kNN is cosine kNN). Low-dimensional features stay z-scored only: whitening every
    direction would give pure-noise directions the same weight as the class structure.

    Measured on the Fashion-MNIST validation split (ddpm t=35 up_blocks.0, 5 seeds, 5k pool): this
    lifts label spreading from 51.1 / 66.3 / 72.3 to 58.3 / 70.8 / 73.5 at k = 1 / 5 / 10 over the
    same graph built on shot-standardized features (pixels and vae gain too). The price: when the
    class structure sits in a few directions and the rest is isotropic noise (bench/heads.py's
    synthetic blobs), whitening lifts the noise to the signal's scale and label spreading drops
    to about chance; real image features, whose spectrum decays, do not behave like that."""
    ref = np.concatenate([x, xu])
    mean, scale = standardizer(ref)
    z = lambda a: ((a - mean) / scale).astype(np.float32)
    if ref.shape[1] <= dims or len(ref) <= dims:
        return z
    from sklearn.decomposition import PCA

    pca = PCA(dims, whiten=True, random_state=0).fit(z(ref))
    return lambda a: _l2(pca.transform(z(a)).astype(np.float32))


def _labelprop(x, y, xt, xu, n_neighbors: int = LABELPROP_NEIGHBORS, proba: bool = False):
    from sklearn.semi_supervised import LabelSpreading

    space = _graph_space(x, xu)
    x, xt, xu = space(x), space(xt), space(xu)
    xa = np.concatenate([x, xu])
    ya = np.concatenate([y, np.full(len(xu), -1)])
    nn = min(n_neighbors, len(xa) - 1)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")  # convergence and 0/0 on isolated graph components
        ls = LabelSpreading(kernel="knn", n_neighbors=nn, alpha=ALPHA, max_iter=1000).fit(xa, ya)
        p = np.nan_to_num(ls.predict_proba(xt)).astype(np.float32)
    pred = ls.classes_[p.argmax(1)]
    lost = p.max(1) <= 0  # neighbours all in components no label reached: fall back to 1-NN
    if lost.any():
        pred[lost], p_lost = _knn(x, y, xt[lost], proba=proba)
        if proba:
            p[lost] = p_lost
    return pred, p / p.sum(1, keepdims=True) if proba else None


# ------------------------------------------------------------------ torch heads


def _torch_head(
    x, y, xt, seed: int, hidden: int | None, proba: bool = False, steps: int = 300, lr: float = 1e-2, wd: float = 1e-4
):
    """Full-batch Adam on cross-entropy; seeded without touching the global torch RNG. proba: softmax of the logits."""

    with _one_torch_thread():
        return _torch_fit_predict(x, y, xt, seed, hidden, steps, lr, wd, np.unique(y), proba)


@contextlib.contextmanager
def _one_torch_thread():
    """Small torch work on a busy 2-core box: extra intra-op threads only spin against each other (5-10x slower)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _torch_fit_predict(x, y, xt, seed, hidden, steps, lr, wd, classes, proba):
    import torch
    from torch import nn

    yi = torch.as_tensor(np.searchsorted(classes, y))
    xb, d = torch.as_tensor(x), x.shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if hidden is None:
            model = nn.Linear(d, len(classes))
        else:
            model = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, len(classes)))
            lr = lr / 10
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    with torch.enable_grad():
        for _ in range(steps):
            loss = nn.functional.cross_entropy(model(xb), yi)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.inference_mode():
        logits = torch.cat([model(torch.as_tensor(xt[i : i + 8192])) for i in range(0, len(xt), 8192)])
    pred = classes[logits.argmax(1).numpy()]
    return pred, torch.softmax(logits.double(), 1).float().numpy() if proba else None


# ------------------------------------------------------------------ entry point


def fit_predict(
    head: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    seed: int = 0,
    x_unlabeled: np.ndarray | None = None,
    standardize: bool = True,
) -> np.ndarray:
    """Fit `head` on (x_train (N, D), y_train (N,) ints) and predict x_test (M, D) -> (M,) int64.

    `x_unlabeled` (U, D): the unlabeled pool, required by (and only used by) `labelprop`.
    `standardize`: z-score with statistics of x_train; pass False for raw pixels.
    """
    return _fit(head, x_train, y_train, x_test, seed, x_unlabeled, standardize, False)[0]


def fit_predict_proba(
    head: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    seed: int = 0,
    x_unlabeled: np.ndarray | None = None,
    standardize: bool = True,
) -> Scores:
    """fit_predict plus class probabilities: Scores(pred (M,), proba (M, C), classes (C,)), the same `pred` as
    fit_predict. logreg, linear, mlp: the model's softmax; labelprop: label spreading's class distribution; knn: a
    similarity score (see _knn), not a calibrated probability."""
    pred, proba = _fit(head, x_train, y_train, x_test, seed, x_unlabeled, standardize, True)
    return Scores(pred, proba, np.unique(np.asarray(y_train).astype(np.int64)))


def _fit(head, x_train, y_train, x_test, seed, x_unlabeled, standardize, proba) -> tuple[np.ndarray, np.ndarray | None]:
    check_head(head)
    x_train, x_test = np.asarray(x_train, np.float32), np.asarray(x_test, np.float32)
    y_train = np.asarray(y_train).astype(np.int64)
    _check(x_train, y_train, x_test)
    if head == "labelprop" and (x_unlabeled is None or len(x_unlabeled) == 0):
        raise GenclfError("head 'labelprop' needs unlabeled features (x_unlabeled); pick another head or pass the pool")
    if len(x_test) == 0:
        return np.zeros(0, np.int64), np.zeros((0, len(np.unique(y_train))), np.float32) if proba else None
    if head == "labelprop":  # big neighbour searches: let BLAS use every core; its own z-scoring (see _graph_space)
        pred, p = _labelprop(x_train, y_train, x_test, np.asarray(x_unlabeled, np.float32), proba=proba)
        return np.asarray(pred, np.int64), p
    from threadpoolctl import threadpool_limits

    # the other heads do small linear algebra, where BLAS threads only fight (QR: 50 ms alone, 4 s contended)
    with threadpool_limits(1, user_api="blas"):
        return _small_head(head, x_train, y_train, x_test, seed, standardize, proba)


def _small_head(head, x_train, y_train, x_test, seed, standardize, proba):
    stats = standardizer(x_train) if standardize else None
    if head == "knn":
        pred, p = _knn(_prep(x_train, stats), y_train, x_test, stats, proba)
    else:
        x, xt = _span_view(x_train, x_test, stats)
        if head == "logreg":
            pred, p = _logreg(x, y_train, xt, seed, proba=proba)
        else:
            pred, p = _torch_head(x, y_train, xt, seed, hidden=HIDDEN if head == "mlp" else None, proba=proba)
    return np.asarray(pred, np.int64), p


# ------------------------------------------------------------------ the from-scratch baseline


def cnn_fit_predict(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    seed: int = 0,
    hflip: bool = False,
    steps: int | None = None,
) -> np.ndarray:
    """A small CNN trained from scratch on the labeled images only: the original work's kind of baseline.

    x_train, x_test: uint8 (N, C, H, W). Augmentation: random shifts of up to 2 pixels, plus
    horizontal flips where the dataset allows them. `steps` (Adam, batch 64) defaults to about 40
    epochs, clipped to [400, 1000] so few shots still train and k=100 stays under a minute on a CPU.
    """
    return cnn_fit_predict_proba(x_train, y_train, x_test, seed=seed, hflip=hflip, steps=steps).pred


def cnn_fit_predict_proba(x_train, y_train, x_test, *, seed: int = 0, hflip: bool = False, steps: int | None = None) -> Scores:
    """cnn_fit_predict plus the softmax of its logits: Scores(pred, proba (M, C), classes)."""
    with _one_torch_thread():
        return _cnn(x_train, y_train, x_test, seed, hflip, steps)


def _cnn(x_train, y_train, x_test, seed, hflip, steps) -> Scores:
    import torch
    from torch import nn

    classes = np.unique(y_train)
    yi = torch.as_tensor(np.searchsorted(classes, y_train))
    to_t = lambda a: torch.as_tensor(np.asarray(a, np.float32) / 127.5 - 1.0)
    xb, c = to_t(x_train), x_train.shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        block = lambda i, o: [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]
        model = nn.Sequential(*block(c, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2), *block(32, 64),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(64, len(classes)))  # fmt: skip
        gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)
    bs = min(64, len(xb))
    steps = steps or int(np.clip(40 * len(xb) // bs, 400, 1000))
    with torch.enable_grad():
        model.train()
        for _ in range(steps):
            i = torch.randint(len(xb), (bs,), generator=gen)
            x = nn.functional.pad(xb[i], (2, 2, 2, 2), value=-1.0)
            dx, dy = torch.randint(0, 5, (2,), generator=gen).tolist()
            x = x[..., dy : dy + xb.shape[2], dx : dx + xb.shape[3]]
            if hflip:
                flip = torch.rand(bs, generator=gen) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            loss = nn.functional.cross_entropy(model(x), yi[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.inference_mode():
        logits = torch.cat([model(to_t(x_test[j : j + 1024])) for j in range(0, len(x_test), 1024)])
    pred = classes[logits.argmax(1).numpy()].astype(np.int64)
    return Scores(pred, torch.softmax(logits.double(), 1).float().numpy(), classes.astype(np.int64))
