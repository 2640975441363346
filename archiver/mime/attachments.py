"""Attachment text: the words inside text, HTML, PDF, DOCX, XLSX, PPTX and attached messages.

Runs in the worker, next to the parser. Every attachment is hostile until read: its size is checked
before anything is decompressed (OOXML: the sizes declared in the zip directory, which zipfile
enforces while reading), each attachment runs under a deadline, PDFs are read up to a page limit,
and any failure becomes an error string on the result. Nothing here raises to the caller.

The deadline is checked between pages, paragraphs and rows (works in any thread) and, in the main
thread of a process (pool workers, Celery prefork children, the CLI), also enforced by an
ITIMER_REAL alarm, which interrupts a library stuck inside one call.

OOXML is read with zipfile + xml.etree rather than python-docx/openpyxl/python-pptx: it streams,
needs no dependency, and the parts read are known before decompressing them. ElementTree does not
resolve external entities, and expat >= 2.4 stops entity-expansion ("billion laughs") attacks.
"""

from __future__ import annotations

import io
import logging
import posixpath
import re
import signal
import threading
import time
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import IO, Any

from archiver.mime.charsets import decode_bytes
from archiver.mime.htmltext import html_to_text
from archiver.models import ParsedMessage

__all__ = [
    "DEFAULT_LIMITS",
    "AttachmentTexts",
    "ExtractLimits",
    "Extraction",
    "detect_kind",
    "extract_text",
]

log = logging.getLogger(__name__)
# A damaged PDF makes pypdf log dozens of warnings; the failure is recorded on the message instead.
logging.getLogger("pypdf").setLevel(logging.ERROR)


@dataclass(frozen=True)
class ExtractLimits:
    max_bytes: int = 20 * 1024 * 1024  # a larger attachment is skipped, with the reason recorded
    max_chars: int = 1_000_000  # attachment text kept per message
    timeout_s: float = 10.0  # per attachment
    budget_s: float = 60.0  # all attachments of one message together
    max_pdf_pages: int = 500
    max_unpacked_bytes: int = 100 * 1024 * 1024  # OOXML: uncompressed size of the parts read
    max_zip_entries: int = 10_000
    max_depth: int = 3  # attached messages inside attached messages


DEFAULT_LIMITS = ExtractLimits()


@dataclass(frozen=True)
class Extraction:
    text: str = ""
    kind: str = "unsupported"  # text, html, pdf, docx, xlsx, pptx, message, unsupported
    truncated: bool = False
    error: str | None = None  # why (some of) the text is missing; the text read before is kept


# ---------------------------------------------------------------------------------------------
# Type detection: magic bytes first (mislabelled application/octet-stream is common), then the
# declared content type, then the filename extension.

_TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/csv",
        "application/x-csv",
        "application/javascript",
        "application/x-sh",
        "message/delivery-status",
        "message/disposition-notification",
    }
)
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
_PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
_OOXML_TYPES = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
}
_EXTENSIONS = {
    "txt": "text",
    "text": "text",
    "csv": "text",
    "tsv": "text",
    "log": "text",
    "md": "text",
    "json": "text",
    "xml": "text",
    "ics": "text",
    "vcf": "text",
    "htm": "html",
    "html": "html",
    "xhtml": "html",
    "pdf": "pdf",
    "eml": "message",
    "docx": "docx",
    "docm": "docx",
    "xlsx": "xlsx",
    "xlsm": "xlsx",
    "pptx": "pptx",
    "pptm": "pptx",
}
_OOXML_MAIN_PARTS = {
    "word/document.xml": "docx",
    "xl/workbook.xml": "xlsx",
    "ppt/presentation.xml": "pptx",
}
_HTML_START = re.compile(rb"^\s*(?:<!doctype\s+html|<html[\s>])", re.IGNORECASE)
_HEADER_START = re.compile(
    rb"^(?:Return-Path|Received|From|Message-ID|MIME-Version|Date|Subject|Delivered-To):[ \t]",
    re.IGNORECASE,
)


def _extension(filename: str) -> str:
    stem, dot, ext = filename.strip().rpartition(".")
    return ext.lower() if dot and stem else ""


def _zip_kind(data: bytes) -> str | None:
    """docx/xlsx/pptx by the parts inside; None for any other zip (or an unreadable one)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except Exception:
        return None
    return next((kind for part, kind in _OOXML_MAIN_PARTS.items() if part in names), None)


def detect_kind(data: bytes, content_type: str, filename: str) -> str:
    ctype = content_type.split(";", 1)[0].strip().lower()
    declared = _declared_kind(ctype, _extension(filename))
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        # A zip that is no Office document is not ours to read; one that claims to be but does
        # not open is, so that the failure is recorded.
        found = _zip_kind(data)
        return found or (declared if declared in ("docx", "xlsx", "pptx") else "unsupported")
    if declared is not None:
        return declared
    if ctype in ("", "application/octet-stream", "application/unknown"):
        head = data[:2048]
        if _HTML_START.match(head):
            return "html"
        if _HEADER_START.match(head):
            return "message"
    return "unsupported"


def _declared_kind(ctype: str, ext: str) -> str | None:
    if ctype in _MESSAGE_TYPES:
        return "message"
    if ctype in _HTML_TYPES:
        return "html"
    if ctype in _PDF_TYPES:
        return "pdf"
    if ctype in _OOXML_TYPES:
        return _OOXML_TYPES[ctype]
    if ctype.startswith("text/") or ctype in _TEXT_TYPES:
        return "html" if ext in ("htm", "html", "xhtml") else "text"
    return _EXTENSIONS.get(ext)


# ---------------------------------------------------------------------------------------------
# Deadline and output bound


class _Stop(BaseException):
    """Ends an extraction early. A BaseException so that a library's `except Exception` (pypdf
    has many) cannot swallow it when the alarm fires inside the library."""


class _Timeout(_Stop):
    pass


class _Full(_Stop):
    pass


_alarm_armed = False  # only ever touched in the main thread


def _on_alarm(signum: int, frame: Any) -> None:
    if _alarm_armed:
        raise _Timeout


def _alarm_usable() -> bool:
    return (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and not _alarm_armed
        and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # nobody else's timer running
    )


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Raise _Timeout in the main thread after seconds (a no-op elsewhere, or when an outer
    extraction already armed one: a nested message counts against its attachment's time)."""
    global _alarm_armed
    if not _alarm_usable():
        yield
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    _alarm_armed = True
    # Repeats every 0.1 s until disarmed, in case the first signal lands where Python ignores
    # exceptions (a __del__, a weakref callback).
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001), 0.1)
    try:
        yield
    finally:
        while True:  # an alarm arriving before the flag is cleared interrupts the disarming
            try:
                _alarm_armed = False
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                break
            except _Timeout:
                continue


@dataclass
class _Sink:
    """Collects text pieces up to max_chars and enforces the deadline at every piece."""

    max_chars: int
    deadline: float
    parts: list[str] = field(default_factory=list)
    size: int = 0
    ticks: int = 0

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise _Timeout

    def tick(self) -> None:
        """Called per XML element: checks the clock every few thousand."""
        self.ticks += 1
        if self.ticks % 4096 == 0:
            self.check()

    def add(self, text: str) -> None:
        self.check()
        if not text:
            return
        room = self.max_chars - self.size
        if len(text) >= room:
            self.parts.append(text[: max(room, 0)])
            self.size = self.max_chars
            raise _Full
        self.parts.append(text)
        self.size += len(text) + 1  # the newline joining it to the next piece

    def text(self) -> str:
        return "\n".join(self.parts)

    @property
    def room(self) -> int:
        return max(self.max_chars - self.size, 0)


# Reads an attached message (raw, max_body_chars, limits for its own attachments or None, depth).
# Passed in by the parser, which itself uses this module: so neither imports the other's caller.
NestedParser = Callable[[bytes, int, ExtractLimits | None, int], ParsedMessage]


@dataclass(frozen=True)
class _Context:
    limits: ExtractLimits
    depth: int
    charset: str | None
    parse_nested: NestedParser | None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+")


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


# ---------------------------------------------------------------------------------------------
# Entry point


def extract_text(
    data: bytes,
    content_type: str,
    filename: str,
    *,
    max_chars: int,
    timeout_s: float,
    depth: int = 0,
    charset: str | None = None,
    limits: ExtractLimits = DEFAULT_LIMITS,
    parse_nested: NestedParser | None = None,
) -> Extraction:
    """The text of one attachment, at most max_chars characters. Never raises. An attached
    message is read with parse_nested; without one it is left unread, as unsupported."""
    try:
        kind = detect_kind(data, content_type, filename)
    except Exception as exc:  # pragma: no cover - detection only slices and opens a zip
        return Extraction(error=_error_text(exc))
    if kind == "unsupported" or (kind == "message" and parse_nested is None):
        return Extraction()
    if len(data) > limits.max_bytes:
        return Extraction(
            kind=kind, error=f"skipped: {len(data)} bytes, over the {limits.max_bytes}-byte limit"
        )
    sink = _Sink(max(int(max_chars), 0), time.monotonic() + timeout_s)
    context = _Context(limits, depth, charset, parse_nested)
    truncated = False
    error: str | None = None
    try:
        with _alarm(timeout_s):
            truncated = _EXTRACTORS[kind](data, sink, context) == "truncated"
    except _Full:
        truncated = True
    except _Timeout:
        error = f"timeout: gave up after {timeout_s:g} s"
    except RecursionError:
        error = "RecursionError: structure nested too deeply"
    except Exception as exc:  # hostile input: whatever a parser raises is recorded, not raised
        error = _error_text(exc)
    text = _CONTROL.sub("", sink.text().replace("\r\n", "\n").replace("\r", "\n")).strip()
    return Extraction(text=text, kind=kind, truncated=truncated, error=error)


# ---------------------------------------------------------------------------------------------
# Extractors: each writes into the sink and returns "truncated" when it stopped at a limit of its
# own (PDF pages, text cut before decoding), else None.

Extractor = Callable[[bytes, _Sink, _Context], "str | None"]


def _head(data: bytes, max_chars: int) -> bytes:
    """The first bytes of a text that can hold max_chars characters (4 bytes each at most in
    UTF-8 and GB18030), cut after a newline, which is never part of a multibyte character in
    those or Big5: decoding and charset detection then see whole characters only."""
    limit = 4 * max_chars + 4
    if len(data) <= limit:
        return data
    newline = data.rfind(b"\n", max(limit - 4096, 0), limit)
    return data[: newline + 1] if newline > 0 else data[:limit]


def _text(data: bytes, sink: _Sink, context: _Context) -> str | None:
    head = _head(data, sink.room)
    text, _, _ = decode_bytes(head, context.charset)
    sink.add(text)
    return "truncated" if len(head) < len(data) else None


def _html(data: bytes, sink: _Sink, context: _Context) -> str | None:
    text, _, _ = decode_bytes(data, context.charset)
    sink.add(html_to_text(text, max_chars=sink.room + 1))
    return None


def _pdf(data: bytes, sink: _Sink, context: _Context) -> str | None:
    from pypdf import PasswordType, PdfReader  # imported when needed: it takes 0.2 s

    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise ValueError("encrypted PDF: a password is needed to read it")
    pages = reader.pages
    limit = context.limits.max_pdf_pages
    for number, page in enumerate(pages):
        if number >= limit:
            return "truncated"
        sink.add((page.extract_text() or "").strip())
    return None


def _message(data: bytes, sink: _Sink, context: _Context) -> str | None:
    assert context.parse_nested is not None  # extract_text checked
    depth = context.depth + 1
    inner: ExtractLimits | None = None
    if depth < context.limits.max_depth:
        left = max(sink.deadline - time.monotonic(), 0.0)
        inner = replace(
            context.limits,
            max_chars=sink.room,
            timeout_s=min(context.limits.timeout_s, left),
            budget_s=left,
        )
    parsed = context.parse_nested(data, sink.room, inner, depth)
    for text in (parsed.subject, parsed.body_text, parsed.attachment_text):
        sink.add(text)
    problems = [e for e in [parsed.parse_error, *parsed.extract_errors] if e]
    if problems:
        raise ValueError("attached message: " + "; ".join(problems)[:400])
    return None


# -- OOXML


def _local(tag: str) -> str:
    """The local name of a tag: Transitional and Strict OOXML use different namespaces."""
    return tag.rpartition("}")[2]


def _open_package(data: bytes, limits: ExtractLimits) -> zipfile.ZipFile:
    archive = zipfile.ZipFile(io.BytesIO(data))
    if len(archive.infolist()) > limits.max_zip_entries:
        raise ValueError(f"more than {limits.max_zip_entries} parts in the package")
    return archive


def _check_unpacked(archive: zipfile.ZipFile, names: list[str], limits: ExtractLimits) -> None:
    """Zip-bomb guard: the declared sizes of the parts about to be read (zipfile stops at the
    declared size and fails on a CRC mismatch, so a lying directory cannot get past this)."""
    total = sum(archive.getinfo(name).file_size for name in names)
    if total > limits.max_unpacked_bytes:
        raise ValueError(
            f"parts unpack to {total} bytes, over the {limits.max_unpacked_bytes}-byte limit"
        )


def _numbered(names: list[str], pattern: str) -> list[str]:
    """Names matching pattern (one group of digits), in numeric order: slide2 before slide10."""
    regex = re.compile(pattern)
    found = [(int(m.group(1)), n) for n in names if (m := regex.fullmatch(n))]
    return [n for _, n in sorted(found)]


def _paragraphs(stream: IO[bytes], sink: _Sink, *, text: set[str], breaks: set[str]) -> None:
    """Text of a WordprocessingML/DrawingML part, one sink piece per paragraph."""
    pieces: list[str] = []
    for _, element in ET.iterparse(stream, events=("end",)):
        sink.tick()
        name = _local(element.tag)
        if name in text:
            pieces.append(element.text or "")
        elif name == "tab":
            pieces.append("\t")
        elif name in breaks:
            pieces.append("\n")
        elif name == "p":
            sink.add("".join(pieces))
            pieces.clear()
            element.clear()
    sink.add("".join(pieces))


_DOCX_EXTRA = re.compile(r"word/(?:footnotes|endnotes|comments|header\d*|footer\d*)\.xml")


def _docx(data: bytes, sink: _Sink, context: _Context) -> str | None:
    with _open_package(data, context.limits) as archive:
        names = archive.namelist()
        # the body first; tracked deletions (delText) and comments are kept: they are evidence
        parts = ["word/document.xml", *sorted(n for n in names if _DOCX_EXTRA.fullmatch(n))]
        _check_unpacked(archive, parts, context.limits)
        for part in parts:
            with archive.open(part) as stream:
                _paragraphs(stream, sink, text={"t", "delText"}, breaks={"br", "cr"})
    return None


def _pptx(data: bytes, sink: _Sink, context: _Context) -> str | None:
    with _open_package(data, context.limits) as archive:
        names = archive.namelist()
        slides = _numbered(names, r"ppt/slides/slide(\d+)\.xml")
        notes = _numbered(names, r"ppt/notesSlides/notesSlide(\d+)\.xml")
        _check_unpacked(archive, slides + notes, context.limits)
        for part in slides + notes:
            with archive.open(part) as stream:
                _paragraphs(stream, sink, text={"t"}, breaks={"br"})
    return None


_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"


def _sheet_parts(archive: zipfile.ZipFile, names: list[str]) -> list[tuple[str, str]]:
    """(sheet name, part) in workbook order; the numbered parts when the workbook is unreadable."""
    try:
        rels = ET.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
        targets = {r.get("Id"): r.get("Target", "") for r in rels.iter(_RELS)}
        sheets: list[tuple[str, str]] = []
        for element in ET.fromstring(archive.read("xl/workbook.xml")).iter():
            if _local(element.tag) != "sheet":
                continue
            rid = next((v for k, v in element.attrib.items() if _local(k) == "id"), None)
            target = targets.get(rid, "")
            part = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            part = posixpath.normpath(part)
            if part in names:
                sheets.append((element.get("name", ""), part))
        if sheets:
            return sheets
    except (KeyError, ET.ParseError):
        pass
    return [("", n) for n in _numbered(names, r"xl/worksheets/sheet(\d+)\.xml")]


def _shared_strings(stream: IO[bytes], sink: _Sink) -> list[str]:
    strings: list[str] = []
    for _, element in ET.iterparse(stream, events=("end",)):
        sink.tick()
        if _local(element.tag) != "si":
            continue
        pieces: list[str] = []
        for child in element:  # <t>, or rich-text runs <r><t>; phonetic guides <rPh> skipped
            name = _local(child.tag)
            if name == "t":
                pieces.append(child.text or "")
            elif name == "r":
                pieces.extend(t.text or "" for t in child if _local(t.tag) == "t")
        strings.append("".join(pieces))
        element.clear()
    return strings


def _cell_value(cell: ET.Element, shared: list[str]) -> str:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        return "".join(t.text or "" for t in cell.iter() if _local(t.tag) == "t")
    value = next((c.text or "" for c in cell if _local(c.tag) == "v"), "")
    if kind == "s":
        index = int(value) if value.isdigit() else -1
        return shared[index] if 0 <= index < len(shared) else ""
    return value if kind in ("n", "str") else ""  # booleans and error codes say nothing


def _rows(stream: IO[bytes], sink: _Sink, shared: list[str]) -> None:
    cells: list[str] = []
    for _, element in ET.iterparse(stream, events=("end",)):
        sink.tick()
        name = _local(element.tag)
        if name == "c":
            value = _cell_value(element, shared)
            if value:
                cells.append(value)
            element.clear()
        elif name == "row":
            sink.add("\t".join(cells))
            cells.clear()
            element.clear()


def _xlsx(data: bytes, sink: _Sink, context: _Context) -> str | None:
    with _open_package(data, context.limits) as archive:
        names = archive.namelist()
        sheets = _sheet_parts(archive, names)
        strings = ["xl/sharedStrings.xml"] if "xl/sharedStrings.xml" in names else []
        _check_unpacked(archive, strings + [part for _, part in sheets], context.limits)
        shared: list[str] = []
        if strings:
            with archive.open(strings[0]) as stream:
                shared = _shared_strings(stream, sink)
        for title, part in sheets:
            sink.add(title)
            with archive.open(part) as stream:
                _rows(stream, sink, shared)
    return None


_EXTRACTORS: dict[str, Extractor] = {
    "text": _text,
    "html": _html,
    "pdf": _pdf,
    "docx": _docx,
    "xlsx": _xlsx,
    "pptx": _pptx,
    "message": _message,
}


# ---------------------------------------------------------------------------------------------
# One message's attachments


@dataclass
class AttachmentTexts:
    """Extracts a message's attachments one after another within the message's limits: the
    characters left, the time budget left. The parser holds one per message."""

    limits: ExtractLimits
    depth: int = 0
    parse_nested: NestedParser | None = None
    parts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    size: int = 0
    spent: float = 0.0

    def add(
        self, data: bytes, content_type: str, filename: str, charset: str | None = None
    ) -> tuple[int, str | None]:
        """Extract one attachment: (characters of text kept, error or None). Never raises."""
        label = filename or content_type
        header = f"{label}\n"
        room = self.limits.max_chars - self.size - len(header) - 2
        left = self.limits.budget_s - self.spent
        if room <= 0 or left <= 0:
            if detect_kind(data, content_type, filename) == "unsupported":
                return 0, None
            limit = "text" if room <= 0 else "time"
            return 0, self._error(
                label, f"skipped: the message's attachment {limit} limit is used up"
            )
        started = time.monotonic()
        result = extract_text(
            data,
            content_type,
            filename,
            max_chars=room,
            timeout_s=min(self.limits.timeout_s, left),
            depth=self.depth,
            charset=charset,
            limits=self.limits,
            parse_nested=self.parse_nested,
        )
        self.spent += time.monotonic() - started
        if result.text:
            self.parts.append(header + result.text)
            self.size += len(header) + len(result.text) + 2
        if result.truncated:
            self.notes.append(f"attachment {label}: text truncated")
        if result.error:
            self._error(label, result.error, result.kind)
        return len(result.text), result.error

    def _error(self, label: str, error: str, kind: str = "") -> str:
        self.errors.append(f"{label}: {error}")
        log.info(
            "attachment text not extracted",
            extra={"attachment": label, "kind": kind, "error": error, "depth": self.depth},
        )
        return error

    @property
    def text(self) -> str:
        return "\n\n".join(self.parts)
