"""The Compare page's helpers: one curve per distinct pipeline, the choice on validation seeds only, paired leads,
the headline and numbers formats, colours, the presentation exports, and the plain names of genclf.app.labels."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from genclf.app import figures, labels, presentation, tables
from genclf.experiments import rows as rows_io


def _runs(pipeline: str, backbone: str, t, accs, base, split="test", seed0=0, shots=10) -> list[dict]:
    return [{"pipeline": pipeline, "backbone": backbone, "head": pipeline.rsplit(" + ", 1)[-1], "t": t, "shots": shots,
             "seed": seed0 + i, "strategy": "random", "split": split, "accuracy": a, "baseline_accuracy": b,
             "n_eval": 100} for i, (a, b) in enumerate(zip(accs, base))]  # fmt: skip


BASE = [0.70, 0.72, 0.69, 0.71, 0.73]


@pytest.fixture
def report_rows() -> pd.DataFrame:
    rows = _runs("pixels + logreg", "pixels", None, BASE, BASE)
    rows += _runs("ddpm + logreg", "ddpm", "10", [a + 0.08 for a in BASE], BASE)
    rows += _runs("ddpm fusion + logreg", "ddpm", "5+10+20", [a + 0.02 for a in BASE], BASE)
    # validation: fusion wins on validation shot sets; a val row on a *test* seed must not count
    rows += _runs("ddpm + logreg", "ddpm", "10", [0.70] * 3, [0.6] * 3, "val", rows_io.VAL_SEED0)
    rows += _runs("ddpm fusion + logreg", "ddpm", "5+10+20", [0.75] * 3, [0.6] * 3, "val", rows_io.VAL_SEED0)
    rows += _runs("ddpm + logreg", "ddpm", "10", [0.99], [0.6], "val", 0)
    return pd.DataFrame(rows)


def test_one_line_per_distinct_pipeline_with_the_right_n(report_rows):
    t = tables.curves_table(report_rows)
    assert set(t["method"]) == {"pixels + logreg", "ddpm + logreg", "ddpm fusion + logreg"}
    assert (t["n"] == 5).all()  # single t and the fusion are never pooled (that gave n=10)
    got = t.set_index("method")
    assert got.loc["ddpm + logreg", "lead"] == pytest.approx(8.0) and got.loc["ddpm fusion + logreg", "lead"] == pytest.approx(
        2.0
    )
    # rows without a pipeline column (an eval.csv): a fused t is named as such, not averaged with a single t
    bare = report_rows.drop(columns="pipeline").assign(t=[None] * 5 + [10] * 5 + [[5, 10, 20]] * 5 + [10] * 7)
    methods = set(tables.curves_table(bare)["method"])
    assert {"ddpm + logreg", "ddpm t=5+10+20 + logreg"} <= methods


def test_best_pipeline_is_chosen_on_validation_seeds_only(report_rows):
    assert tables.best_on_val(report_rows) == {10: "ddpm fusion + logreg"}  # not the test leader, not seed 0's 0.99
    t = tables.curves_table(report_rows)
    h = tables.headline(t, tables.best_on_val(report_rows))
    assert h["method"] == "ddpm fusion + logreg" and h["shots"] == 10 and h["n"] == 5
    assert re.fullmatch(r"\+2\.0( ± \d+\.\d)? points at 10 labels per class \(5 seeds\)", tables.headline_text(h))
    best = tables.best_curve(t, {10: "ddpm fusion + logreg"})
    assert list(best["method"]) == [tables.BEST] and list(best["chosen"]) == ["ddpm fusion + logreg"]


def test_numbers_table_is_formatted_alike(report_rows):
    t = tables.curves_table(report_rows)
    num = tables.numbers_table(t, ["ddpm + logreg", "pixels + logreg"], name=labels.pipeline)
    assert list(num.index) == ["DDPM + logistic regression", "DDPM + logistic regression: lead over pixels, points",
                               "raw pixels + logistic regression", "seeds"]  # fmt: skip
    assert re.fullmatch(r"\d+\.\d ± \d+\.\d", num.iloc[0, 0]) and re.fullmatch(r"\+8\.0 ± \d+\.\d", num.iloc[1, 0])
    assert num.loc["seeds", 10] == "5" and tables.pm(-0.01, 0.2, sign=True) == "+0.0 ± 0.2"


def test_colours_never_repeat_and_the_baseline_is_black():
    methods = ["pixels + logreg"] + [f"m{i}" for i in range(len(figures.LINES) - 1)]
    colors = figures.line_colors(methods)
    assert colors["pixels + logreg"] == "#000000" and len(set(colors.values())) == len(methods)
    fig = figures.curves_figure(pd.DataFrame({"method": ["a", "a"], "shots": [1, 10], "mean": [50.0, 60], "std": [1.0, 1]}))
    assert fig.layout.xaxis.type == "log"


def test_timestep_axis_is_log_like_so_small_t_is_readable():
    df = pd.DataFrame({"t": [0, 5, 10, 20, 100, 500], "accuracy": [70, 75, 76, 75, 70, 50.0], "std": [1.0] * 6})
    fig = figures.t_curve_figure(df, std="std")
    x = np.asarray(fig.data[0].x)
    assert np.allclose(x, np.log1p(df["t"])) and list(fig.data[0].customdata) == [0, 5, 10, 20, 100, 500]
    assert "10" in fig.layout.xaxis.ticktext and "100" in fig.layout.xaxis.ticktext
    # t <= 100 takes most of the axis, not the first fifth of it
    assert (np.log1p(100) - np.log1p(0)) / (np.log1p(500) - np.log1p(0)) > 0.7


def test_presentation_exports_are_self_contained(report_rows):
    t = tables.curves_table(report_rows)
    num = tables.numbers_table(t, ["ddpm + logreg", "pixels + logreg"], name=labels.pipeline)
    chart = figures.curves_png(t, "", (800, 480), name=labels.pipeline, font=18)
    assert chart[:8] == b"\x89PNG\r\n\x1a\n"
    sentence = presentation.method_sentence("Fashion-MNIST", 10000, "DDPM", True)
    assert "10,000 test images" in sentence and "same images" in sentence
    png = presentation.presentation_png("Headline <b>", "sub", sentence, chart, num)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    html = presentation.presentation_html("T", "Headline <b>", "sub", sentence, chart, num, "footer")
    assert "<script" not in html and "http" not in html and 'src="data:image/png;base64,' in html
    assert "Headline &lt;b&gt;" in html and "+8.0 ± " in html


def _pdf_objects(pdf: bytes) -> dict[int, bytes]:
    """The objects of a PDF, checked against its xref table (each offset must point at its object)."""
    xref = int(re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", pdf).group(1))
    head = re.match(rb"xref\s+0 (\d+)\s+", pdf[xref:])
    count, at = int(head.group(1)), xref + head.end()
    entries = pdf[at : at + 20 * count].split(b"\n")
    offsets = {n: int(e.split()[0]) for n, e in enumerate(entries[:count]) if e.split()[2] == b"n"}
    ends = sorted([*offsets.values(), xref])
    objs = {}
    for n, off in offsets.items():
        assert pdf[off:].startswith(b"%d 0 obj" % n), n
        objs[n] = pdf[off : ends[ends.index(off) + 1]]
    assert len(objs) == count - 1
    return objs


def _pdf_text(content: bytes) -> str:
    """The strings shown by Tj operators, in order, one per line (WinAnsi, escapes undone)."""
    shown = re.findall(rb"\(((?:\\.|[^\\)])*)\) Tj", content)
    return "\n".join(re.sub(rb"\\(.)", rb"\1", s).decode("cp1252") for s in shown)


def test_presentation_pdf_is_one_offline_page_with_the_headline_chart_and_numbers(report_rows):
    import zlib

    t = tables.curves_table(report_rows)
    num = tables.numbers_table(t, ["ddpm + logreg", "pixels + logreg"], name=labels.pipeline)
    chart = figures.curves_png(t, "", (700, 500), name=labels.pipeline, font=18)
    headline = "DDPM + logistic regression: +8.0 ± 1.2 points at 10 labels per class (5 seeds) (draft)"
    sentence = presentation.method_sentence("Fashion-MNIST", 10000, "DDPM", True)
    pdf = presentation.presentation_pdf("Compare", headline, "over pixels", sentence, chart, num, "genclf footer")
    assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
    objs = _pdf_objects(pdf)
    pages = [o for o in objs.values() if re.search(rb"/Type /Page\b(?!s)", o)]
    assert len(pages) == 1 and b"/Count 1" in objs[2]
    text = _pdf_text(objs[6])
    assert " ".join(text.split()).startswith(" ".join(headline.split()))  # the headline first, ± included
    assert "+8.0 ± " in text and "raw pixels + logistic regression" in text and "10,000 test images" in text.replace("\n", " ")
    image = next(o for o in objs.values() if b"/Subtype /Image" in o)
    w, h = (int(re.search(rb"/%s (\d+)" % k, image).group(1)) for k in (b"Width", b"Height"))
    n = int(re.search(rb"/Length (\d+)", image).group(1))
    data = image[image.index(b"stream\n") + 7 :][:n]
    assert (w, h) == (700, 500) and len(zlib.decompress(data)) == w * h * 3  # the chart, embedded
    rest = b"".join(o for o in objs.values() if o is not image)
    assert b"/URI" not in rest and b"http" not in rest and b"/FontFile" not in rest  # nothing to fetch; built-in fonts
    # every line of text stays on the page
    for x, y in re.findall(rb"([\d.]+) ([\d.]+) Td", objs[6]):
        assert 0 <= float(x) <= 595 and 0 <= float(y) <= 842


def test_pdf_text_is_measured_and_wrapped_in_helvetica():
    from genclf.app import pdf

    assert pdf.width("i", 10) < pdf.width("m", 10) and pdf.width("Hello", 10) == pytest.approx(22.78)
    lines = pdf.wrap("one two three four five six seven", 12, 60)
    assert len(lines) > 1 and all(pdf.width(x, 12) <= 60 for x in lines) and " ".join(lines).count(" ") == 6
    page = pdf.Page(200, 100)
    page.text(10, 20, "a (tricky) \\ string", 10)
    assert b"(a \\(tricky\\) \\\\ string) Tj" in page.pdf()


@pytest.mark.parametrize(
    ("name", "plain"),
    [("mid_block", "bottleneck"), ("up_blocks.0", "first decoder block"), ("down_blocks.1", "second encoder block"),
     ("enc.1", "second encoder layer"), ("mu", "latent code (mean)"), ("up_blocks.0@7", "first decoder block, 7×7 grid"),
     ("d.0", "first discriminator layer"), ("something_new", "something_new")],
)  # fmt: skip
def test_plain_block_names_keep_the_technical_one_in_the_help(name, plain):
    assert labels.block(name) == plain
    assert f"`{name}`" in labels.block_help(name)


def test_plain_names_of_datasets_backbones_pipelines_and_terms():
    assert (
        labels.dataset("folder:data/uploads/shoes") == "shoes (upload)" and labels.dataset("fashion-mnist") == "Fashion-MNIST"
    )
    assert labels.backbone("/tmp/runs/digits/vae") == "VAE" and labels.backbone("ddpm (run)") == "DDPM (run)"
    assert labels.pipeline("ddpm fusion + knn") == "DDPM, fused timesteps + nearest neighbour"
    assert labels.pipeline("pixels + logreg (baseline)") == "raw pixels + logistic regression (baseline)"
    assert labels.blocks(["mid_block", "up_blocks.0"]) == "bottleneck + first decoder block"
    assert labels.term("fingerprint") == "data ID" and "`fingerprint`" in labels.term_help("fingerprint")
    assert "Procrustes" in labels.term_help("procrustes")
