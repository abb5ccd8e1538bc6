"""The Compare page's presentation exports (never imports streamlit): one PNG slide, a one-page HTML report and a
one-page PDF report, each opening offline (no script, no external file: in HTML the chart is an inline data URI and
the style inline CSS; the PDF uses the readers' built-in Helvetica and embeds the chart).

    png = presentation_png(headline, subline, sentence, chart_png, numbers)
    html = presentation_html(title, headline, subline, sentence, chart_png, numbers, footer)
    pdf = presentation_pdf(title, headline, subline, sentence, chart_png, numbers, footer)
"""

from __future__ import annotations

import base64
import html
import io

import pandas as pd


def method_sentence(dataset: str, n_test: int | None, backbone: str, same_head: bool) -> str:
    """One sentence of method, in plain words, for the slide and the report."""
    test = f"the {n_test:,} test images" if n_test else "the test images"
    heads = "" if same_head else " (where the best pipeline uses another head, the lead also compares heads)"
    return (
        f"A {backbone} learned from the unlabeled {dataset} images turns each image into features; a small classifier "
        f"trained on k labeled images per class is scored on {test}, against logistic regression on raw pixels "
        f"trained on the very same images{heads}. Every choice is made on a separate validation split."
    )


def presentation_png(
    headline: str, subline: str, sentence: str, chart_png: bytes, numbers: pd.DataFrame, size=(1600, 1200)
) -> bytes:
    """A slide: the headline in large type, a subline, the chart, the numbers table and the method sentence."""
    from PIL import Image, ImageDraw, ImageFont

    w, h = size
    big, mid, small = (ImageFont.load_default(size=s) for s in (56, 28, 22))
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    y = 40
    for line in _wrap(d, headline, big, w - 100):
        d.text((50, y), line, fill="#111", font=big)
        y += 68
    for line in _wrap(d, subline, mid, w - 100):
        d.text((50, y), line, fill="#333", font=mid)
        y += 36
    table_h = 34 * (len(numbers) + 1) + 20
    text_lines = _wrap(d, sentence, small, w - 100)
    chart_h = h - y - 20 - table_h - 30 * len(text_lines) - 30
    chart = Image.open(io.BytesIO(chart_png)).convert("RGB")
    scale = min((w - 100) / chart.width, chart_h / chart.height)
    chart = chart.resize((int(chart.width * scale), int(chart.height * scale)), Image.LANCZOS)
    img.paste(chart, (50, y + 10))
    y += chart.height + 20
    cols = [str(c) for c in numbers.columns]
    first = max([d.textlength(str(i), font=small) for i in numbers.index] + [d.textlength("per class", font=small)]) + 30
    cw = (w - 100 - first) / max(len(cols), 1)
    d.text((50, y), "per class", fill="#555", font=small)
    for j, c in enumerate(cols):
        d.text((50 + first + cw * (j + 1) - 10, y), c, fill="#555", font=small, anchor="ra")
    y += 34
    for i, (name, row) in enumerate(numbers.iterrows()):
        if i % 2 == 0:
            d.rectangle([45, y - 4, w - 45, y + 28], fill="#f3f3f3")
        d.text((50, y), str(name), fill="#111", font=small)
        for j, v in enumerate(row):
            d.text((50 + first + cw * (j + 1) - 10, y), str(v), fill="#111", font=small, anchor="ra")
        y += 34
    y += 10
    for line in text_lines:
        d.text((50, y), line, fill="#444", font=small)
        y += 30
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _wrap(d, text: str, font, width: float) -> list[str]:
    lines, cur = [], ""
    for word in text.split():
        nxt = f"{cur} {word}".strip()
        if d.textlength(nxt, font=font) > width and cur:
            lines.append(cur)
            cur = word
        else:
            cur = nxt
    return lines + ([cur] if cur else [])


def presentation_html(
    title: str, headline: str, subline: str, sentence: str, chart_png: bytes, numbers: pd.DataFrame, footer: str = ""
) -> str:
    """A self-contained one-page HTML report (inline CSS, the chart as a data URI, no script): opens offline, prints
    on one page."""
    e = html.escape
    img = base64.b64encode(chart_png).decode()
    head = "".join(f"<th>{e(str(c))}</th>" for c in numbers.columns)
    body = "".join(
        f"<tr><th>{e(str(i))}</th>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>" for i, row in numbers.iterrows()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2.5em auto; max-width: 1100px; color: #111; }}
h1 {{ font-size: 2.4em; margin: 0 0 .2em; }} .sub {{ font-size: 1.3em; color: #333; margin: 0 0 1em; }}
img {{ width: 100%; }} table {{ border-collapse: collapse; width: 100%; font-size: 1.05em; margin: 1em 0; }}
th, td {{ padding: .35em .6em; text-align: right; font-variant-numeric: tabular-nums; }}
th:first-child {{ text-align: left; font-weight: normal; }} thead th {{ color: #555; border-bottom: 1px solid #999; }}
tbody tr:nth-child(odd) {{ background: #f3f3f3; }} .method {{ color: #444; }} footer {{ color: #777; font-size: .85em; }}
@media print {{ body {{ margin: 0; max-width: none; }} }}
</style></head><body>
<h1>{e(headline)}</h1>
<p class="sub">{e(subline)}</p>
<img alt="{e(title)}" src="data:image/png;base64,{img}">
<table><thead><tr><th>labeled images per class</th>{head}</tr></thead><tbody>{body}</tbody></table>
<p class="method">{e(sentence)}</p>
<footer>{e(footer)}</footer>
</body></html>
"""


def presentation_pdf(
    title: str, headline: str, subline: str, sentence: str, chart_png: bytes, numbers: pd.DataFrame, footer: str = ""
) -> bytes:
    """The one-page HTML report as a one-page A4 PDF (hand-written, see genclf.app.pdf): the headline in large type,
    the subline, the chart, the numbers table (its type shrinks to fit the columns), the method sentence, a footer."""
    from PIL import Image

    from genclf.app.pdf import Page, width, wrap

    page = Page(595, 842)
    left, right, bottom = 40.0, 555.0, 802.0
    span = right - left
    y = 40.0
    for line in wrap(headline, 22, span, bold=True):
        y += 26
        page.text(left, y, line, 22, bold=True)
    y += 6
    for line in wrap(subline, 11, span):
        y += 15
        page.text(left, y, line, 11, colour="#333333")
    method = wrap(sentence, 9.5, span)
    rows = [(str(i), [str(v) for v in r]) for i, r in numbers.iterrows()]
    cols, first = [str(c) for c in numbers.columns], "labeled images per class"
    size = 10.5
    while size > 6:  # the numbers table: as large as lets every column fit; long row names wrap
        name_w = min(max([width(n, size) for n, _ in rows] + [width(first, size)]) + 10, span * 0.34)
        col_w = max([width(v, size) for _, r in rows for v in r] + [width(c, size) for c in cols] + [0]) + 10
        if name_w + col_w * len(cols) <= span:
            break
        size -= 0.5
    col_w = (span - name_w) / max(len(cols), 1)
    lead = size * 1.35
    names = [wrap(n, size, name_w - 8) or [""] for n, _ in rows]
    table_h = lead * (1 + sum(len(n) for n in names)) + 8
    chart_room = bottom - y - 16 - table_h - 12 - 12.5 * len(method) - (20 if footer else 0)
    cw, ch = Image.open(io.BytesIO(chart_png)).size
    scale = min(span / cw, max(chart_room, 60) / ch)
    page.image(left, y + 12, cw * scale, ch * scale, chart_png)
    y += 12 + ch * scale + 16
    page.text(left, y, first, size, colour="#555555")
    for j, c in enumerate(cols):
        page.text(left + name_w + col_w * (j + 1) - 4, y, c, size, colour="#555555", align="right")
    page.line(left, y + 4, right, y + 4)
    y += 4
    for i, ((_, values), lines) in enumerate(zip(rows, names, strict=True)):
        h = lead * len(lines)
        if i % 2 == 0:
            page.rect(left, y, span, h, "#f3f3f3")
        for k, line in enumerate(lines):
            page.text(left + 2, y + lead * (k + 1) - lead * 0.3, line, size)
        for j, v in enumerate(values):
            page.text(left + name_w + col_w * (j + 1) - 4, y + lead - lead * 0.3, v, size, align="right")
        y += h
    y += 12
    for line in method:
        y += 12.5
        page.text(left, y, line, 9.5, colour="#444444")
    if footer:
        page.text(left, bottom + 10, footer, 8, colour="#777777")
    return page.pdf(title)
