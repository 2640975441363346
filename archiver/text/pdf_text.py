"""Text on PDF pages for people: the one CJK font, line wrapping and A4 pages of lines.

Shared by the audit log's PDF report (archiver/audit/export.py) and the reviewers' renderings
of an evidence export (archiver/exports/pdf.py).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from typing import BinaryIO

FONT = "STSong-Light"  # a CID font built into reportlab and every PDF reader: no font files
SIZE = 8.5
LEADING = 11.0
TAB = "    "


def register_font() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))


@lru_cache(maxsize=65536)
def char_width(char: str, size: float) -> float:
    # A CID font has no kerning, so a line's width is the sum of its characters' widths: wrapping
    # adds one cached width per character instead of measuring the growing line again.
    from reportlab.pdfbase.pdfmetrics import stringWidth

    register_font()
    return float(stringWidth(char, FONT, size))


def printable(text: str) -> str:
    """`text` as it can be drawn: tabs as spaces, control and format characters (NUL, escape,
    bidirectional overrides that would reorder what a reviewer reads) as U+FFFD, and lone
    surrogates (from undecodable bytes) as U+FFFD since the font's UTF-16 encoding refuses them."""
    if text.isprintable():  # the common case: nothing to replace
        return text
    out = []
    for char in text:
        if char == "\t":
            out.append(TAB)
        elif char == " " or unicodedata.category(char) not in {"Cc", "Cf", "Cs", "Zl", "Zp"}:
            out.append(char)
        else:
            out.append("\ufffd")
    return "".join(out)


def wrap(text: str, size: float, room: float) -> Iterator[str]:
    """`text` (one line, no newlines) in pieces no wider than `room` points. Breaks after the last
    space when the piece has one late enough, else between any two characters: Chinese has no
    spaces to break at, and neither has a hostile 1 MB line. An empty text gives one piece."""
    current: list[str] = []
    width = 0.0
    space = -1  # index in current just after its last space
    for char in text:
        w = char_width(char, size)
        broke = False
        while current and width + w > room:
            broke = True
            # at a space in the line's second half: a space early in a Chinese line would waste
            # most of the line, a long word is better split than left alone on its line
            if len(current) // 2 < space < len(current) and char != " ":
                yield "".join(current[:space]).rstrip(" ")
                current = current[space:]
                width = sum(char_width(c, size) for c in current)
            else:
                yield "".join(current).rstrip(" ")
                current, width = [], 0.0
            space = -1
        if broke and char == " " and not current:
            continue  # no line starts with the space it broke at
        current.append(char)
        width += w
        if char == " ":
            space = len(current)
    yield "".join(current)


class PdfPages:
    """Lines down A4 pages, wrapped to the width, numbered at the foot.

    `invariant`: the same lines give the same bytes (no creation date, a fixed document id)."""

    def __init__(self, out: BinaryIO, title: str, *, invariant: bool = False) -> None:
        from reportlab.lib.pagesizes import A4
        from reportlab.pdfgen.canvas import Canvas

        register_font()
        self.width, self.height = A4
        self.margin = 40.0
        self.canvas = Canvas(out, pagesize=A4, pageCompression=1, invariant=int(invariant))
        self.canvas.setTitle(title)
        self.page = 0
        self.y = 0.0
        self._new_page()

    def _new_page(self) -> None:
        if self.page:
            self.canvas.showPage()
        self.page += 1
        self.y = self.height - self.margin
        self.canvas.setFont(FONT, 7)
        self.canvas.drawRightString(self.width - self.margin, self.margin / 2, f"{self.page}")

    @property
    def page_full(self) -> bool:
        return self.y < self.margin + LEADING

    def line(
        self,
        text: str,
        *,
        size: float = SIZE,
        indent: float = 0.0,
        last_page: int | None = None,
    ) -> bool:
        """Draw `text` wrapped. With `last_page`, stop rather than start a page after it and
        return False: the caller says what was left out."""
        room = self.width - 2 * self.margin - indent
        for part in wrap(printable(text), size, room):
            if self.page_full:
                if last_page is not None and self.page >= last_page:
                    return False
                self._new_page()
            self.canvas.setFont(FONT, size)
            self.canvas.drawString(self.margin + indent, self.y, part)
            self.y -= max(LEADING, size * 1.3)
        return True

    def gap(self) -> None:
        self.y -= LEADING / 2

    def close(self) -> None:
        self.canvas.save()
