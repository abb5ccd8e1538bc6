"""Heads: one contract over every head, plus what makes each one different."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from genclf import heads
from genclf.errors import GenclfError


def blobs(n_per: int, n_classes: int = 5, dim: int = 32, seed: int = 0, spread: float = 0.3):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(123).normal(size=(n_classes, dim)) * 3
    y = np.repeat(np.arange(n_classes), n_per)
    x = centers[y] + rng.normal(scale=spread * 3, size=(len(y), dim))
    return x.astype(np.float32), y


def test_public_api_is_what_the_dashboard_codes_against():
    assert heads.HEADS == ("logreg", "linear", "mlp", "knn", "labelprop")
    sig = inspect.signature(heads.fit_predict)
    assert list(sig.parameters)[:4] == ["head", "x_train", "y_train", "x_test"]
    for name, default in (("seed", 0), ("x_unlabeled", None), ("standardize", True)):
        assert sig.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert sig.parameters[name].default == default


@pytest.mark.parametrize("head", heads.HEADS)
def test_every_head_separates_separable_features(head):
    x, y = blobs(10, seed=0)
    xt, yt = blobs(60, seed=1)
    xu, _ = blobs(40, seed=2)
    pred = heads.fit_predict(head, x, y, xt, seed=0, x_unlabeled=xu)
    assert pred.shape == (len(xt),) and pred.dtype == np.int64
    assert (pred == yt).mean() >= 0.95, head


@pytest.mark.parametrize("head", heads.HEADS)
def test_same_seed_same_predictions(head):
    x, y = blobs(4, spread=1.0, seed=3)
    xt, _ = blobs(30, spread=1.0, seed=4)
    xu, _ = blobs(20, spread=1.0, seed=5)
    a = heads.fit_predict(head, x, y, xt, seed=7, x_unlabeled=xu)
    b = heads.fit_predict(head, x, y, xt, seed=7, x_unlabeled=xu)
    assert np.array_equal(a, b)


def two_moons(n: int, noise: float, seed: int):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    y = rng.integers(0, 2, n)
    x = np.where(y[:, None] == 0, np.c_[np.cos(t), np.sin(t)], np.c_[1 - np.cos(t), 0.5 - np.sin(t)])
    return (x + rng.normal(scale=noise, size=x.shape)).astype(np.float32), y


def test_labelprop_beats_logreg_on_two_moons_with_few_labels():
    x, y = two_moons(800, 0.06, seed=0)
    xt, yt = two_moons(400, 0.06, seed=1)
    wins = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        lab = np.concatenate([rng.choice(np.flatnonzero(y == c), 3, replace=False) for c in (0, 1)])
        unl = np.setdiff1d(np.arange(len(y)), lab)
        lp = heads.fit_predict("labelprop", x[lab], y[lab], xt, x_unlabeled=x[unl], standardize=False)
        lr = heads.fit_predict("logreg", x[lab], y[lab], xt, standardize=False)
        wins.append(((lp == yt).mean(), (lr == yt).mean()))
    lp_acc, lr_acc = np.mean(wins, axis=0)
    assert lp_acc >= 0.95 and lp_acc > lr_acc + 0.08, wins


def test_unknown_head_lists_the_valid_ones():
    x, y = blobs(2)
    with pytest.raises(GenclfError, match="unknown head 'svm'.*knn.*labelprop.*linear.*logreg.*mlp"):
        heads.fit_predict("svm", x, y, x)


def test_labelprop_needs_unlabeled_features():
    x, y = blobs(2)
    with pytest.raises(GenclfError, match="labelprop.*unlabeled"):
        heads.fit_predict("labelprop", x, y, x)
    with pytest.raises(GenclfError, match="labelprop.*unlabeled"):
        heads.fit_predict("labelprop", x, y, x, x_unlabeled=x[:0])


def test_mismatched_shapes_are_refused():
    x, y = blobs(2)
    with pytest.raises(GenclfError, match="same D"):
        heads.fit_predict("knn", x, y, x[:, :5])
    with pytest.raises(GenclfError, match="one label per"):
        heads.fit_predict("knn", x, y[:-1], x)


def test_standardization_is_fitted_on_the_shots_and_can_be_turned_off():
    x, y = blobs(6, spread=1.0, seed=8)
    xt, _ = blobs(50, spread=1.0, seed=9)
    scale = np.ones(x.shape[1], np.float32)
    scale[0] = 1000.0  # one feature on a wild scale
    plain = heads.fit_predict("knn", x, y, xt)
    scaled = heads.fit_predict("knn", x * scale, y, xt * scale)
    assert np.array_equal(plain, scaled)  # z-scoring removes per-feature scale
    raw = heads.fit_predict("knn", x * scale, y, xt * scale, standardize=False)
    assert not np.array_equal(raw, plain)  # without it, the wild feature dominates
    mean, std = heads.standardizer(x)
    assert np.allclose(mean, x.mean(0), atol=1e-5) and (std > 0).all()


def test_knn_is_cosine():
    x, y = blobs(3, seed=10)
    xt, _ = blobs(20, seed=11)
    a = heads.fit_predict("knn", x, y, xt, standardize=False)
    b = heads.fit_predict("knn", x, y, xt * np.linspace(0.1, 10, len(xt))[:, None], standardize=False)
    assert np.array_equal(a, b)  # scaling a test vector does not move its angle


def test_labelprop_does_not_look_at_test_points_together():
    # inductive: a test point's prediction does not depend on which other test points are scored
    x, y = blobs(3, spread=1.0, seed=12)
    xt, _ = blobs(40, spread=1.0, seed=13)
    xu, _ = blobs(30, spread=1.0, seed=14)
    full = heads.fit_predict("labelprop", x, y, xt, x_unlabeled=xu)
    half = heads.fit_predict("labelprop", x, y, xt[:20], x_unlabeled=xu)
    assert np.array_equal(full[:20], half)


@pytest.mark.parametrize("standardize", [False, True])
def test_logreg_in_the_span_of_the_shots_matches_plain_sklearn(standardize):
    # the D >> N shortcut (fit in the shots' span) must not change the classifier
    from sklearn.linear_model import LogisticRegression

    x, y = blobs(4, dim=300, spread=8.0, seed=20)
    xt, _ = blobs(100, dim=300, spread=8.0, seed=21)
    ours = heads.fit_predict("logreg", x, y, xt, standardize=standardize)
    if standardize:
        mean, scale = heads.standardizer(x)
        x, xt = (x - mean) / scale, (xt - mean) / scale
    ref = LogisticRegression(C=1, max_iter=5000, tol=1e-8).fit(x, y).predict(xt)
    assert (ours == ref).mean() >= 0.97
    assert 0.3 < (ref == np.repeat(np.arange(5), 100)).mean() < 1.0  # a non-trivial problem


def test_cnn_baseline_learns_simple_shapes(tiny_images, tiny_labels):
    idx = np.arange(48)
    train, test = idx[idx % 2 == 0], idx[idx % 2 == 1]
    pred = heads.cnn_fit_predict(tiny_images[train], tiny_labels[train], tiny_images[test], seed=0, steps=60)
    assert pred.dtype == np.int64 and (pred == tiny_labels[test]).mean() >= 0.9
    again = heads.cnn_fit_predict(tiny_images[train], tiny_labels[train], tiny_images[test], seed=0, steps=60)
    assert np.array_equal(pred, again)


def test_labelprop_graph_space_ignores_feature_units_in_high_dimensions():
    # above LABELPROP_DIMS features the graph lives in a PCA space fitted on shots + pool; z-scoring
    # first makes it blind to per-feature units, so rescaled features give the same predictions
    dim = heads.LABELPROP_DIMS + 72
    x, y = blobs(4, dim=dim, spread=1.0, seed=20)
    xt, _ = blobs(30, dim=dim, spread=1.0, seed=21)
    xu, _ = blobs(60, dim=dim, spread=1.0, seed=22)
    scale = np.random.default_rng(0).uniform(0.5, 2, dim).astype(np.float32)
    a = heads.fit_predict("labelprop", x, y, xt, x_unlabeled=xu)
    b = heads.fit_predict("labelprop", x * scale + 3, y, xt * scale + 3, x_unlabeled=xu * scale + 3, standardize=False)
    assert np.mean(a == b) >= 0.99


# ------------------------------------------------------------------ probabilities (Explore's colour by confidence)


@pytest.mark.parametrize("head", heads.HEADS)
@pytest.mark.parametrize("standardize", [True, False])
def test_probabilities_sum_to_one_and_argmax_is_the_prediction(head, standardize):
    x, y = blobs(4, spread=1.0, seed=30)
    xt, _ = blobs(40, spread=1.0, seed=31)
    xu, _ = blobs(30, spread=1.0, seed=32)
    s = heads.fit_predict_proba(head, x, y, xt, seed=3, x_unlabeled=xu, standardize=standardize)
    assert s.proba.shape == (len(xt), 5) and s.proba.dtype == np.float32 and list(s.classes) == [0, 1, 2, 3, 4]
    assert np.allclose(s.proba.sum(1), 1, atol=1e-5) and (s.proba >= 0).all()
    assert np.array_equal(s.classes[s.proba.argmax(1)], s.pred)
    # the same labels as fit_predict, and a confidence that says something: higher where the head is right
    assert np.array_equal(s.pred, heads.fit_predict(head, x, y, xt, seed=3, x_unlabeled=xu, standardize=standardize))
    assert s.confidence.shape == (len(xt),) and ((s.confidence > 1 / 5 - 1e-6) & (s.confidence <= 1 + 1e-6)).all()
    assert len(np.unique(s.confidence.round(4))) > 1


def test_probability_columns_are_the_classes_present_in_the_shots():
    x, y = blobs(3, seed=33)
    xt, _ = blobs(10, seed=34)
    keep = y != 2  # a representative pick can miss a class
    s = heads.fit_predict_proba("logreg", x[keep], y[keep] * 10, xt)
    assert list(s.classes) == [0, 10, 30, 40] and s.proba.shape == (len(xt), 4) and set(s.pred) <= {0, 10, 30, 40}
    one = heads.fit_predict_proba("logreg", x[y == 1], y[y == 1], xt)  # a single class: certain, never NaN
    assert np.array_equal(one.proba, np.ones((len(xt), 1))) and (one.pred == 1).all()
    empty = heads.fit_predict_proba("knn", x, y, xt[:0])
    assert empty.proba.shape == (0, 5) and empty.confidence.shape == (0,)


def test_knn_confidence_is_a_softmax_over_each_class_best_cosine():
    x = np.array([[1, 0], [0, 1]], np.float32)
    xt = np.array([[3, 0], [1, 1], [0.2, 5]], np.float32)  # on class 0, halfway, near class 1 (norms differ)
    s = heads.fit_predict_proba("knn", x, np.array([0, 1]), xt, standardize=False)
    assert list(s.pred[[0, 2]]) == [0, 1] and np.allclose(s.proba[1], 0.5)
    want = 1 / (1 + np.exp(-(1 - 0) / heads.KNN_TEMPERATURE))  # cosines 1 and 0: the test row's length is divided out
    assert np.isclose(s.confidence[0], want, atol=1e-5)


def test_cnn_probabilities(tiny_images, tiny_labels):
    idx = np.arange(48)
    train, test = idx[idx % 2 == 0], idx[idx % 2 == 1]
    s = heads.cnn_fit_predict_proba(tiny_images[train], tiny_labels[train], tiny_images[test], seed=0, steps=20)
    assert np.allclose(s.proba.sum(1), 1, atol=1e-5) and np.array_equal(s.classes[s.proba.argmax(1)], s.pred)
    assert np.array_equal(s.pred, heads.cnn_fit_predict(tiny_images[train], tiny_labels[train], tiny_images[test], steps=20))
