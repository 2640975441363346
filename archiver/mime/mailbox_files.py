"""Mail files as bytes: whether a file holds mail, and where an mbox splits into messages.

Pure functions over byte lines, so they stream (memory depends on the largest message, not on the
file) and can be tested without a file system.

An mbox separator is a ``From `` line at the start of the file, or after a blank line and before a
header block, whatever its date looks like (asctime, Gmail's ``+0000 2024``, Thunderbird's
``From - ...``, RFC 2822, or none). Lines that look like separators but break one of those rules
are kept inside the message and reported as notes, so a doubtful split is never silent.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_tz
from itertools import islice

SNIFF_BYTES = 64 * 1024
# How far past a "From " line to look for the header block that makes it a separator.
HEADER_LOOKAHEAD = 64
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an Outlook .msg: mail, though not RFC 5322

# A field name: RFC 5322 allows any printable ASCII but the colon; a name starting with a letter
# or digit and without quotes or braces keeps JSON ({"id": 1}) and code from passing for headers.
_FIELD = re.compile(rb'^(?P<name>[A-Za-z0-9][^\x00-\x20:\x7f-\xff"{}]*)[ \t]*:')
_BLANK = (b"\n", b"\r\n")
_MBOXRD_QUOTED = re.compile(rb"^>(>*From )")
_WEEKDAY = re.compile(rb"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b")
# At least one of these, as notmuch asks for From/To/Subject, before a file counts as mail.
_MAIL_FIELDS = frozenset(
    {
        b"from",
        b"to",
        b"cc",
        b"subject",
        b"date",
        b"message-id",
        b"received",
        b"return-path",
        b"delivered-to",
        b"sender",
        b"reply-to",
        b"mime-version",
    }
)


def header_fields(lines: Iterable[bytes]) -> list[bytes] | None:
    """Lower-cased field names of the header block the lines start with; None if they do not
    start with one. The block ends at a blank line or where the lines end; real mail has damaged
    lines in its header (">Received: ..."), so one after two fields or more ends it too."""
    names: list[bytes] = []
    for line in lines:
        if line in _BLANK:
            break
        match = _FIELD.match(line)
        if match:
            names.append(match.group("name").lower())
        elif not (names and line[:1] in (b" ", b"\t")):  # not a folded continuation line
            return names if len(names) >= 2 else None
    return names or None


def _head_lines(head: bytes) -> list[bytes]:
    lines = head.splitlines(keepends=True)
    if len(head) >= SNIFF_BYTES and lines:
        lines.pop()  # cut off mid-line
    return lines


def starts_mbox(head: bytes) -> bool:
    """Whether a file that begins with head is an mbox: a "From " line, then a header block."""
    lines = _head_lines(head)
    return bool(lines) and lines[0].startswith(b"From ") and header_fields(lines[1:]) is not None


def looks_like_mail(head: bytes) -> bool:
    """Whether a file that begins with head holds mail: a header block with a mail field,
    optionally after an mbox "From " line, or an Outlook .msg."""
    if head.startswith(OLE_MAGIC):
        return True
    lines = _head_lines(head)
    if lines and lines[0].startswith(b"From "):
        lines = lines[1:]
    names = header_fields(lines[:HEADER_LOOKAHEAD])
    return names is not None and not _MAIL_FIELDS.isdisjoint(names)


def mbox_date(from_line: bytes) -> datetime | None:
    """The date of a separator line, in whichever style the writer used; None if there is none.
    The address may hold spaces (``From x@[10.0.0.1] [ufa]  Sun Aug  5 ...``), so the date is
    sought from each weekday on."""
    for match in _WEEKDAY.finditer(from_line):
        text = from_line[match.start() :].decode("ascii", "replace").strip()
        parsed = parsedate_tz(text)
        if parsed is None or not 1900 < parsed[0] < 10_000:
            continue
        try:
            moment = datetime(*parsed[:6], tzinfo=timezone(timedelta(seconds=parsed[9] or 0)))
        except ValueError:
            continue
        return moment.astimezone(UTC)
    return None


@dataclass(frozen=True)
class MboxEntry:
    """One message of an mbox: its bytes (None when over the size limit), unquoted (mboxrd)."""

    number: int  # 1-based
    raw: bytes | None
    size: int  # bytes read, also when raw is None
    received: datetime | None  # from the separator line
    notes: tuple[str, ...] = ()  # doubtful separators kept inside this message


class _Lookahead:
    """An iterator of lines that can peek ahead a few lines without consuming them."""

    def __init__(self, lines: Iterable[bytes]) -> None:
        self._lines = iter(lines)
        self._ahead: deque[bytes] = deque()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return self._ahead.popleft() if self._ahead else next(self._lines)

    def peek(self, count: int) -> list[bytes]:
        self._ahead.extend(islice(self._lines, max(0, count - len(self._ahead))))
        return list(islice(self._ahead, count))


@dataclass
class _Message:
    number: int
    received: datetime | None
    max_bytes: int
    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    oversize: bool = False
    notes: list[str] = field(default_factory=list)

    def add(self, line: bytes) -> None:
        self.size += len(line)
        if self.size > self.max_bytes:
            self.oversize, self.lines = True, []
        elif not self.oversize:
            self.lines.append(line)

    def entry(self) -> MboxEntry:
        if self.lines and self.lines[-1] in _BLANK:
            self.lines.pop()  # the blank line before the next separator belongs to the mbox
        raw = None if self.oversize else b"".join(self.lines)
        return MboxEntry(self.number, raw, self.size, self.received, tuple(self.notes))


def split_mbox(lines: Iterable[bytes], *, max_bytes: int) -> Iterator[MboxEntry]:
    """Split mboxrd lines into messages, stripping one '>' from quoted ">From " lines (which
    also reads mboxo). The first line starts the first message, separator or not."""
    source = _Lookahead(lines)
    current: _Message | None = None
    previous_blank = True
    for number, line in enumerate(source, 1):
        if line.startswith(b"From "):
            if current is None:
                current = _Message(1, mbox_date(line), max_bytes)
                continue
            followed = header_fields(source.peek(HEADER_LOOKAHEAD)) is not None
            if previous_blank and followed:
                yield current.entry()
                current = _Message(current.number + 1, mbox_date(line), max_bytes)
                if current.received is None:
                    current.notes.append(
                        f"split at line {number}, whose 'From ' line has no date: check that "
                        "it is not a body line of the message before"
                    )
                previous_blank = False
                continue
            if mbox_date(line) is not None:
                reason = "no blank line before it" if followed else "no header block after it"
                current.notes.append(
                    f"line {number} looks like an mbox separator but has {reason}: "
                    "kept inside this message"
                )
        elif current is None:
            current = _Message(1, None, max_bytes)
            current.notes.append("the mbox does not start with a 'From ' line")
        previous_blank = line in _BLANK
        current.add(_MBOXRD_QUOTED.sub(rb"\1", line))
    if current is not None:
        yield current.entry()
