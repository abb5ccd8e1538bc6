"""Real-browser test of the Compare page on the shipped Fashion-MNIST results (results/fashion-mnist/runs.csv, written
by `genclf report`): the headline states the chosen DDPM pipeline's paired lead, the chart draws it against pixels +
logistic regression, the presentation view and its exports (slide PNG, one-page HTML that opens offline) work.
It writes the README's docs/compare.png and docs/presentation.png. Server and browser: tests/conftest.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
FMNIST = Path("/usr/share/datasets/fashion-mnist")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not FMNIST.is_dir(), reason="needs Fashion-MNIST: sudo apt-get install -y dataset-fashion-mnist"),
    pytest.mark.skipif(not (RESULTS / "fashion-mnist" / "runs.csv").is_file(), reason="needs `make results`"),
]


@pytest.fixture(scope="module")
def server(streamlit_server):
    """The shipped report's results (read only), Fashion-MNIST with the shipped DDPM."""
    return streamlit_server(GENCLF_RESULTS_DIR=str(RESULTS), GENCLF_DATASET="fashion-mnist", GENCLF_BACKBONE="ddpm")


HEADLINE = re.compile(r"DDPM.*: [+-]\d+\.\d ± \d+\.\d points at \d+ labels? per class \(\d+ seeds\)")


def _traces(page) -> list[str]:
    return page.evaluate(
        "() => { const g = document.querySelector('.js-plotly-plot'); if (!g || !g.data) return [];"
        " return g.data.filter(t => t.showlegend !== false).map(t => t.name); }"
    )


def test_compare_headline_presentation_and_exports(server, browser, tmp_path):
    from playwright.sync_api import expect

    page = browser.page(server, height=1300)
    expect(page.get_by_role("heading", name="Explore")).to_be_visible(timeout=120_000)  # the frame (st.navigation) is up
    page.get_by_test_id("stSidebarNav").get_by_text("Compare", exact=True).click()
    expect(page.get_by_role("heading", name="Compare")).to_be_visible(timeout=120_000)
    headline = page.get_by_role("heading", name=HEADLINE).first  # a rerun can show a stale copy
    headline.wait_for()
    text = headline.inner_text()
    assert HEADLINE.search(text), text
    page.get_by_text("on the same labeled images").first.wait_for()
    page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot'); return g && g.data; }")
    names = _traces(page)
    assert names[0] == "best generative (chosen on validation)" and "raw pixels + logistic regression" in names, names
    assert page.evaluate("() => document.querySelector('.js-plotly-plot').layout.xaxis.type") == "log"
    page.wait_for_timeout(1200)
    browser.shot(page, "21-compare.png")

    with page.expect_download() as d:
        page.get_by_role("button", name="One-page HTML report").click()
    report = tmp_path / "report.html"
    d.value.save_as(report)
    body = report.read_text()
    assert "<script" not in body and "http" not in body.split("<footer>")[0] and "data:image/png;base64," in body
    assert HEADLINE.search(body), body[:500]

    page.set_viewport_size({"width": 1440, "height": 1700})  # the whole slide: headline, curve, numbers, method
    page.get_by_text("Presentation view").click()
    big = page.locator("h1").filter(has_text=HEADLINE).first
    big.wait_for()
    expect(page.get_by_test_id("stSidebar")).to_be_hidden(timeout=30_000)
    expect(page.locator("[data-testid='stTable']")).to_have_count(1, timeout=60_000)  # the numbers, large
    page.wait_for_timeout(1500)
    browser.shot(page, "22-presentation.png")
    with page.expect_download() as d:
        page.get_by_role("button", name="Slide PNG").click()
    slide = tmp_path / "slide.png"
    d.value.save_as(slide)
    assert slide.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    offline = browser.page(offline=True)  # the HTML report opens with no network at all
    offline.goto(report.as_uri())
    assert offline.evaluate("() => document.images[0].complete && document.images[0].naturalWidth") > 500
    browser.to_docs("21-compare.png", "compare.png")
    browser.to_docs("22-presentation.png", "presentation.png")
