"""Experiments: the protocol (disjoint splits, label-blind selection, val-only choices), rows and sweeps."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from genclf import data, experiments
from genclf.errors import GenclfError
from genclf.experiments import rows as rows_io

DS = "digits"


def test_public_api_is_what_the_dashboard_codes_against():
    assert experiments.STRATEGIES == ("random", "representative")
    sig = inspect.signature(experiments.few_shot)
    assert list(sig.parameters) == ["dataset", "backbone", "head", "shots", "seed", "t", "blocks", "strategy", "test_limit",
                                    "progress"]  # fmt: skip
    assert list(inspect.signature(experiments.representative_indices).parameters) == ["features_pool", "budget", "seed"]


def test_few_shot_result_keys_shapes_and_baseline():
    r = experiments.few_shot(DS, "pixels", "logreg", 3, 0)
    ds = data.load(DS)
    for key in experiments.ROW_FIELDS + ("y_test", "pred", "test_idx", "shot_idx", "per_class", "confusion"):
        assert key in r, key
    assert 0.5 < r["accuracy"] <= 1 and r["split"] == "test" and r["n_eval"] == len(ds.y_test)
    assert r["baseline_accuracy"] == r["accuracy"]  # pixels + logreg *is* the baseline, on the same shots
    assert np.array_equal(r["y_test"], ds.y_test[r["test_idx"]])
    assert np.isclose(r["accuracy"], (r["pred"] == r["y_test"]).mean())
    assert r["confusion"].shape == (10, 10) and r["confusion"].sum() == len(r["y_test"])
    assert np.allclose(r["per_class"], np.diag(r["confusion"]) / r["confusion"].sum(1))
    assert np.array_equal(np.bincount(ds.y_train[r["shot_idx"]]), np.full(10, 3))
    sub = experiments.few_shot(DS, "pixels", "knn", 3, 0, test_limit=100)
    assert len(sub["test_idx"]) == 100 and np.array_equal(sub["shot_idx"], r["shot_idx"])


def test_few_shot_stores_each_test_image_confidence():
    r = experiments.few_shot(DS, "pixels", "logreg", 3, 0)
    conf = r["confidence"]
    assert conf.shape == r["pred"].shape and conf.dtype == np.float32 and ((conf > 0.1 - 1e-6) & (conf <= 1)).all()
    ok = r["pred"] == r["y_test"]
    assert conf[ok].mean() > conf[~ok].mean()  # the head is surer where it is right
    assert "confidence" not in experiments.row_of(r)  # an array: kept out of the CSV row
    cnn = experiments.few_shot(DS, "cnn", "cnn", 1, 0, test_limit=50)
    assert cnn["confidence"].shape == (50,)


def test_shots_are_disjoint_from_validation_and_seeded():
    ds = data.load(DS)
    s = data.splits(ds)
    a = experiments.few_shot(DS, "pixels", "knn", 5, 0)["shot_idx"]
    b = experiments.few_shot(DS, "pixels", "knn", 5, 1)["shot_idx"]
    rep = experiments.few_shot(DS, "pixels", "knn", 5, 0, strategy="representative")["shot_idx"]
    val = experiments.eval_indices(ds, "val", experiments.VAL_LIMIT)
    for shots in (a, b, rep):
        assert len(np.unique(shots)) == len(shots) == 50
        assert np.isin(shots, s.pool).all() and not np.isin(shots, s.val).any() and not np.isin(shots, val).any()
    assert not np.array_equal(np.sort(a), np.sort(b))
    assert np.array_equal(a, experiments.few_shot(DS, "pixels", "knn", 5, 0)["shot_idx"])
    assert not np.isin(experiments.pool_indices(ds), s.val).any()


def test_representative_indices_budget_and_determinism():
    x = np.random.default_rng(0).normal(size=(300, 40)).astype(np.float32)
    p = experiments.representative_indices(x, 12, seed=0)
    assert len(p) == len(np.unique(p)) == 12 and p.min() >= 0 and p.max() < 300
    assert np.array_equal(p, experiments.representative_indices(x, 12, seed=0))
    assert len(experiments.representative_indices(x, 80, seed=1)) == 80  # MiniBatchKMeans path
    with pytest.raises(GenclfError, match="budget"):
        experiments.representative_indices(x, 301)


def test_representative_picks_typical_points_not_outliers():
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(200, 2)) * 0.1 + np.array([[5.0, 0.0]])
    outliers = rng.normal(size=(5, 2)) * 0.1 + np.array([[5.0, 3.0]])  # a tiny, sparse group
    p = experiments.representative_indices(np.concatenate([dense, outliers]).astype(np.float32), 1, seed=0)
    assert p[0] < 200 and np.linalg.norm(dense[p[0]] - dense.mean(0)) < 0.1


def test_representative_never_reads_labels(monkeypatch):
    """Same images and splits, labels shuffled inside the pool: the same picks."""
    ds = data.load(DS)
    before = experiments.few_shot(DS, "pixels", "logreg", 2, 0, strategy="representative")["shot_idx"]
    s = data.splits(ds)
    y = ds.y_train.copy()
    y[s.pool] = np.random.default_rng(1).permutation(y[s.pool])
    shuffled = data.Dataset(ds.name, ds.classes, ds.x_train, y, ds.x_test, ds.y_test)
    shuffled.__dict__["_splits"] = ds.__dict__["_splits"]  # the validation split is fixed, as in the protocol
    monkeypatch.setattr(data, "load", lambda name=DS: shuffled)
    assert shuffled.fingerprint != ds.fingerprint  # really other labels (and other cache keys)
    after = experiments.few_shot(DS, "pixels", "logreg", 2, 0, strategy="representative")["shot_idx"]
    assert np.array_equal(before, after)


def test_cnn_baseline_runs_on_the_same_shots():
    cnn = experiments.few_shot(DS, "cnn", "ignored", 2, 0, test_limit=60)
    pix = experiments.few_shot(DS, "pixels", "logreg", 2, 0, test_limit=60)
    assert cnn["head"] == "cnn" and np.array_equal(cnn["shot_idx"], pix["shot_idx"])
    assert cnn["baseline_accuracy"] == pix["accuracy"] and 0 <= cnn["accuracy"] <= 1


def test_labelprop_uses_the_pool_and_runs():
    r = experiments.few_shot(DS, "pixels", "labelprop", 2, 0)
    assert r["accuracy"] > 0.5


def test_bad_inputs_are_refused():
    with pytest.raises(GenclfError, match="unknown head"):
        experiments.few_shot(DS, "pixels", "svm", 1, 0)
    with pytest.raises(GenclfError, match="unknown strategy.*random, representative"):
        experiments.few_shot(DS, "pixels", "knn", 1, 0, strategy="greedy")
    with pytest.raises(GenclfError, match="k <= "):
        experiments.few_shot(DS, "pixels", "knn", 10_000, 0)
    with pytest.raises(GenclfError, match="empty list of shots"):
        experiments.check_shots(data.load(DS), [])
    with pytest.raises(GenclfError, match="fusion.*pixels"):
        experiments.few_shot(DS, "pixels", "knn", 1, 0, t=[10, 50])
    with pytest.raises(GenclfError, match="no timestep"):
        experiments.few_shot(DS, "pixels", "knn", 1, 0, t=10)


def test_ddpm_t_fusion_and_default_t(use_tiny_runs):
    one = experiments.few_shot(DS, "ddpm", "logreg", 1, 0, t=10, test_limit=50)
    fused = experiments.few_shot(DS, "ddpm", "logreg", 1, 0, t=[10, 50], test_limit=50)
    default = experiments.few_shot(DS, "ddpm", "knn", 1, 0, test_limit=50)
    assert one["t"] == 10 and fused["t"] == [10, 50] and default["t"] == experiments.DEFAULT_T
    assert len(one["config_hash"]) == 16 and one["config_hash"] == fused["config_hash"]
    with pytest.raises(GenclfError, match=r"outside \[0, 999\]"):
        experiments.few_shot(DS, "ddpm", "logreg", 1, 0, t=1000)


# ------------------------------------------------------------------ sweeps with a known answer


def peaked_features(best_t: int):
    """Class signal that peaks at t = best_t on a log(1+t) axis; deterministic per image index."""
    y = data.load(DS).y_train
    centers = np.random.default_rng(0).normal(size=(10, 16))

    def fn(t, idx, role):
        strength = 2.0 * np.exp(-((np.log1p(t) - np.log1p(best_t)) ** 2))
        noise = np.stack([np.random.default_rng(int(i)).normal(size=16) for i in idx])
        return (centers[y[idx]] * strength + noise).astype(np.float32)

    return fn


def test_sweep_t_finds_the_known_best_t_by_validation_and_by_cv():
    res = experiments.sweep_t(DS, head="logreg", shots=5, seeds=2, grid=[0, 10, 50, 300, 750], feature_fn=peaked_features(50))
    assert res["best_t"] == 50 and res["best_t_cv"] == 50
    assert [c["candidate"] for c in res["curve"]] == [0, 10, 50, 300, 750]
    assert len(res["rows"]) == 10 and {r["split"] for r in res["rows"]} == {"val"}
    accs = [c["accuracy"] for c in res["curve"]]
    assert accs[2] > accs[0] + 0.2 and accs[2] > accs[4] + 0.2


def test_sweep_cv_needs_two_shots():
    res = experiments.sweep_t(DS, shots=1, seeds=1, grid=[0, 50], feature_fn=peaked_features(50))
    assert res["best_t"] == 50 and res["best_t_cv"] is None


def test_sweep_blocks_picks_the_informative_set():
    good = peaked_features(0)

    def fn(blocks, idx, role):
        x = good(0, idx, role)
        return x if "good" in blocks else np.random.default_rng(len(idx)).normal(size=x.shape).astype(np.float32)

    res = experiments.sweep_blocks(DS, "anything", shots=3, seeds=1, candidates=[["bad"], ["good"]], feature_fn=fn)
    assert res["best_blocks"] == ["good"]


def test_sweeps_on_a_real_tiny_backbone(use_tiny_runs):
    st = experiments.sweep_t(DS, "ddpm", shots=2, seeds=1, grid=[0, 100], val_limit=60)
    assert st["best_t"] in (0, 100) and len(st["rows"]) == 2 and st["rows"][0]["n_eval"] == 60
    sb = experiments.sweep_blocks(DS, "vae", shots=2, seeds=1, val_limit=60)
    assert sb["best_blocks"] in [c["candidate"] for c in sb["curve"]]
    with pytest.raises(GenclfError, match="sweep-t needs a backbone with a timestep"):
        experiments.sweep_t(DS, "vae", shots=2, seeds=1, grid=[0])


# ------------------------------------------------------------------ rows and CSV


def test_csv_schema_roundtrip(tmp_path):
    rows = [experiments.row_of(experiments.few_shot(DS, "pixels", "knn", 1, s)) for s in range(2)]
    rows.append({**rows[0], "backbone": "ddpm", "t": [10, 50], "blocks": ["mid_block", "up_blocks.0"], "cv_accuracy": 0.5})
    path = rows_io.write_csv(rows, tmp_path / "x" / "runs.csv")
    header = path.read_text().splitlines()[0].split(",")
    assert tuple(header[: len(experiments.ROW_FIELDS)]) == experiments.ROW_FIELDS
    assert "cv_accuracy" in header
    back = rows_io.read_csv(path)
    assert len(back) == 3 and back[0]["shots"] == 1 and isinstance(back[0]["accuracy"], float)
    assert back[2]["t"] == "10+50" and back[2]["blocks"] == "mid_block+up_blocks.0" and back[0]["t"] == ""
    for r in back:
        assert r["time"] and r["config_hash"] and r["dataset"] == DS and 0 <= r["accuracy"] <= 1


def test_block_sweep_also_tries_the_default_blocks_at_other_pooling_grids():
    from genclf.backbones.registry import get

    bb = get("ddpm").from_preset("tiny", (1, 8, 8))
    cands = experiments.block_candidates(bb)
    for b in bb.default_blocks():
        assert [f"{b}@2"] in cands and [f"{b}@7"] in cands
    assert all(bb.check_blocks(c) == c for c in cands)
    assert not any("@" in b for c in experiments.block_candidates(get("vae").from_preset("tiny", (1, 8, 8))) for b in c)


# ------------------------------------------------------------------ the seed protocol and paired leads


def test_validation_sweeps_and_test_scoring_never_share_a_shot_seed():
    from genclf.experiments import report

    st = experiments.sweep_t(DS, shots=2, seeds=3, grid=[0, 50], feature_fn=peaked_features(50))
    sb = experiments.sweep_blocks(DS, "x", shots=2, seeds=3, candidates=[["a"]], feature_fn=lambda c, i, r: np.eye(64)[i % 64])
    scored = report.run_eval(DS, ["pixels"], ["logreg"], [2], seeds=3)
    val = {r["seed"] for r in st["rows"] + sb["rows"]}
    test = {r["seed"] for r in scored}
    assert val and test and not val & test, (val, test)
    assert min(val) >= rows_io.VAL_SEED0 > max(test)
    ds = data.load(DS)
    val_sets = {tuple(data.shot_indices(ds, 2, s)) for s in val}
    assert not val_sets & {tuple(data.shot_indices(ds, 2, s)) for s in test}  # so no scored shot set was tuned on
    with pytest.raises(GenclfError, match="kept for validation"):
        rows_io.scoring_seeds(rows_io.VAL_SEED0 + 1)


def test_paired_lead_pairs_by_seed_and_gives_a_t_interval():
    def row(label, seed, acc, split="test"):
        return {"pipeline": label, "shots": 5, "seed": seed, "split": split, "strategy": "random", "accuracy": acc}

    base = [0.50, 0.60, 0.40, 0.55]
    rows = [row("pixels + logreg", s, a) for s, a in enumerate(base)]
    rows += [row("ddpm + logreg", s, a + d) for s, (a, d) in enumerate(zip(base, [0.10, 0.12, 0.08, 0.10]))]
    rows += [row("ddpm + logreg", 9, 0.99)]  # no baseline on seed 9: not a pair
    m, half, n = rows_io.paired_lead(rows, "ddpm + logreg", 5)
    assert n == 4 and np.isclose(m, 0.10)
    from scipy.stats import t

    assert np.isclose(half, t.ppf(0.975, 3) * np.std([0.10, 0.12, 0.08, 0.10], ddof=1) / 2)
    # the unpaired spread (0.08 std) is much wider than the paired one: the pairing is what makes the lead tight
    assert half < 0.05 < np.std(base)
    assert rows_io.lead_text(m, half) == "+10.0 ± 2.6 points over pixels + logreg on the same shots"
    rows += [row("vae + logreg", s, 0.9, "val") for s in (1000, 1001)] + [row("ddpm + logreg", 1000, 0.5, "val")]
    assert rows_io.best_on_val(rows, ["ddpm + logreg", "vae + logreg"], 5) == "vae + logreg"
    assert rows_io.points(-0.00001) == "+0.0" and rows_io.points(0.0751) == "+7.5"
