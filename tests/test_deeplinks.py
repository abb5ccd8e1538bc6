"""A page's own URL (a shared link, a bookmark, a reload) opens that page, also as the first visit to a fresh server.

Streamlit auto-discovers a `pages/` folder beside the main script. Before st.navigation had run in a server
process, a first visit to /fewshot ran pages/fewshot.py without app.py's frame, and the frame then sent the
visitor to Explore (seen in chromium). So the pages live in ui/, and each page's URL is its file name.
"""

import ast
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _pages() -> list[tuple[str, str | None]]:
    tree = ast.parse((ROOT / "app.py").read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Page":
            path = node.args[0].value
            kw = {k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)}
            out.append((path, kw.get("url_path")))
    return out


def test_every_page_is_reached_at_its_file_name_and_none_is_auto_discovered():
    pages = _pages()
    assert len(pages) >= 6 and all(p.startswith("ui/") for p, _ in pages)
    assert not (ROOT / "pages").exists(), "Streamlit would run pages/*.py without app.py on a first visit"
    for path, url in pages:
        assert (ROOT / path).is_file(), path
        assert url in (None, Path(path).stem), f"{path}: url_path {url!r} is not its file name"


@pytest.mark.browser
@pytest.mark.parametrize(("path", "title"), [("fewshot?t=50", "Few-shot"), ("datasets", "Data")])
def test_a_first_visit_to_a_page_url_on_a_fresh_server_opens_that_page(streamlit_server, tiny_runs, browser, path, title):
    from playwright.sync_api import expect

    # a server of its own (the tag makes the env distinct), so this visit is the first one it serves
    url = streamlit_server(GENCLF_RUNS_DIR=str(tiny_runs), GENCLF_DATASET="digits", GENCLF_GRID="0,50", GENCLF_TAG=path)
    page = browser.page(f"{url}/{path}")
    heading = page.get_by_role("heading", name=title, exact=True)
    expect(heading).to_be_visible(timeout=120_000)
    page.wait_for_timeout(2_000)  # the old redirect to Explore came after the first run
    expect(heading).to_be_visible()
    assert urlparse(page.url).path == "/" + path.split("?")[0]
    assert page.get_by_text("Page not found").count() == 0
    browser.shot(page, f"05-first-visit-{path.split('?')[0]}.png")
