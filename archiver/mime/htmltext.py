"""HTML to plain text for indexing and display, safe on hostile input.

Uses the stdlib html.parser. The input is fed in one piece (so the parser never rescans a growing
buffer), '<' characters that can never start a tag are escaped first (they make html.parser rescan
to the end of the input once per '<' on close), and the output is bounded.
"""

from __future__ import annotations

from html.parser import HTMLParser

__all__ = ["html_to_text"]

DEFAULT_MAX_CHARS = 2_000_000
# html.parser costs a few microseconds per tag: 4 M characters of tag soup take a few seconds.
DEFAULT_MAX_INPUT_CHARS = 4_000_000

_SKIP = frozenset({"script", "style", "head", "noscript", "template", "title", "svg", "object"})
_BLOCK = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "center",
        "dd",
        "details",
        "dialog",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "html",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "tfoot",
        "thead",
        "tr",
        "ul",
        "caption",
    }
)
_CELL = frozenset({"td", "th"})


class _TextExtractor(HTMLParser):
    def __init__(self, max_chars: int) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.size = 0
        self.max_chars = max_chars
        self.skip_depth = 0
        self.full = False
        self.newline = True  # the last thing emitted ends a line

    def updatepos(self, i: int, j: int) -> int:
        # Line/column bookkeeping rescans every consumed span for newlines; nobody reads it here.
        return j

    def _newline(self) -> None:
        if not self.newline:
            self._emit("\n")
            self.newline = True

    def _emit(self, text: str) -> None:
        if self.full:
            return
        room = self.max_chars - self.size
        if len(text) >= room:
            text = text[:room]
            self.full = True
        self.parts.append(text)
        self.size += len(text)
        self.newline = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip_depth += 1
        elif tag == "br":
            self._emit("\n")
            self.newline = True
        elif tag in _BLOCK:
            self._newline()
        elif tag in _CELL:
            self._emit(" \t")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/>, <div/>, and a self-closed <script/> which has no content to skip.
        if tag == "br":
            self._emit("\n")
            self.newline = True
        elif tag in _BLOCK:
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            if self.skip_depth:
                self.skip_depth -= 1
        elif tag in _BLOCK:
            self._newline()

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self._emit(data)


def _escape_hopeless_brackets(html: str) -> str:
    """Escape each '<' after the last '>': none of them can start a complete tag, and html.parser
    rescans the rest of the input for every one of them when the input is closed. A comment
    opened there runs to the end of the document, as in browsers."""
    tail_start = html.rfind(">") + 1
    if html.find("<", tail_start) < 0:
        return html
    tail = html[tail_start:]
    comment = tail.find("<!--")
    if comment >= 0:
        tail = tail[:comment]
    return html[:tail_start] + tail.replace("<", "&lt;")


def _tidy(text: str, max_chars: int) -> str:
    """Collapse runs of blanks inside lines, strip lines, keep at most one empty line in a row."""
    lines: list[str] = []
    blank = True  # drop leading empty lines
    for raw in text.split("\n"):
        line = " ".join(raw.split())
        if line:
            lines.append(line)
            blank = False
        elif not blank:
            lines.append("")
            blank = True
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)[:max_chars]


def html_to_text(
    html: str,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
) -> str:
    """Readable text of an HTML document: no script/style/head contents, block elements and <br>
    as line breaks, entities decoded, whitespace collapsed, link text kept. At most max_chars of
    output from at most max_input_chars of input (the rest of a longer document is ignored)."""
    if not html:
        return ""
    if len(html) > max_input_chars:
        html = html[:max_input_chars]
    parser = _TextExtractor(max_chars)
    try:
        parser.feed(_escape_hopeless_brackets(html.replace("\x00", "")))
        parser.close()
    except Exception:  # html.parser is lenient; keep whatever was extracted before any surprise
        pass
    return _tidy("".join(parser.parts), max_chars)
