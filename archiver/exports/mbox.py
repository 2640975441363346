"""Messages into an mbox file, mboxrd style, so that they split back byte-identical.

Each message is a From_ line, its bytes with every line matching ``>*From `` given one more ``>``
(so no line of a message can be taken for a From_ line, and the reader knows which ``>`` to take
off), and exactly one newline. The reader is the verifier's ``split_mboxrd``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Protocol

_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)  # ^: at the start, or after b"\n"
_UNSAFE_SENDER = re.compile(r"[\s\x00-\x1f\x7f]")
# No date: the epoch, not "now", so the same messages always give the same bytes (a resumed
# build and an uninterrupted one must produce identical packages).
_NO_DATE = datetime(1970, 1, 1, tzinfo=UTC)


class _Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


def mbox_from_line(sender: str, date: datetime | None) -> bytes:
    """``From <sender> <asctime of the UTC date>\\n``; MAILER-DAEMON when there is no sender,
    or one that would break the line (spaces, control characters)."""
    address = sender.strip()
    if not address or _UNSAFE_SENDER.search(address):
        address = "MAILER-DAEMON"
    when = _NO_DATE if date is None else date
    # a naive date is taken as UTC (astimezone would take it as the machine's local time)
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return b"From " + address.encode("utf-8") + b" " + when.ctime().encode("ascii") + b"\n"


def write_mboxrd(out: _Writable, raw: bytes, sender: str, date: datetime | None) -> int:
    """Append one message to an mbox being written; the number of bytes written."""
    chunks = (mbox_from_line(sender, date), _FROM_LINE.sub(rb">\1", raw), b"\n")
    for chunk in chunks:
        out.write(chunk)
    return sum(len(chunk) for chunk in chunks)
