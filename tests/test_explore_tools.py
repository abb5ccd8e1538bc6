"""Explore's colour modes, search, export and image mode (genclf.app.explore_tools / explore_figures)."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest

from genclf import data
from genclf.app import explore_figures as xf
from genclf.app import explore_tools as xt
from genclf.app.views import Points

DS = "digits"


@pytest.fixture()
def pts():
    ds = data.load(DS)
    idx = np.arange(40)
    return Points(idx, ds.y_test[idx], ds.classes)


@pytest.fixture()
def preds(pts):
    pred = {int(i): int(y) for i, y in zip(pts.idx, pts.y)}
    wrong = [int(pts.idx[0]), int(pts.idx[5])]
    for i in wrong:
        pred[i] = (pred[i] + 1) % 10
    del pred[int(pts.idx[7])]  # a point the run did not score
    conf = {i: 0.5 + 0.01 * (i % 40) for i in pred}
    return xt.Predictions(pred, conf, "run #1"), wrong


def test_colour_groups_partition_the_points(pts, preds):
    p, wrong = preds
    for mode in xt.COLOR_MODES:
        groups = xt.colour_groups(pts, mode, p)
        allpos = np.sort(np.concatenate([g.positions for g in groups]))
        assert np.array_equal(allpos, np.arange(len(pts.idx))), mode  # nothing dropped, nothing twice
    cw = {g.name: g.positions for g in xt.colour_groups(pts, "correct / wrong", p)}
    assert sorted(pts.idx[cw["wrong"]].tolist()) == sorted(wrong)
    assert pts.idx[cw["not scored"]].tolist() == [int(pts.idx[7])]
    assert xt.available_modes(None) == ("true class",)
    assert "confidence" in xt.available_modes(p)
    with pytest.raises(ValueError, match="valid"):
        xt.colour_groups(pts, "rainbow", p)


def test_search_by_indices_names_classes_and_mistakes(pts, preds):
    p, wrong = preds
    assert xt.parse_indices("3, 10-12") == {3, 10, 11, 12}
    assert xt.parse_indices("shirt") is None and xt.parse_indices("5-2") is None
    m = xt.search(pts, "3, 10-12")
    assert sorted(pts.idx[m].tolist()) == [3, 10, 11, 12]
    name = pts.classes[int(pts.y[0])]
    assert (pts.y[xt.search(pts, name.upper())] == pts.y[0]).all()
    assert (pts.y[xt.search(pts, classes=[2])] == 2).all()
    assert sorted(pts.idx[xt.search(pts, wrong_only=True, preds=p)].tolist()) == sorted(wrong)
    assert not xt.search(pts, wrong_only=True, preds=None).any()  # no run: nothing is "misclassified"
    assert xt.search(pts).all() and not xt.is_filtering("", [], False)


def test_search_says_what_it_could_not_use(pts):
    """Typos and indices outside the sample match nothing; the note says why instead of a bare '0 points match'."""
    n = 100  # pts shows test images 0..39 of 100
    assert xt.search_note(pts, "", n) == "" and xt.search_note(pts, "3, 10-12", n) == ""
    assert xt.search_note(pts, pts.classes[0].upper(), n) == ""
    for typo in ("-5", "5-", "12,,x", "1e3", "zzz"):
        assert not xt.search(pts, typo).any() and "neither test indices" in xt.search_note(pts, typo, n), typo
    note = xt.search_note(pts, "12, 40-45, 150", n)
    assert "1 of the 8 indices are past the test split (0–99)" in note and "6 are test images not in the 40 shown" in note


def test_export_csv_and_zip_hold_the_selection(pts, preds):
    p, wrong = preds
    positions = [0, 1, 7]
    nn = np.array([[1, 2], [0, 2], [0, 1]])
    rows = list(csv.DictReader(io.StringIO(xt.export_csv(DS, pts, positions, p, nn).decode())))
    assert [int(r["test_index"]) for r in rows] == [int(pts.idx[q]) for q in positions]
    assert rows[0]["correct"] == "0" and rows[1]["correct"] == "1" and rows[2]["prediction"] == ""
    assert rows[0]["neighbours"] == f"{pts.idx[1]} {pts.idx[2]}"
    zf = zipfile.ZipFile(io.BytesIO(xt.export_zip(DS, pts, positions, p, nn)))
    pngs = [n for n in zf.namelist() if n.endswith(".png")]
    assert len(pngs) == 3 and "selection.csv" in zf.namelist()
    assert zf.read(pngs[0])[:8] == b"\x89PNG\r\n\x1a\n"


def test_scatter_keeps_positions_fades_non_matches_and_marks_the_click(pts, preds):
    p, _ = preds
    xy = np.random.default_rng(0).normal(size=(len(pts.idx), 2)).astype(np.float32)
    match = xt.search(pts, classes=[1, 2])
    groups = xt.colour_groups(pts, "true class", p)
    fig = xf.scatter(xy, pts, groups, match=match, marked=4)
    names = [tr.name for tr in fig.data]
    assert names[0] == "not matching" and names[-1] == "clicked"
    shown = np.concatenate([np.asarray(tr.customdata)[:, 0] for tr in fig.data[1:-1]])
    assert set(shown.tolist()) == set(np.flatnonzero(match).tolist())
    assert np.asarray(fig.data[-1].customdata)[0, 0] == 4
    colours = [tr.marker.color for tr in fig.data[1:-1]]
    assert len(set(colours)) == len(colours)  # no repeated class colour
    conf = xt.confidence_of(pts, p)
    fig = xf.scatter(xy, pts, xt.colour_groups(pts, "confidence", p), confidence=conf)
    assert fig.data[0].marker.colorscale is not None


def test_image_mode_draws_one_thumbnail_per_shown_point(pts):
    xy = np.random.default_rng(1).normal(size=(len(pts.idx), 2)).astype(np.float32)
    thumbs = xt.thumbnails(DS, pts, np.arange(len(pts.idx)))
    assert all(t.startswith("data:image/png;base64,") for t in thumbs)
    match = xt.search(pts, classes=[3])
    fig = xf.scatter(xy, pts, xt.colour_groups(pts, "true class", None), thumbs=thumbs, match=match)
    assert len(fig.layout.images) == int(match.sum())
    assert all(tr.marker.opacity in (0.0, 0.25) for tr in fig.data)  # markers stay for hover/selection only
    fig3 = xf.scatter(np.c_[xy, xy[:, :1]], pts, xt.colour_groups(pts, "true class", None), thumbs=thumbs)
    assert len(fig3.layout.images) == 0  # image mode is 2D only


def test_a_fewshot_result_is_read_back_with_its_confidence():
    from genclf import experiments

    r = experiments.few_shot(DS, "pixels", "logreg", 2, 0, test_limit=60)
    p = xt.predictions_of(r, "run #1 (logreg, 2 shots)")
    assert list(p.pred) == [int(i) for i in r["test_idx"]] and p.source.startswith("run #1")
    assert all(p.pred[int(i)] == int(y) for i, y in zip(r["test_idx"], r["pred"]))
    assert np.allclose([p.confidence[int(i)] for i in r["test_idx"]], r["confidence"])
    assert xt.available_modes(p) == xt.COLOR_MODES
    old = xt.predictions_of({k: v for k, v in r.items() if k != "confidence"})  # memoised before confidences
    assert old.confidence is None and "confidence" not in xt.available_modes(old)
    pts = Points(np.asarray(r["test_idx"]), np.asarray(r["y_test"]), data.load(DS).classes)
    assert np.allclose(xt.confidence_of(pts, p), r["confidence"])


def test_one_scatter_builder_draws_the_plain_class_view_and_the_confidence_scale(pts, preds):
    p, _ = preds
    xy = np.random.default_rng(2).normal(size=(len(pts.idx), 2)).astype(np.float32)
    plain = xf.scatter(xy, pts, None, [3], "title", "rev")  # the cached default Explore chart: one trace per class
    present = [c for c in range(10) if (pts.y == c).any()]
    assert [tr.name for tr in plain.data] == [pts.classes[c] for c in present]
    assert [tr.marker.color for tr in plain.data] == [xf.class_colour(c) for c in present]
    assert all(tr.text is None and pts.classes[present[i]] in tr.hovertemplate for i, tr in enumerate(plain.data))
    assert sum(len(tr.selectedpoints) for tr in plain.data) == 1 and plain.layout.uirevision == "rev"
    fig = xf.scatter(xy, pts, xt.colour_groups(pts, "confidence", p), confidence=xt.confidence_of(pts, p))
    bar = fig.data[0].marker
    assert fig.data[0].name == "confidence" and bar.colorscale is not None and (bar.cmin, bar.cmax) == (0, 1)
    assert bar.colorbar.orientation == "h" and "confidence" in bar.colorbar.title.text  # under the chart, off the legend
    assert fig.data[0].text[0].endswith(f"confidence {p.confidence[int(pts.idx[0])]:.0%}")
    assert fig.data[1].name == "not scored" and fig.layout.margin.b > 0
