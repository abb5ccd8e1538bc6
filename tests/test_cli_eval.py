"""CLI verbs eval, sweep-t, sweep-blocks, report: outputs, schemas and one-line errors with exit code 2."""

from __future__ import annotations

import csv
import json

import pytest

from genclf import experiments


def test_eval_json_and_csv_schema(run, tmp_path):
    rc, out, _ = run("eval", "--dataset", "digits", "--backbone", "pixels", "--head", "logreg,knn", "--shots", "1,3",
                     "--seeds", "2", "--json", "--out", "e.csv")  # fmt: skip
    assert rc == 0
    rows = json.loads(out)
    assert len(rows) == 2 * 2 * 2
    for r in rows:
        assert {"backbone", "head", "shots", "seed", "accuracy"} <= set(r)
        assert set(experiments.ROW_FIELDS) <= set(r) and 0 <= r["accuracy"] <= 1
    assert {(r["head"], r["shots"], r["seed"]) for r in rows} == {
        (h, k, s) for h in ("logreg", "knn") for k in (1, 3) for s in (0, 1)
    }
    with open(tmp_path / "e.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 8 and tuple(table[0])[: len(experiments.ROW_FIELDS)] == experiments.ROW_FIELDS


def test_eval_table_default_out(run, tmp_path):
    rc, out, _ = run("eval", "--dataset", "digits", "--shots", "2", "--seeds", "1", "--strategy", "representative")
    assert rc == 0 and "pixels" in out and "1 runs (representative shots" in out
    assert (tmp_path / "results" / "digits" / "eval.csv").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--shots", "1,500"], "500 shots per class is more than"),
        (["--head", "svm"], "unknown head 'svm'; valid heads:"),
        (["--strategy", "greedy"], "unknown strategy 'greedy'; valid strategies: random, representative"),
        (["--shots", ""], "empty list of shots"),
        (["--shots", ","], "empty list of shots"),
        (["--t", "1200"], r"t=1200 is outside \[0, 999\]"),
        (["--t", "-1"], r"t=-1 is outside \[0, 999\]"),
        (["--t", "10,50"], "fusion over timesteps needs a backbone with t"),
        (["--t", "50"], "has no timestep"),
        (["--seeds", "x"], "invalid int value"),
        (["--shots", "1,a"], "expected comma-separated integers"),
        (["--seeds", "0"], "--seeds must be at least 1"),
    ],
)
def test_eval_bad_input_exits_2_with_one_line(run, argv, message):
    import re

    rc, out, err = run("eval", "--dataset", "digits", "--backbone", "pixels", *argv)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err


def test_eval_t_applies_to_backbones_with_t(run, use_tiny_runs):
    rc, out, _ = run("eval", "--dataset", "digits", "--backbone", "pixels,ddpm", "--shots", "1", "--seeds", "1",
                     "--t", "10,50", "--test-limit", "40", "--json")  # fmt: skip
    assert rc == 0
    rows = {r["backbone"]: r for r in json.loads(out)}
    assert rows["pixels"]["t"] is None and rows["ddpm"]["t"] == [10, 50] and rows["ddpm"]["n_eval"] == 40


@pytest.fixture
def small_sweeps(monkeypatch):
    from genclf.experiments import report

    monkeypatch.setattr(experiments, "T_GRID", (0, 200))
    monkeypatch.setattr(experiments, "VAL_LIMIT", 50)
    monkeypatch.setattr(experiments, "block_candidates", lambda bb: [bb.default_blocks(), bb.block_names()[-1:]])
    monkeypatch.setattr(report, "SELECT_SHOTS", 2)
    monkeypatch.setattr(report, "SELECT_SEEDS", 1)


def test_eval_t_auto_picks_on_validation(run, use_tiny_runs, small_sweeps):
    rc, out, _ = run("eval", "--dataset", "digits", "--backbone", "ddpm", "--shots", "1", "--seeds", "1", "--t", "auto",
                     "--test-limit", "40", "--json")  # fmt: skip
    assert rc == 0
    (row,) = json.loads(out)
    assert row["t"] in (0, 200) and row["t_choice"] == "auto"


def test_sweep_t_and_blocks_verbs(run, use_tiny_runs):
    rc, out, _ = run("sweep-t", "--dataset", "digits", "--grid", "0,100", "--shots", "2", "--seeds", "1",
                     "--val-limit", "50")  # fmt: skip
    assert rc == 0 and "best t on validation:" in out and "cross-validation inside the 2 shots" in out
    rc, out, _ = run("sweep-blocks", "--dataset", "digits", "--backbone", "vae", "--blocks", "mu", "--blocks", "mu,enc.1",
                     "--shots", "2", "--seeds", "1", "--val-limit", "50", "--json")  # fmt: skip
    assert rc == 0
    rows = json.loads(out)
    assert [r["blocks"] for r in rows] == [["mu"], ["mu", "enc.1"]] and all(r["split"] == "val" for r in rows)
    rc, _, err = run("sweep-t", "--dataset", "digits", "--backbone", "vae", "--grid", "0")
    assert rc == 2 and "needs a backbone with a timestep" in err and len(err.strip().splitlines()) == 1
    rc, _, err = run("sweep-blocks", "--dataset", "digits", "--backbone", "vae", "--blocks", "nope")
    assert rc == 2 and "unknown block(s) ['nope']" in err


def test_report_writes_tables_and_charts(run, use_tiny_runs, tmp_path, small_sweeps):
    rc, out, _ = run("report", "--dataset", "digits", "--backbone", "ddpm", "--head", "logreg,labelprop", "--shots", "1,2",
                     "--seeds", "2", "--test-limit", "60", "--out", "rep")  # fmt: skip
    assert rc == 0, out
    rep = tmp_path / "rep"
    for name in ("runs.csv", "timestep.csv", "blocks.csv", "leads.csv", "README.md", "label_efficiency.png", "timestep.png"):
        assert (rep / name).is_file(), name
    md = (rep / "README.md").read_text()
    assert "pixels + logreg" in md and "best generative (chosen on val)" in md and "The bar" in md
    assert "genclf report --dataset digits --backbone ddpm --head logreg,labelprop --shots 1,2 --seeds 2" in md
    with open(rep / "runs.csv") as f:
        runs = list(csv.DictReader(f))
    assert {r["split"] for r in runs} == {"val", "test"} and {r["strategy"] for r in runs} == {"random", "representative"}
    # every choice (sweeps, best pipeline) on validation shot sets of its own, never a seed that scores on test
    with open(rep / "timestep.csv") as f, open(rep / "blocks.csv") as g:
        val_seeds = {r["seed"] for r in [*csv.DictReader(f), *csv.DictReader(g), *runs] if r["split"] == "val"}
    assert val_seeds and not val_seeds & {r["seed"] for r in runs if r["split"] == "test"}
    assert "lead over pixels + logreg, same shots (points, 95% CI)" in md
    # the baselines get the same heads: pixels + labelprop runs when the generative features get labelprop
    assert {"cnn from scratch", "pixels + knn", "pixels + labelprop", "ddpm + labelprop"} <= {r["pipeline"] for r in runs}
    from PIL import Image

    assert Image.open(rep / "label_efficiency.png").size == (1000, 600)
    # --resume reuses every run already in runs.csv (same pipeline, config, shots, split): nothing is refitted
    rc, _, _ = run("report", "--dataset", "digits", "--backbone", "ddpm", "--head", "logreg,labelprop", "--shots", "1,2",
                   "--seeds", "2", "--test-limit", "60", "--out", "rep", "--resume")  # fmt: skip
    with open(rep / "runs.csv") as f:
        again = list(csv.DictReader(f))
    assert rc == 0 and [(r["pipeline"], r["seed"], r["time"]) for r in again] == [
        (r["pipeline"], r["seed"], r["time"]) for r in runs
    ]


def test_eval_cnn_baseline_via_cli(run):
    rc, out, _ = run("eval", "--dataset", "digits", "--backbone", "cnn", "--head", "logreg,knn", "--shots", "2",
                     "--seeds", "1", "--test-limit", "40", "--json")  # fmt: skip
    assert rc == 0
    (row,) = json.loads(out)  # one run: the CNN has no separate head
    assert row["backbone"] == "cnn" and row["head"] == "cnn" and row["n_eval"] == 40
