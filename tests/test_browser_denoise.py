"""Real-browser test of the denoising panel (issue 15) on Fashion-MNIST with the shipped DDPM.

Explore -> project 1,000 test images -> click a point -> x0 | x_t | x̂0 appear -> move t from 50 to 150 ->
x_t and x̂0 change (x0 does not) and the line under them gives the SNR and the validation accuracy from the
shipped report's sweep. Its screenshot is the README's docs/denoise.png. The launch is test_browser.py's:
`streamlit run app.py` on a free port, Debian's chromium through playwright, PCA, no UMAP warm-up.
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
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync"]  # fmt: skip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium: sudo apt-get install -y chromium"),
    pytest.mark.skipif(not FMNIST.is_dir(), reason="needs Fashion-MNIST: sudo apt-get install -y dataset-fashion-mnist"),
]


@contextlib.contextmanager
def _streamlit(tmp_path: Path, **env_overrides: str):
    """`streamlit run app.py` on a free 127.0.0.1 port; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GENCLF_CACHE_DIR": str(tmp_path / "cache"), "GENCLF_PROJECTION": "pca", "GENCLF_NO_WARMUP": "1",
           **env_overrides}  # fmt: skip
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]  # fmt: skip
    log_path = tmp_path / "streamlit.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url, deadline = f"http://127.0.0.1:{port}", time.time() + 120
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


def _panel(page) -> list[list[str]]:
    """[src, caption] of each image in the denoising panel."""
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('.st-key-denoise_panel [data-testid=\"stImage\"]'))"
        ".map(e => [e.querySelector('img').src, e.innerText.trim()])"
    )


def test_denoise_panel_follows_t(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    ART.mkdir(parents=True, exist_ok=True)
    # the report's sweep in results/ (read only) gives the validation accuracy under the panel
    env = {"GENCLF_DATASET": "fashion-mnist", "GENCLF_BACKBONE": "ddpm", "GENCLF_RUNS_DIR": str(tmp_path / "runs"),
           "GENCLF_RESULTS_DIR": str(ROOT / "results"), "GENCLF_GRID": "50,150"}  # fmt: skip
    with _streamlit(tmp_path, **env) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1400})
        page.set_default_timeout(240_000)
        page.goto(url + "/?t=50&n=1000")  # the view lives in the URL; 1,000 images: half the default extraction
        expect(page.get_by_role("heading", name="Explore")).to_be_visible(timeout=120_000)
        page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot'); return g && g._fullData; }")
        page.wait_for_timeout(1000)
        x, y = page.evaluate(
            """() => { const g = document.querySelector('.js-plotly-plot'); const fl = g._fullLayout;
            const r = g.getBoundingClientRect(), d = g._fullData[g._fullData.length - 1];  // the last class
            return [r.left + fl.xaxis._offset + fl.xaxis.l2p(d.x[0]), r.top + fl.yaxis._offset + fl.yaxis.l2p(d.y[0])]; }"""
        )
        page.mouse.click(x, y)
        page.locator(".st-key-denoise_panel img").nth(2).wait_for()
        before = _panel(page)
        assert [c for _, c in before][:2] == ["x₀ (clean)", "x_t (t=50)"] and before[2][1].startswith("x̂₀"), before

        page.get_by_role("button", name="Custom t").click()  # any t, computed on request (the slider snaps to ready t)
        box = page.locator('[data-testid="stNumberInput"]').filter(has_text="Any timestep").locator("input")
        box.fill("150")
        box.press("Enter")
        page.get_by_role("button", name="Show this t").click()
        page.locator(".st-key-denoise_panel").get_by_text("x_t (t=150)").wait_for()
        after = _panel(page)
        assert after[0][0] == before[0][0], "x0 must not change with t"
        assert after[1][0] != before[1][0] and after[2][0] != before[2][0], "x_t and x̂0 must change with t"
        line = page.locator(".st-key-denoise_panel").get_by_text("t=150 · SNR").inner_text()
        assert "validation accuracy" in line and "%" in line, line
        # the screenshot waits for the chart at t=150 too (the grid computes it in the background)
        page.wait_for_function(
            "() => { const t = JSON.stringify(document.querySelector('.js-plotly-plot').layout.title);"
            " return t.includes('t=150') && !t.includes('computing'); }"
        )
        page.wait_for_timeout(1000)
        page.screenshot(path=ART / "21-denoise.png")
        browser.close()
    (ROOT / "docs").mkdir(exist_ok=True)
    shutil.copyfile(ART / "21-denoise.png", ROOT / "docs" / "denoise.png")
