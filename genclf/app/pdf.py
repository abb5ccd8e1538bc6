"""A one-page PDF, written by hand (nothing to install, nothing to fetch): text in the standard Helvetica fonts
that every PDF reader has (so nothing is embedded but the images), filled rectangles, lines and RGB images.

    page = Page(595, 842)                               # A4 portrait, in points (1/72 inch), origin top left
    page.text(40, 60, "Headline", 24, bold=True)        # y is the baseline
    page.image(40, 100, 515, 260, png_bytes)
    pdf_bytes = page.pdf(title="Report")

Text is encoded as WinAnsi (cp1252: ±, –, ·, × and accented letters print; anything else becomes '?').
PDF 1.4, ISO 32000-1: one Catalog, one Pages with one Page, its content stream, two fonts, the images, an Info.
"""

from __future__ import annotations

import io
import zlib

# Helvetica advance widths (Adobe's AFM, 1/1000 em) for ' ' (32) .. '~' (126); other characters count as 556.
_AFM = """
278 278 355 556 556 889 667 191 333 333 389 584 278 333 278 278 556 556 556 556 556 556 556 556 556 556 278
278 584 584 584 556 1015 667 667 722 722 667 611 778 722 278 500 667 556 833 722 778 667 778 722 667 611 722
667 944 667 667 611 278 278 278 469 556 333 556 556 500 556 556 278 556 556 222 222 500 222 833 556 556 556
556 333 500 278 556 500 722 500 500 500 334 260 334 584
"""
_W = tuple(map(int, _AFM.split()))
_WIDE = {"±": 584, "×": 584, "·": 278, "–": 556, "—": 1000, "•": 350, "…": 1000}
BOLD = 1.08  # Helvetica-Bold runs up to ~8% wider; measuring with it keeps a wrapped line inside its box


def width(text: str, size: float, bold: bool = False) -> float:
    """The printed width of `text` in points at `size`."""
    units = sum(_W[ord(ch) - 32] if 32 <= ord(ch) <= 126 else _WIDE.get(ch, 556) for ch in text)
    return units * size / 1000 * (BOLD if bold else 1.0)


def wrap(text: str, size: float, max_width: float, bold: bool = False) -> list[str]:
    """Greedy word wrap to lines no wider than max_width (a single longer word stays whole on its line)."""
    lines, cur = [], ""
    for word in text.split():
        nxt = f"{cur} {word}".strip()
        if cur and width(nxt, size, bold) > max_width:
            lines.append(cur)
            cur = word
        else:
            cur = nxt
    return lines + ([cur] if cur else [])


def _rgb(colour: str) -> str:
    c = colour.lstrip("#")
    return " ".join(f"{int(c[i : i + 2], 16) / 255:.3f}" for i in (0, 2, 4))


def _string(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


class Page:
    """One page; coordinates in points from the top left (converted to PDF's bottom-left origin on writing)."""

    def __init__(self, w: float = 595.0, h: float = 842.0):
        self.w, self.h = w, h
        self.ops: list[bytes] = []
        self.images: list[tuple[int, int, bytes]] = []  # (width, height, zlib-compressed RGB)

    def text(self, x: float, y: float, s: str, size: float, *, bold: bool = False, colour: str = "#111111",
             align: str = "left") -> None:  # fmt: skip
        """`s` with its baseline at y; align 'right' ends it at x."""
        if align == "right":
            x -= width(s, size, bold)
        font = "F2" if bold else "F1"
        self.ops.append(f"BT /{font} {size:.2f} Tf {_rgb(colour)} rg {x:.2f} {self.h - y:.2f} Td ".encode()
                        + _string(s) + b" Tj ET")  # fmt: skip

    def rect(self, x: float, y: float, w: float, h: float, fill: str) -> None:
        self.ops.append(f"{_rgb(fill)} rg {x:.2f} {self.h - y - h:.2f} {w:.2f} {h:.2f} re f".encode())

    def line(self, x0: float, y0: float, x1: float, y1: float, colour: str = "#999999", lw: float = 0.6) -> None:
        self.ops.append(f"{_rgb(colour)} RG {lw:.2f} w {x0:.2f} {self.h - y0:.2f} m {x1:.2f} {self.h - y1:.2f} l S".encode())

    def image(self, x: float, y: float, w: float, h: float, png: bytes) -> None:
        """An image (any format PIL reads) drawn into the box (x, y, w, h), stretched to it."""
        from PIL import Image

        im = Image.open(io.BytesIO(png)).convert("RGB")
        self.images.append((im.width, im.height, zlib.compress(im.tobytes(), 6)))
        name = f"Im{len(self.images)}"
        self.ops.append(f"q {w:.2f} 0 0 {h:.2f} {x:.2f} {self.h - y - h:.2f} cm /{name} Do Q".encode())

    def pdf(self, title: str = "") -> bytes:
        """The whole file. Object numbers: 1 Catalog, 2 Pages, 3 Page, 4-5 fonts, 6 contents, 7 Info, 8+ images."""
        content = b"\n".join(self.ops)
        xobjects = " ".join(f"/Im{i + 1} {8 + i} 0 R" for i in range(len(self.images)))
        font = "<< /Type /Font /Subtype /Type1 /BaseFont /{} /Encoding /WinAnsiEncoding >>"
        objs = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            (
                f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {self.w:.0f} {self.h:.0f}] /Contents 6 0 R "
                f"/Resources << /Font << /F1 4 0 R /F2 5 0 R >> /XObject << {xobjects} >> >> >>"
            ).encode(),  # fmt: skip
            font.format("Helvetica").encode(),
            font.format("Helvetica-Bold").encode(),
            b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
            b"<< /Title " + _string(title) + b" /Producer (genclf) >>",
        ]
        for w, h, data in self.images:
            head = f"<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceRGB "
            head += f"/BitsPerComponent 8 /Filter /FlateDecode /Length {len(data)} >>\nstream\n"
            objs.append(head.encode() + data + b"\nendstream")
        out = io.BytesIO()
        out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for i, body in enumerate(objs, 1):
            offsets.append(out.tell())
            out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
        xref = out.tell()
        out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
        out.write(b"".join(b"%010d 00000 n \n" % o for o in offsets))
        out.write(b"trailer\n<< /Size %d /Root 1 0 R /Info 7 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref))
        return out.getvalue()
