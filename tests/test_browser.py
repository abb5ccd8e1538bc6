"""Real-browser end-to-end test: `streamlit run app.py` driven by playwright through Debian's chromium.

1. Tiny backbones trained on `digits`: Explore shows a chart without a click -> move the t slider -> the
   chart changes -> Few-shot -> train a head -> an accuracy appears.
2. The view state: t set on Explore is still there after visiting Few-shot and after a reload, and the URL
   opened in a fresh browser context reproduces the view.
3. Fashion-MNIST with the `pixels` backbone (no weights needed): click a point -> its thumbnail and
   neighbours; lasso -> the st-aggrid table with thumbnails; Few-shot -> an accuracy. Its screenshots are
   copied to docs/ (the README's).
Both use PCA (no UMAP JIT in tests). Each step's screenshot goes to artifacts/browser/.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
FMNIST = Path("/usr/share/datasets/fashion-mnist")
ROOT = Path(__file__).resolve().parent.parent
ART = ROOT / "artifacts" / "browser"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium: sudo apt-get install -y chromium"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _streamlit(tmp_path: Path, **env_overrides: str):
    """`streamlit run app.py` on a free 127.0.0.1 port; yields its URL."""
    port = _free_port()
    env = {**os.environ, "GENCLF_CACHE_DIR": str(tmp_path / "cache"), "GENCLF_RESULTS_DIR": str(tmp_path / "results"),
           "GENCLF_PROJECTION": "pca", "GENCLF_NO_WARMUP": "1", "GENCLF_GRID": "0,50,500", "GENCLF_AUTOPREPARE": "0",
           **env_overrides}  # fmt: skip
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]  # fmt: skip
    log_path = tmp_path / "streamlit.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield _wait_healthy(proc, port, log_path)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def server(use_tiny_runs, tmp_path):
    with _streamlit(tmp_path, GENCLF_RUNS_DIR=str(use_tiny_runs), GENCLF_DATASET="digits") as url:
        yield url


def _wait_healthy(proc: subprocess.Popen, port: int, log_path: Path) -> str:
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                return url
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"streamlit did not start: {log_path.read_text()[-2000:]}")


def _chart_state(page) -> str:
    """Title and the first coordinates of the first trace of the Explore chart."""
    return page.evaluate(
        "() => { const g = document.querySelector('.js-plotly-plot'); if (!g || !g.data) return '';"
        " const t = g.layout.title && (g.layout.title.text || g.layout.title);"
        " return JSON.stringify([t, Array.from(g._fullData[0].x).slice(0, 5)]); }"
    )


def test_explore_then_fewshot(server):
    from playwright.sync_api import expect, sync_playwright

    ART.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1400})
        page.set_default_timeout(120_000)
        page.goto(server)
        expect(page.get_by_role("heading", name="Explore")).to_be_visible(timeout=120_000)
        page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot'); return g && g.data; }")
        page.screenshot(path=ART / "01-explore-open.png", full_page=True)  # no click: the chart is there
        page.wait_for_timeout(800)
        before = _chart_state(page)
        assert "t=50" in before
        page.screenshot(path=ART / "02-explore-t50.png", full_page=True)

        thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Timestep").get_by_role("slider")
        thumb.focus()
        thumb.press("End")  # t = 500, the grid's last (shown at once when ready, else as soon as it is computed)
        _title_has(page, "t=500 ")
        page.wait_for_timeout(800)
        after = _chart_state(page)
        assert after != before, "the chart did not change after moving the slider"
        page.screenshot(path=ART / "03-explore-t999.png", full_page=True)

        page.get_by_test_id("stSidebarNav").get_by_text("Few-shot").click()
        expect(page.get_by_role("heading", name="Few-shot")).to_be_visible(timeout=60_000)
        page.get_by_role("button", name="Train").click()
        metric = page.get_by_test_id("stMetric").filter(has_text="Test accuracy")
        metric.wait_for()
        value = metric.get_by_test_id("stMetricValue").inner_text()
        assert value.endswith("%") and 0 <= float(value.rstrip("%")) <= 100
        page.wait_for_timeout(1000)
        page.screenshot(path=ART / "04-fewshot-trained.png", full_page=True)
        browser.close()


def _title_has(page, text: str, timeout_ms: int = 120_000) -> None:
    page.wait_for_function(
        "(w) => { const g = document.querySelector('.js-plotly-plot');"
        " return !!(g && g.layout && JSON.stringify(g.layout.title).includes(w)); }",
        arg=text,
        timeout=timeout_ms,
    )


def _slider_value(page, label: str) -> str:
    """The value a slider shows above its thumb (a select slider's label, e.g. '0✓')."""
    return page.locator('[data-testid="stSlider"]').filter(has_text=label).get_by_test_id("stSliderThumbValue").inner_text()


IS_3D = "() => { const g = document.querySelector('.js-plotly-plot'); return !!(g && g._fullData && g._fullData.length" \
        " && g._fullData[0].type === 'scatter3d'); }"  # fmt: skip


def test_t_survives_fewshot_and_reload_and_the_url_reproduces_the_view(server):
    """Set t (and 3D) on Explore -> Few-shot trains at that t -> back on Explore and after a reload it is still
    there -> the URL, opened in a new browser context (a new session), draws the same chart."""
    from playwright.sync_api import sync_playwright

    ART.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1200})
        page.set_default_timeout(120_000)
        page.goto(server)
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
        page.screenshot(path=ART / "05-state-after-reload.png", full_page=True)
        other = browser.new_context(viewport={"width": 1440, "height": 1200}).new_page()
        other.goto(url)
        _title_has(other, "t=0 ")
        other.wait_for_function(IS_3D)
        other.wait_for_timeout(1000)
        assert _chart_state(other) == state  # the same view: same title, same coordinates
        browser.close()


def _plot_points(page, n: int = 3) -> dict:
    """Screen positions of the first points of the first trace, and the plot area (for clicks and a lasso)."""
    return page.evaluate(
        """(n) => { const g = document.querySelector('.js-plotly-plot'); const fl = g._fullLayout;
        const r = g.getBoundingClientRect(); const xa = fl.xaxis, ya = fl.yaxis, d = g._fullData[0]; const pts = [];
        for (let k = 0; k < n; k++) pts.push([r.left + xa._offset + xa.l2p(d.x[k]), r.top + ya._offset + ya.l2p(d.y[k])]);
        return {pts, box: [r.left + xa._offset, r.top + ya._offset, xa._length, ya._length]}; }""",
        n,
    )


@pytest.mark.skipif(not FMNIST.is_dir(), reason="needs Fashion-MNIST: sudo apt-get install -y dataset-fashion-mnist")
def test_fashion_tour_click_lasso_fewshot(tmp_path):
    """Fashion-MNIST with the `pixels` backbone (no weights needed): click a point for its thumbnail, lasso a
    region for the table, train a head. These screenshots are the README's (docs/)."""
    from playwright.sync_api import sync_playwright

    ART.mkdir(parents=True, exist_ok=True)
    env = {"GENCLF_DATASET": "fashion-mnist", "GENCLF_BACKBONE": "pixels", "GENCLF_RUNS_DIR": str(tmp_path / "runs")}
    with _streamlit(tmp_path, **env) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1500})
        page.set_default_timeout(180_000)
        page.goto(url)
        page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot'); return g && g._fullData; }")
        page.wait_for_timeout(1500)
        x, y = _plot_points(page)["pts"][0]
        page.mouse.click(x, y)
        page.get_by_text("Nearest neighbours in feature space").wait_for()
        page.wait_for_timeout(1000)
        page.screenshot(path=ART / "11-fashion-click.png")
        page.locator('.modebar-btn[data-attr="dragmode"][data-val="lasso"]').first.click()
        bx, by, w, h = _plot_points(page)["box"]
        page.mouse.move(bx + w * 0.3, by + h * 0.3)
        page.mouse.down()
        for px, py in ((bx + w * 0.6, by + h * 0.3), (bx + w * 0.6, by + h * 0.6), (bx + w * 0.3, by + h * 0.6)):
            page.mouse.move(px, py, steps=6)
        page.mouse.move(bx + w * 0.3, by + h * 0.31, steps=6)
        page.mouse.up()
        page.get_by_role("heading", name="selected").wait_for()
        page.frame_locator("iframe").locator(".ag-row img").first.wait_for()  # thumbnails in the st-aggrid table
        page.wait_for_timeout(1500)
        page.screenshot(path=ART / "12-fashion-lasso.png")
        page.get_by_test_id("stSidebarNav").get_by_text("Few-shot").click()
        page.get_by_role("button", name="Train").click()
        page.get_by_test_id("stMetric").filter(has_text="Test accuracy").wait_for()
        page.wait_for_timeout(1500)
        page.screenshot(path=ART / "13-fashion-fewshot.png")
        browser.close()
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    shutil.copyfile(ART / "12-fashion-lasso.png", docs / "explore.png")
    shutil.copyfile(ART / "13-fashion-fewshot.png", docs / "fewshot.png")
