"""Real-browser end-to-end tests on tiny backbones trained on `digits`: `streamlit run app.py` driven by playwright
through Debian's chromium (the server and the browser are tests/conftest.py's `streamlit_server` and `browser`).

1. Explore shows a chart without a click -> move the t slider -> the chart changes -> Few-shot -> train a head ->
   an accuracy appears.
2. The view state: t set on Explore is still there after visiting Few-shot and after a reload, and the URL
   opened in a fresh browser context reproduces the view.
Both use PCA (no UMAP JIT in tests) and share one server. Each step's screenshot goes to artifacts/browser/.
The Fashion-MNIST tour with the shipped DDPM (and the README's screenshots) is tests/test_browser_fashion.py.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(streamlit_server, tiny_runs):
    return streamlit_server(GENCLF_RUNS_DIR=str(tiny_runs), GENCLF_DATASET="digits", GENCLF_GRID="0,50,500")


def _chart_state(page) -> str:
    """Title and the first coordinates of the first trace of the Explore chart."""
    return page.evaluate(
        "() => { const g = document.querySelector('.js-plotly-plot'); if (!g || !g.data) return '';"
        " const t = g.layout.title && (g.layout.title.text || g.layout.title);"
        " return JSON.stringify([t, Array.from(g._fullData[0].x).slice(0, 5)]); }"
    )


def test_explore_then_fewshot(server, browser):
    from playwright.sync_api import expect

    page = browser.page(server)
    expect(page.get_by_role("heading", name="Explore")).to_be_visible(timeout=120_000)
    page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot'); return g && g.data; }")
    browser.shot(page, "01-explore-open.png", full_page=True)  # no click: the chart is there
    page.wait_for_timeout(800)
    before = _chart_state(page)
    assert "t=50" in before
    browser.shot(page, "02-explore-t50.png", full_page=True)

    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Timestep").get_by_role("slider")
    thumb.focus()
    thumb.press("End")  # t = 500, the grid's last (shown at once when ready, else as soon as it is computed)
    _title_has(page, "t=500 ")
    page.wait_for_timeout(800)
    after = _chart_state(page)
    assert after != before, "the chart did not change after moving the slider"
    browser.shot(page, "03-explore-t999.png", full_page=True)

    page.get_by_test_id("stSidebarNav").get_by_text("Few-shot").click()
    expect(page.get_by_role("heading", name="Few-shot")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Train").click()
    metric = page.get_by_test_id("stMetric").filter(has_text="Test accuracy").first  # a rerun can show a stale copy
    metric.wait_for()
    value = metric.get_by_test_id("stMetricValue").inner_text()
    assert value.endswith("%") and 0 <= float(value.rstrip("%")) <= 100
    page.wait_for_timeout(1000)
    browser.shot(page, "04-fewshot-trained.png", full_page=True)


def _title_has(page, text: str, timeout_ms: int = 120_000) -> None:
    page.wait_for_function(
        "(w) => { const g = document.querySelector('.js-plotly-plot');"
        " return !!(g && g.layout && JSON.stringify(g.layout.title).includes(w)); }",
        arg=text,
        timeout=timeout_ms,
    )


def _slider_value(page, label: str) -> str:
    """The value a slider shows above its thumb (a select slider's label, e.g. '0✓')."""
    slider = page.locator('[data-testid="stSlider"]').filter(has_text=label)
    return slider.get_by_test_id("stSliderThumbValue").first.inner_text()


IS_3D = "() => { const g = document.querySelector('.js-plotly-plot'); return !!(g && g._fullData && g._fullData.length" \
        " && g._fullData[0].type === 'scatter3d'); }"  # fmt: skip


def test_t_survives_fewshot_and_reload_and_the_url_reproduces_the_view(server, browser):
    """Set t (and 3D) on Explore -> Few-shot trains at that t -> back on Explore and after a reload it is still
    there -> the URL, opened in a new browser context (a new session), draws the same chart."""
    page = browser.page(server, height=1200)
    _title_has(page, "t=50 ")
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Timestep").get_by_role("slider")
    thumb.focus()
    thumb.press("Home")  # t = 0
    _title_has(page, "t=0 ")
    page.get_by_text("3D", exact=True).first.click()
    page.wait_for_function(IS_3D)
    page.wait_for_function("() => location.search.includes('t=0') && location.search.includes('dim=3D')")
    page.get_by_test_id("stSidebarNav").get_by_text("Few-shot").click()
    page.get_by_role("heading", name="Few-shot").wait_for()
    assert _slider_value(page, "Timestep") == "0"  # Few-shot trains at the t shown on Explore
    page.get_by_test_id("stSidebarNav").get_by_text("Explore").click()
    _title_has(page, "t=0 ")
    page.wait_for_function(IS_3D)
    assert _slider_value(page, "Timestep").startswith("0")
    page.reload()
    _title_has(page, "t=0 ")
    page.wait_for_function(IS_3D)
    page.wait_for_timeout(1000)
    url, state = page.url, _chart_state(page)
    assert "t=0" in url and "dim=3D" in url and "dataset=digits" in url
    browser.shot(page, "05-state-after-reload.png", full_page=True)
    other = browser.page(url, height=1200)
    _title_has(other, "t=0 ")
    other.wait_for_function(IS_3D)
    other.wait_for_timeout(1000)
    assert _chart_state(other) == state  # the same view: same title, same coordinates
