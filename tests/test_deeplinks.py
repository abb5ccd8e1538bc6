"""A first visit to a page's own URL (a shared link, a reload) must not show Streamlit's "Page not found" dialog.

Before st.navigation has run in a server process, Streamlit resolves the URL against the files in pages/; a page
whose url_path differs from its file name ("few-shot" for fewshot.py) then opens under a "Page not found" dialog
(seen in chromium on a fresh server). So each page's URL is its file name.
"""

import ast
from pathlib import Path

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


def test_every_page_is_reached_at_its_file_name():
    pages = _pages()
    assert len(pages) >= 6 and all(p.startswith("pages/") for p, _ in pages)
    for path, url in pages:
        assert (ROOT / path).is_file(), path
        assert url in (None, Path(path).stem), f"{path}: url_path {url!r} is not its file name"
