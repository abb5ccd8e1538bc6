"""Real-browser test of the Compare page on the shipped Fashion-MNIST results (results/fashion-mnist/runs.csv, written
by `genclf report`): the headline states the chosen DDPM pipeline's paired lead, the chart draws it against pixels +
logistic regression, the presentation view and its exports (slide PNG, one-page HTML that opens offline) work.
It writes the README's docs/compare.png and docs/presentation.png. Launches the server as tests/test_browser.py does.
"""

from __future__ import annotations

import contextlib
import os
import re
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
RESULTS = ROOT / "results"
ART = ROOT / "artifacts" / "browser"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync"]  # fmt: skip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium: sudo apt-get install -y chromium"),
    pytest.mark.skipif(not FMNIST.is_dir(), reason="needs Fashion-MNIST: sudo apt-get install -y dataset-fashion-mnist"),
    pytest.mark.skipif(not (RESULTS / "fashion-mnist" / "runs.csv").is_file(), reason="needs `make results`"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _streamlit(tmp_path: Path, **env_overrides: str):
    """`streamlit run app.py` on a free 127.0.0.1 port; yields its URL."""
    port = _free_port()
    env = {**os.environ, "GENCLF_CACHE_DIR": str(tmp_path / "cache"), "GENCLF_RESULTS_DIR": str(RESULTS),
           "GENCLF_PROJECTION": "pca", "GENCLF_NO_WARMUP": "1", "GENCLF_DATASET": "fashion-mnist",
           "GENCLF_BACKBONE": "ddpm", "GENCLF_RUNS_DIR": str(tmp_path / "runs"), **env_overrides}  # fmt: skip
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]  # fmt: skip
    log_path = tmp_path / "streamlit.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.time() + 120
            while time.time() < deadline and proc.poll() is None:
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                        break
                except OSError:
                    time.sleep(0.5)
            else:
                pytest.fail(f"streamlit did not start: {log_path.read_text()[-2000:]}")
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


HEADLINE = re.compile(r"DDPM.*: [+-]\d+\.\d ± \d+\.\d points at \d+ labels? per class \(\d+ seeds\)")


def _traces(page) -> list[str]:
    return page.evaluate(
        "() => { const g = document.querySelector('.js-plotly-plot'); if (!g || !g.data) return [];"
        " return g.data.filter(t => t.showlegend !== false).map(t => t.name); }"
    )


def test_compare_headline_presentation_and_exports(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    ART.mkdir(parents=True, exist_ok=True)
    with _streamlit(tmp_path) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1300}, accept_downloads=True)
        page.set_default_timeout(120_000)
        page.goto(url)
        expect(page.get_by_role("heading", name="Explore")).to_be_visible(timeout=120_000)  # the frame (st.navigation) is up
        page.get_by_test_id("stSidebarNav").get_by_text("Compare", exact=True).click()
        expect(page.get_by_role("heading", name="Compare")).to_be_visible(timeout=120_000)
        headline = page.get_by_role("heading", name=HEADLINE)
        headline.wait_for()
        text = headline.inner_text()
        assert HEADLINE.search(text), text
        page.get_by_text("on the same labeled images").first.wait_for()
        page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot'); return g && g.data; }")
        names = _traces(page)
        assert names[0] == "best generative (chosen on validation)" and "raw pixels + logistic regression" in names, names
        assert page.evaluate("() => document.querySelector('.js-plotly-plot').layout.xaxis.type") == "log"
        page.wait_for_timeout(1200)
        page.screenshot(path=ART / "21-compare.png")

        with page.expect_download() as d:
            page.get_by_role("button", name="One-page HTML report").click()
        report = tmp_path / "report.html"
        d.value.save_as(report)
        body = report.read_text()
        assert "<script" not in body and "http" not in body.split("<footer>")[0] and "data:image/png;base64," in body
        assert HEADLINE.search(body), body[:500]

        page.set_viewport_size({"width": 1440, "height": 1700})  # the whole slide: headline, curve, numbers, method
        page.get_by_text("Presentation view").click()
        big = page.locator("h1").filter(has_text=HEADLINE)
        big.wait_for()
        expect(page.get_by_test_id("stSidebar")).to_be_hidden(timeout=30_000)
        expect(page.locator("[data-testid='stTable']")).to_have_count(1, timeout=60_000)  # the numbers, large
        page.wait_for_timeout(1500)
        page.screenshot(path=ART / "22-presentation.png")
        with page.expect_download() as d:
            page.get_by_role("button", name="Slide PNG").click()
        slide = tmp_path / "slide.png"
        d.value.save_as(slide)
        assert slide.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        offline = browser.new_context(offline=True).new_page()  # the HTML report opens with no network at all
        offline.goto(report.as_uri())
        assert offline.evaluate("() => document.images[0].complete && document.images[0].naturalWidth") > 500
        browser.close()
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    shutil.copyfile(ART / "21-compare.png", docs / "compare.png")
    shutil.copyfile(ART / "22-presentation.png", docs / "presentation.png")
