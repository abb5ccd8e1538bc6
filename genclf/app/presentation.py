"""The Compare page's presentation exports (never imports streamlit): one PNG slide and a one-page HTML report that
opens offline (no script, no external file: the chart is an inline data URI, the style is inline CSS).

    png = presentation_png(headline, subline, sentence, chart_png, numbers)
    html = presentation_html(title, headline, subline, sentence, chart_png, numbers, footer)
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
