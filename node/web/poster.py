"""The week on one printed page, for a laundry room's wall (`meshboard poster`).

Made from the same data as the web page (`node.web.pages`), so it holds only the rings that page
may show. fpdf2 lays it out (pure Python); segno draws the QR code to the board's web page (pure
Python, a PNG in memory). Text wraps between words, never inside one; when the week holds more
than the page fits, the last line says how many more there are and where to read them.

Text is shaped by HarfBuzz (uharfbuzz), so right-to-left runs keep their own order and Arabic
letters join. The font is DejaVu Sans from the system (Debian: fonts-dejavu-core, on every
Raspberry Pi OS), which covers Latin, Greek, Cyrillic, Hebrew and Arabic letters. A character
it has no glyph for (an emoji) is printed as U+FFFD, visibly, rather than left out or crashing
the run.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import segno
from fpdf import FPDF

from node.web.pages import Shown, Week

logger = logging.getLogger(__name__)

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/TTF"))
FONT = "DejaVuSans.ttf"
BOLD = "DejaVuSans-Bold.ttf"
REPLACEMENT = "\ufffd"
MARGIN = 15.0  # mm
QR_SIZE = 38.0  # mm: scannable from a step away
LINE = 6.5  # mm per line of body text
Paper = Literal["A4", "Letter"]


class PosterError(Exception):
    """The poster cannot be made here (no font); the message says what to install."""


@dataclass(frozen=True)
class PosterText:
    """What the poster says besides the bulletins."""

    title: str
    url: str  # the web page, in the QR code and the overflow line
    how_to_post: tuple[str, ...]  # lines about posting by radio


def find_font(name: str) -> Path:
    for folder in FONT_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise PosterError(
        f"no {name} on this machine: install the fonts (Debian: apt install fonts-dejavu-core)"
    )


def make_poster(week: Week, text: PosterText, out: Path, paper: Paper = "A4") -> int:
    """Write the poster to `out` (a one-page PDF); returns how many events did not fit."""
    pdf = FPDF(format=paper)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(False)
    pdf.add_font("body", "", str(find_font(FONT)))
    pdf.add_font("body", "B", str(find_font(BOLD)))
    # HarfBuzz shapes the text: Arabic letters joined, right-to-left runs in their own order.
    pdf.set_text_shaping(use_shaping_engine=True)
    pdf.add_page()
    drawable = _Drawable(pdf)
    pdf.set_font("body", "B", 26)
    pdf.multi_cell(pdf.epw - QR_SIZE - 5, 11, drawable(text.title), new_x="LMARGIN")
    qr = io.BytesIO()
    segno.make(text.url, error="m").save(qr, kind="png", scale=10, border=2)
    pdf.image(qr, x=pdf.w - MARGIN - QR_SIZE, y=MARGIN, w=QR_SIZE, h=QR_SIZE)
    pdf.set_y(max(pdf.get_y(), MARGIN + QR_SIZE) + 4)
    footer_height = LINE * (len(text.how_to_post) + 2)
    bottom = pdf.h - MARGIN - footer_height
    lines = _lines(week)
    shown = 0
    for kind, words in lines:
        size, style, height = (15, "B", 8.0) if kind == "heading" else (12, "", LINE)
        pdf.set_font("body", style, size)
        wrapped = pdf.multi_cell(pdf.epw, height, drawable(words), dry_run=True, output="LINES")
        needed = len(wrapped) if isinstance(wrapped, list) else 1
        room = needed * height + LINE + (2 * LINE if kind == "heading" else 0)  # no lone heading
        if pdf.get_y() + room > bottom:
            break
        if kind == "heading" and pdf.get_y() > MARGIN + QR_SIZE + 5:
            pdf.ln(2)
        pdf.multi_cell(pdf.epw, height, drawable(words), new_x="LMARGIN")
        shown += kind == "event"
    missing = sum(1 for kind, _ in lines if kind == "event") - shown
    if missing:
        pdf.set_font("body", "B", 12)
        more = f"… and {missing} more this week: {text.url}"
        pdf.multi_cell(pdf.epw, LINE, drawable(more), new_x="LMARGIN")
    pdf.set_y(bottom + LINE)
    pdf.set_font("body", "B", 12)
    pdf.multi_cell(pdf.epw, LINE, "Post and read by radio", new_x="LMARGIN")
    pdf.set_font("body", "", 11)
    for line in text.how_to_post:
        pdf.multi_cell(pdf.epw, LINE, drawable(line), new_x="LMARGIN")
    pdf.output(str(out))
    return missing


def to_png(pdf_path: Path, png_path: Path, dpi: int = 150) -> None:
    """The poster's page as a picture (pdfium renders it), for a screen or a chat group."""
    import pypdfium2  # only for --png: the PDF needs none of it

    document = pypdfium2.PdfDocument(str(pdf_path))
    try:
        document[0].render(scale=dpi / 72).to_pil().save(png_path, format="PNG")
    finally:
        document.close()


def _lines(week: Week) -> list[tuple[str, str]]:
    """The poster's body, in order: ("heading" | "event" | "note", text)."""
    lines: list[tuple[str, str]] = []
    for day in week.days:
        if day.events:
            lines.append(("heading", day.day.strftime("%A %-d %B")))
            lines += [("event", _event(b)) for b in day.events]
    if week.tools:
        lines.append(("heading", "Tool library"))
        lines += [("event", f"#{t.bulletin.ref} {t.state}: {t.bulletin.text}") for t in week.tools]
    if week.notices:
        lines.append(("heading", "Notices"))
        lines += [("event", f"{b.type} #{b.ref}: {b.text}") for b in week.notices]
    return lines


def _event(shown: Shown) -> str:
    """Time, type and ref first, the person's words last: a right-to-left text then cannot pull
    the ref into its run (the bidi algorithm would print `#(` before it and `5rx9)` after)."""
    when = "" if shown.when is None else shown.when.strftime("%H:%M ")
    return f"{when}{shown.type} #{shown.ref}: {shown.text}"


class _Drawable:
    """Replaces characters the font cannot draw with U+FFFD, visibly."""

    def __init__(self, pdf: FPDF) -> None:
        self._pdf = pdf

    def __call__(self, text: str) -> str:
        font = self._pdf.current_font
        cmap = getattr(font, "cmap", None)
        if not cmap:
            return text
        return "".join(c if ord(c) in cmap or c in "\n\t " else REPLACEMENT for c in text)
