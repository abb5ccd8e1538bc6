"""Real-browser tour of Explore and Few-shot on Fashion-MNIST with the shipped DDPM (issue 11), one server for both
tests (tests/conftest.py's `streamlit_server` and `browser`), 1,000 test images at the default t (the shipped
layouts' best validation t):

1. Explore: hover a point (its class and test index), click it (its image, its neighbours, the point ringed),
   draw the images as the points, search by class name and by test index, filter by class, box-select a region
   and download the selection as CSV and as a zip of its images (their content is checked).
2. Few-shot: train a head -> back on Explore, colour by correct / wrong: the legend turns into correct and wrong,
   whose share matches the test accuracy Few-shot reported on the same images; "misclassified only" keeps the
   wrong ones.
The README's docs/explore.png and docs/fewshot.png are test 2's screenshots.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from genclf import explore

ROOT = Path(__file__).resolve().parent.parent
FMNIST = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not FMNIST.is_dir(), reason="needs Fashion-MNIST: sudo apt-get install -y dataset-fashion-mnist"),
]

BEST_T = explore.shipped.best_t("fashion-mnist", "ddpm")  # the page's default t (no cache: the shipped layouts' best)
GRID = f"{BEST_T},{100 if BEST_T == 50 else 50}"
# the chart at the default t is final (not a preview of another t); every point carries customdata = (position, test index)
READY = """() => { const g = document.querySelector('.js-plotly-plot'); if (!g || !g._fullData) return false;
  const t = JSON.stringify(g.layout.title); return t.includes('DDPM · t=BEST_T') && !t.includes('computing'); }""".replace(
    "BEST_T", str(BEST_T)
)
TRACES = """() => Array.from(document.querySelector('.js-plotly-plot')._fullData).filter(t => t.name !== 'clicked')
  .map(t => [t.name, Array.from(t.customdata, c => c[1]), Array.from(t.text || [])])"""
SELECTED = """() => { const out = []; for (const t of document.querySelector('.js-plotly-plot')._fullData) {
  if (t.name === 'clicked' || !t.selectedpoints) continue; for (const i of t.selectedpoints) out.push(t.customdata[i][1]); }
  return out; }"""
POINTS = """() => { const g = document.querySelector('.js-plotly-plot'), fl = g._fullLayout, r = g.getBoundingClientRect();
  const out = []; for (const d of g._fullData) { if (d.name === 'clicked' || d.name === 'not matching') continue;
    for (let k = 0; k < d.x.length; k++) out.push([r.left + fl.xaxis._offset + fl.xaxis.l2p(d.x[k]),
      r.top + fl.yaxis._offset + fl.yaxis.l2p(d.y[k]), d.customdata[k][1], d.name]); }
  return {pts: out, box: [r.left + fl.xaxis._offset, r.top + fl.yaxis._offset, fl.xaxis._length, fl.yaxis._length]}; }"""
RING = """() => { const d = document.querySelector('.js-plotly-plot')._fullData.find(t => t.name === 'clicked');
  return d ? d.customdata[0][1] : null; }"""


def _wait_plot(page, js: str) -> None:
    """Wait until `js` (a function of no arguments) is truthy on the Explore chart. A rerun briefly removes the
    chart from the page; while it is gone this waits instead of failing on a null element."""
    page.wait_for_function(
        "() => { const g = document.querySelector('.js-plotly-plot');"
        f" return !!(g && g._fullData && g.layout) && !!(({js})()); }}"
    )


MATCH = re.compile(r"([\d,]+) of 1,000 points match")


@pytest.fixture(scope="module")
def server(streamlit_server):
    # the report's sweep in results/ (read only) gives the validation accuracy under the denoising panel
    return streamlit_server(GENCLF_DATASET="fashion-mnist", GENCLF_BACKBONE="ddpm", GENCLF_GRID=GRID,
                            GENCLF_RESULTS_DIR=str(ROOT / "results"))  # fmt: skip


def _explore(browser, server):
    page = browser.page(server + "/?n=1000", height=1300, timeout_ms=60_000)
    page.wait_for_function(READY, timeout=300_000)  # the first visit extracts the 1,000 images' features
    page.wait_for_timeout(800)
    return page


def _tools(page) -> None:
    """Open the 'Colour, search and filter' expander (folded until a tool is first used in the session)."""
    if not page.get_by_test_id("stMultiSelect").filter(has_text="Classes").is_visible():
        page.get_by_text("Colour, search and filter").click()
    page.get_by_test_id("stMultiSelect").filter(has_text="Classes").wait_for()


def _matches(page) -> int:
    page.wait_for_timeout(300)
    caption = page.get_by_text("points match; the rest are faded").last  # mid-rerun the stale one can be there too
    return int(MATCH.search(caption.inner_text()).group(1).replace(",", ""))


def _pick(page, box, typed: str, option: str) -> None:
    """Choose `option` in a select box by typing (a click on the box only focuses it); retried, because a rerun
    that is still drawing can replace the list under the click."""
    from playwright.sync_api import TimeoutError as Timeout

    for attempt in range(5):
        try:
            _tools(page)  # every box picked from is in that panel: open it if it is folded
            box.click(timeout=15_000)
            box.fill(typed)
            page.get_by_role("option", name=option, exact=True).click(timeout=10_000)
            break
        except Timeout:
            if attempt == 4:
                raise
    page.keyboard.press("Escape")


def _download(page, button: str, to: Path) -> None:
    """Click a download button and save the file. Retried: a click that lands while a rerun redraws the buttons
    (the chart's selection event reruns the page) starts no download, as a user's click would not."""
    from playwright.sync_api import TimeoutError as Timeout

    for attempt in range(4):
        try:
            with page.expect_download(timeout=15_000) as d:
                page.get_by_role("button", name=button).click()
            d.value.save_as(to)
            return
        except Timeout:
            if attempt == 3:
                raise


def _plot(page, js: str):
    """Evaluate `js` on the Explore chart once it is on the page (a rerun briefly replaces it)."""
    from playwright.sync_api import Error

    for attempt in range(5):
        page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot'); return !!(g && g._fullData); }")
        try:
            return page.evaluate(js)
        except Error:  # replaced between the wait and the call
            if attempt == 4:
                raise
            page.wait_for_timeout(300)


def _state(page) -> str:
    return _plot(page, f"() => JSON.stringify(({TRACES})())")


def _search(page, text: str) -> None:
    """Type into Search and wait for the chart to redraw."""
    before = _state(page)
    _tools(page)
    box = page.get_by_role("textbox", name="Search")
    box.fill(text)
    box.press("Enter")
    page.wait_for_function(f"(b) => {{ const g = document.querySelector('.js-plotly-plot');"
                          f" return !!(g && g._fullData) && JSON.stringify(({TRACES})()) !== b; }}", arg=before)  # fmt: skip
    page.wait_for_timeout(500)


def _wait_names(page, names) -> None:
    """Wait until the chart's traces are exactly `names` (a rerun that is still drawing shows the state before)."""
    want = json.dumps(sorted(names), separators=(",", ":"))
    _wait_plot(page, "() => JSON.stringify(Array.from(document.querySelector('.js-plotly-plot')._fullData, t => t.name)"
                     f".filter(x => x !== 'clicked').sort()) === '{want}'")  # fmt: skip


def _shown(page) -> dict[str, list[int]]:
    """Trace name -> test indices drawn in it (the faded ones under 'not matching')."""
    return {name: idx for name, idx, _ in _plot(page, TRACES)}


def test_fashion_explore_hover_preview_images_search_and_export(server, browser, tmp_path):
    page = _explore(browser, server)
    classes = _shown(page)
    assert list(classes) == list(CLASSES) and sum(map(len, classes.values())) == 1000

    # hover: the class and the test index; click: the image, its neighbours, the point ringed
    got = _plot(page, POINTS)
    x, y, test_index, name = got["pts"][len(got["pts"]) // 2]
    page.mouse.move(x, y)
    page.locator(".hoverlayer .hovertext").first.wait_for()
    hover = page.locator(".hoverlayer .hovertext").first.text_content()
    assert re.search(r"test image \d+", hover) and any(c in hover for c in CLASSES), hover
    page.mouse.click(x, y)
    page.get_by_text("Nearest neighbours in feature space").first.wait_for()
    _wait_plot(page, f"() => ({RING})() !== null")
    ringed = _plot(page, RING)
    preview = page.locator('[data-testid="stImage"]').first
    assert preview.inner_text().strip().startswith(f"#{ringed} "), preview.inner_text()  # the clicked image
    img = preview.locator("img").element_handle()
    page.wait_for_function("(e) => e.complete && e.naturalWidth > 0", arg=img)
    assert page.evaluate("(e) => e.naturalWidth", img) >= 112  # drawn large (168 px)
    assert len(page.locator('[data-testid="stImage"]').nth(1).locator("img").all()) == 8  # its 8 neighbours
    page.get_by_role("button", name="Clear selection").click()
    _wait_plot(page, f"() => ({RING})() === null")

    # search by class name: that class stays, the rest fade
    _search(page, "trouser")
    shown = _shown(page)
    assert set(shown) == {"not matching", "Trouser"} and len(shown["Trouser"]) == _matches(page) == 100
    # search by test index: exactly those points
    wanted = sorted(classes["Bag"][:2] + classes["Coat"][:1])
    _search(page, f"{wanted[0]}, {wanted[1]}-{wanted[1]}, {wanted[2]}")
    shown = _shown(page)
    assert sorted(i for n, idx in shown.items() if n != "not matching" for i in idx) == wanted and _matches(page) == 3
    # filter by class (search cleared): only bags, and the images drawn as the points
    _search(page, "")
    _wait_names(page, CLASSES)  # the search's clear is drawn before the next pick
    page.wait_for_function("() => !document.body.innerText.includes('points match')")
    _tools(page)
    _pick(page, page.get_by_test_id("stMultiSelect").filter(has_text="Classes").locator("input"), "Bag", "Bag")
    page.get_by_text("points match; the rest are faded").first.wait_for()
    _wait_names(page, {"not matching", "Bag"})
    assert set(_shown(page)) == {"not matching", "Bag"} and _matches(page) == 100
    page.get_by_text("Images as points").click()
    _wait_plot(page, "() => (document.querySelector('.js-plotly-plot').layout.images || []).length > 0")
    thumbs = _plot(page, "() => document.querySelector('.js-plotly-plot').layout.images.map(i => i.source)")
    assert len(thumbs) == 100 and all(s.startswith("data:image/png;base64,") for s in thumbs)  # the matching ones
    browser.shot(page, "41-fashion-images-as-points.png")
    page.get_by_text("Images as points").click()
    page.get_by_role("button", name="Remove Bag").click()
    page.wait_for_function("() => !document.body.innerText.includes('points match')")

    # box-select a region -> CSV and zip of exactly the selected images
    heading = page.get_by_role("heading", name=re.compile(r"^[\d,]+ selected")).first
    for attempt in range(3):  # a rerun that redraws the chart (the filter just removed) can swallow the drag
        page.locator('.modebar-btn[data-attr="dragmode"][data-val="select"]').first.click()
        bx, by, w, h = _plot(page, POINTS)["box"]
        page.mouse.move(bx + w * 0.3, by + h * 0.3)
        page.mouse.down()
        page.mouse.move(bx + w * 0.6, by + h * 0.6, steps=8)
        page.mouse.up()
        try:
            heading.wait_for(timeout=20_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    n = int(heading.inner_text().split(" ")[0].replace(",", ""))
    page.frame_locator("iframe").locator(".ag-row img").first.wait_for()  # the table: this run has drawn
    page.wait_for_timeout(1000)
    selected = sorted(_plot(page, SELECTED))
    assert n >= 2 and len(selected) == n
    _download(page, "Selection as CSV", tmp_path / "selection.csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "selection.csv").read_text())))
    assert sorted(int(r["test_index"]) for r in rows) == selected
    assert all(r["label"] in CLASSES and len(r["neighbours"].split()) == 5 for r in rows)
    _download(page, "Images as zip", tmp_path / "selection.zip")
    with zipfile.ZipFile(tmp_path / "selection.zip") as z:
        pngs = [f for f in z.namelist() if f.endswith(".png")]
        assert sorted(int(f[-9:-4]) for f in pngs) == selected and "selection.csv" in z.namelist()
        assert all(z.read(f)[:8] == b"\x89PNG\r\n\x1a\n" for f in pngs)
        by_label = {int(r["test_index"]): r["label"] for r in rows}
        assert all(f.split("/")[0] == re.sub(r"[^A-Za-z0-9_.-]+", "_", by_label[int(f[-9:-4])]) for f in pngs)
    browser.shot(page, "42-fashion-export.png", full_page=True)


CONFIDENCE = """() => {
    const t = document.querySelector('.js-plotly-plot')._fullData.find(t => t.name === 'confidence');
    return {n: t.x.length, c: Array.from(t.marker.color), bar: !!t.marker.showscale};
}"""


def test_fashion_fewshot_then_colour_by_correctness(server, browser):
    page = _explore(browser, server)
    page.get_by_test_id("stSidebarNav").get_by_text("Few-shot").click()
    page.get_by_role("button", name="Train").click()
    metric = page.get_by_test_id("stMetric").filter(has_text="Test accuracy").first  # a rerun can show a stale copy
    metric.wait_for(timeout=300_000)  # validation and test features at the default t
    accuracy = metric.get_by_test_id("stMetricValue").inner_text()
    page.get_by_text("Scored on a stratified 1,000 of the 10,000 test images").first.wait_for()  # Explore's 1,000
    page.wait_for_timeout(1500)
    browser.shot(page, "43-fashion-fewshot.png")

    page.get_by_test_id("stSidebarNav").get_by_text("Explore").click()
    page.wait_for_function(READY, timeout=300_000)
    assert list(_shown(page)) == list(CLASSES)  # true classes until asked otherwise
    _tools(page)
    _pick(page, page.get_by_test_id("stSelectbox").filter(has_text="Colour by").locator("input"), "correct", "correct / wrong")
    page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot');"
                           " return !!(g && g._fullData && g._fullData.some(t => t.name === 'correct')); }")  # fmt: skip
    page.wait_for_timeout(800)
    shown = _shown(page)
    assert set(shown) == {"correct", "wrong"}, list(shown)  # every point scored by the run
    right, wrong = len(shown["correct"]), len(shown["wrong"])
    assert right + wrong == 1000 and f"{100 * right / 1000:.1f}%" == accuracy  # the run's own test accuracy
    page.wait_for_function(  # the legend drawn on the chart says so too
        "() => { const g = document.querySelector('.js-plotly-plot'); return !!g && Array.from("
        "g.querySelectorAll('.legend .traces'), e => e.textContent.trim()).join('|') === 'correct|wrong'; }"
    )
    page.wait_for_timeout(1500)
    browser.shot(page, "44-fashion-correct-wrong.png")
    _tools(page)
    page.get_by_text("Misclassified only").click()
    page.get_by_text("points match; the rest are faded").first.wait_for()
    _wait_names(page, {"not matching", "wrong"})
    assert _matches(page) == wrong and set(_shown(page)) == {"not matching", "wrong"}
    page.get_by_text("Misclassified only").click()
    page.wait_for_function("() => !document.body.innerText.includes('points match')")

    # colour by the head's confidence: one trace on a continuous scale with a colour bar, values in (0, 1]
    _tools(page)
    _pick(page, page.get_by_test_id("stSelectbox").filter(has_text="Colour by").locator("input"), "confid", "confidence")
    page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot');"
                           " return !!(g && g._fullData && g._fullData.some(t => t.name === 'confidence')); }")  # fmt: skip
    conf = _plot(page, CONFIDENCE)
    assert conf["n"] == 1000 and conf["bar"], conf["n"]
    assert all(0 < c <= 1.0 + 1e-6 for c in conf["c"]) or all(0 < c <= 100.0 + 1e-6 for c in conf["c"])
    assert len(set(round(c, 3) for c in conf["c"])) > 10  # a real spread of confidences, not one colour
    page.wait_for_timeout(1000)
    browser.shot(page, "45-fashion-confidence.png")
    browser.to_docs("44-fashion-correct-wrong.png", "explore.png")
    browser.to_docs("43-fashion-fewshot.png", "fewshot.png")
