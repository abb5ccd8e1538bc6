"""Real-browser test of the denoising panel (issue 15) on Fashion-MNIST with the shipped DDPM.

Explore -> project 1,000 test images -> click a point -> x0 | x_t | x̂0 appear -> move t from 50 to 150 ->
x_t and x̂0 change (x0 does not) and the line under them gives the SNR and the validation accuracy from the
shipped report's sweep. Its screenshot is the README's docs/denoise.png. The server (PCA, no UMAP warm-up) and
Debian's chromium through playwright are tests/conftest.py's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FMNIST = Path("/usr/share/datasets/fashion-mnist")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not FMNIST.is_dir(), reason="needs Fashion-MNIST: sudo apt-get install -y dataset-fashion-mnist"),
]


@pytest.fixture(scope="module")
def server(streamlit_server):
    # the report's sweep in results/ (read only) gives the validation accuracy under the panel
    return streamlit_server(GENCLF_DATASET="fashion-mnist", GENCLF_BACKBONE="ddpm", GENCLF_GRID="50,150",
                            GENCLF_RESULTS_DIR=str(ROOT / "results"))  # fmt: skip


PANEL = (
    "() => Array.from(document.querySelectorAll('.st-key-denoise_panel [data-testid=\"stImage\"]'))"
    ".map(e => [e.querySelector('img') ? e.querySelector('img').src : '', e.innerText.trim()])"
)


def _panel(page) -> list[list[str]]:
    """[src, caption] of each image in the denoising panel."""
    return page.evaluate(PANEL)


def _wait_panel(page, second: str) -> None:
    """Wait until the panel is exactly its three images, drawn, with `second` as x_t's caption. Mid-rerun Streamlit
    can show the stale element beside the new one for a moment, so 'the caption is there' is not enough."""
    page.wait_for_function(
        f"([second]) => {{ const p = ({PANEL})(); return p.length === 3 && p.every(([s]) => s) && p[1][1] === second; }}",
        arg=[second],
    )


def _custom_t(page, t: int) -> None:
    """Ask for timestep t in the Custom t popover. Retried: the page reruns when a background layout becomes ready
    (here the grid's t=150), which closes the popover under the test, as it would under a user."""
    from playwright.sync_api import TimeoutError as Timeout

    box = page.locator('[data-testid="stNumberInput"]').filter(has_text="Any timestep").locator("input")
    for attempt in range(4):
        try:
            if not box.is_visible():
                page.get_by_role("button", name="Custom t").click()
            box.fill(str(t), timeout=15_000)
            box.press("Enter", timeout=15_000)
            page.get_by_role("button", name="Show this t").click(timeout=15_000)
            return
        except Timeout:
            if attempt == 3:
                raise


def test_denoise_panel_follows_t(server, browser):
    from playwright.sync_api import expect

    page = browser.page(server + "/?t=50&n=1000", timeout_ms=240_000)  # the view lives in the URL; 1,000 images
    expect(page.get_by_role("heading", name="Explore")).to_be_visible(timeout=120_000)
    page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot'); return g && g._fullData; }")
    page.wait_for_timeout(1000)
    x, y = page.evaluate(
        """() => { const g = document.querySelector('.js-plotly-plot'); const fl = g._fullLayout;
        const r = g.getBoundingClientRect(), d = g._fullData[g._fullData.length - 1];  // the last class
        return [r.left + fl.xaxis._offset + fl.xaxis.l2p(d.x[0]), r.top + fl.yaxis._offset + fl.yaxis.l2p(d.y[0])]; }"""
    )
    page.mouse.click(x, y)
    _wait_panel(page, "x_t (t=50)")
    before = _panel(page)
    assert [c for _, c in before][:2] == ["x₀ (clean)", "x_t (t=50)"] and before[2][1].startswith("x̂₀"), before

    _custom_t(page, 150)  # any t, computed on request (the slider snaps to ready t)
    _wait_panel(page, "x_t (t=150)")
    after = _panel(page)
    assert after[0][0] == before[0][0], "x0 must not change with t"
    assert after[1][0] != before[1][0] and after[2][0] != before[2][0], "x_t and x̂0 must change with t"
    # mid-rerun the line can be there twice
    line = page.locator(".st-key-denoise_panel").get_by_text("t=150 · SNR").first.inner_text()
    assert "validation accuracy" in line and "%" in line, line
    # the screenshot waits for the chart at t=150 too (the grid computes it in the background)
    page.wait_for_function(
        "() => { const g = document.querySelector('.js-plotly-plot'); if (!(g && g.layout)) return false;"
        " const t = JSON.stringify(g.layout.title); return t.includes('t=150') && !t.includes('computing'); }"
    )
    page.wait_for_timeout(1000)
    browser.shot(page, "31-denoise.png")
    browser.to_docs("31-denoise.png", "denoise.png")
