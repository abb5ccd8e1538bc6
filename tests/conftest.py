"""Shared fixtures: tiny data, an isolated cache and runs dir, tiny trained backbones on `digits`; for the browser
tests, a dashboard server per module (`streamlit_server`) and chromium through playwright (`browser`).

Nothing here downloads anything; the tiny backbones train for a few optimizer steps.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GENCLF_SLOW", "0")
os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/genclf-numba-cache")

TINY_BACKBONES = ("ddpm", "vae", "vqvae", "gan")

# tiny models gain nothing from threads, and oversubscribed OpenMP threads stall badly on 2 cores
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every test gets its own cache and runs dir unless it asks for the session ones."""
    monkeypatch.setenv("GENCLF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GENCLF_RUNS_DIR", os.environ.get("GENCLF_TEST_RUNS_DIR", str(tmp_path / "runs")))
    yield


@pytest.fixture
def run(capsys, monkeypatch, tmp_path):
    """Run `genclf ARGS` in this process, in a scratch folder: (exit code, stdout, stderr)."""
    from genclf import cli

    monkeypatch.chdir(tmp_path)

    def go(*argv: str) -> tuple[int, str, str]:
        try:
            rc = cli.main(list(argv))
        except SystemExit as e:  # argparse
            rc = e.code
        out, err = capsys.readouterr()
        return rc, out, err

    return go


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty $GENCLF_DATA_DIR, and no dataset left in memory from another test."""
    from genclf import data

    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("GENCLF_DATA_DIR", str(d))
    data.registry._load_cached.cache_clear()
    yield d
    data.registry._load_cached.cache_clear()


@pytest.fixture
def tiny_images() -> np.ndarray:
    """48 uint8 images (48, 1, 8, 8): three simple shapes with noise, 16 each."""
    rng = np.random.default_rng(0)
    x = np.zeros((48, 1, 8, 8), np.uint8)
    for i in range(48):
        c = i % 3
        if c == 0:
            x[i, 0, 2:6, 2:6] = 220
        elif c == 1:
            x[i, 0, :, 3:5] = 220
        else:
            x[i, 0, 3:5, :] = 220
    noise = rng.integers(0, 30, x.shape, dtype=np.uint8)
    return np.clip(x.astype(int) + noise, 0, 255).astype(np.uint8)


@pytest.fixture
def tiny_labels() -> np.ndarray:
    return np.arange(48) % 3


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> Path:
    """Tiny ddpm/vae/vqvae/gan trained for 3 steps on `digits`, saved as runs/digits/<name>/."""
    from genclf import data
    from genclf.backbones import get

    root = tmp_path_factory.mktemp("runs")
    ds = data.load("digits")
    for name in TINY_BACKBONES:
        bb = get(name).from_preset("tiny", ds.shape)
        bb.fit(ds.x_train[:256], seed=0, batch_size=32, max_steps=3)
        bb.meta = {"dataset": "digits", "data_fingerprint": ds.fingerprint, "preset": "tiny"}
        bb.save(root / "digits" / name)
    return root


@pytest.fixture
def use_tiny_runs(tiny_runs, monkeypatch) -> Path:
    monkeypatch.setenv("GENCLF_RUNS_DIR", str(tiny_runs))
    return tiny_runs


# ------------------------------------------------------------------ browser tests (tests/test_browser*.py)

CHROMIUM = Path("/usr/bin/chromium")
FMNIST = Path("/usr/share/datasets/fashion-mnist")
ROOT = Path(__file__).resolve().parent.parent
ART = ROOT / "artifacts" / "browser"  # every screenshot; the README's are copied to docs/
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]  # fmt: skip


def _need_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian chromium: sudo apt-get install -y chromium")


@contextlib.contextmanager
def _streamlit(tmp: Path, env_overrides: dict[str, str]):
    """`streamlit run app.py` (genclf.app.serve) on a free 127.0.0.1 port, its own cache/results/runs dirs under
    `tmp`; yields its URL.

    PCA (no UMAP JIT), no UMAP warm-up and no background preparation of the default dataset at start
    (GENCLF_AUTOPREPARE=0): a test that needs one of them passes it in `env_overrides`."""
    from genclf.app import serve

    env = {**os.environ, "GENCLF_CACHE_DIR": str(tmp / "cache"), "GENCLF_RESULTS_DIR": str(tmp / "results"),
           "GENCLF_RUNS_DIR": str(tmp / "runs"), "GENCLF_PROJECTION": "pca", "GENCLF_NO_WARMUP": "1",
           "GENCLF_AUTOPREPARE": "0", **env_overrides}  # fmt: skip
    with serve.dashboard(env, launcher=False, log=tmp / "streamlit.log", timeout_s=180) as (url, _):
        yield url  # serve.NotStarted (with the server's log) errors the test if it does not come up


@pytest.fixture(scope="module")
def streamlit_server(tmp_path_factory):
    """start(**env) -> URL of a dashboard server with those env overrides (see `_streamlit`).

    One server per distinct env, shared by the module's tests (each test opens its own browser session) and
    stopped when the module ends."""
    _need_chromium()
    servers: dict[tuple, str] = {}
    with contextlib.ExitStack() as stack:

        def start(**env: str) -> str:
            key = tuple(sorted(env.items()))
            if key not in servers:
                servers[key] = stack.enter_context(_streamlit(tmp_path_factory.mktemp("streamlit"), env))
            return servers[key]

        yield start


@pytest.fixture(scope="session")
def _chromium():
    """Debian's chromium through playwright, launched once per test session."""
    _need_chromium()
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
    try:
        yield browser
    finally:
        browser.close()
        pw.stop()


class Browser:
    """What a browser test drives: fresh pages (one browser context, i.e. one Streamlit session, each) and
    screenshots. Contexts are closed when the test ends."""

    def __init__(self, chromium):
        self.chromium, self.contexts = chromium, []

    def page(self, url: str | None = None, width: int = 1440, height: int = 1400, timeout_ms: int = 120_000, **kw):
        ctx = self.chromium.new_context(viewport={"width": width, "height": height}, accept_downloads=True, **kw)
        self.contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(timeout_ms)
        if url:
            page.goto(url)
        return page

    @staticmethod
    def shot(page, name: str, full_page: bool = False) -> Path:
        ART.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ART / name, full_page=full_page)
        return ART / name

    @staticmethod
    def to_docs(name: str, doc: str) -> None:
        """Copy a screenshot of this run into docs/ (the README's), once the test's assertions have passed."""
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(ART / name, ROOT / "docs" / doc)

    def close(self, failed_test: str = "") -> None:
        """Close this test's contexts; when the test failed, screenshot its pages first (artifacts/browser/)."""
        for i, ctx in enumerate(self.contexts):
            for j, page in enumerate(ctx.pages if failed_test else []):
                with contextlib.suppress(Exception):
                    self.shot(page, f"FAILED-{failed_test}-{i}{j}.png", full_page=True)
            with contextlib.suppress(Exception):
                ctx.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    if rep.when == "call":
        item.genclf_failed = rep.failed  # for `browser` to screenshot a failed test's pages
    return rep


@pytest.fixture
def browser(_chromium, request):
    b = Browser(_chromium)
    yield b
    b.close(request.node.name if getattr(request.node, "genclf_failed", False) else "")
