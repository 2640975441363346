"""Exchange / Microsoft 365 journal reports: find the journaled message and its real envelope.

A journal report is a message from the journaling server with two parts: a text part listing
the envelope (``Sender:``, ``Subject:``, ``Message-Id:``, then one ``To:``/``Cc:``/``Bcc:``/
``Recipient:`` line per recipient, optionally followed by ``, Expanded: <group>`` or
``, Forwarded: <address>``) and the original message attached as ``message/rfc822``.
Exchange marks it with an ``X-MS-Journal-Report`` header. The attached message is cut out of
the raw bytes, never re-serialized, so it is byte-exact as the journaling server attached it.
"""

from __future__ import annotations

import binascii
import quopri
import re
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import parseaddr

_RECIPIENT_FIELDS = {"to": "to", "cc": "cc", "bcc": "bcc", "recipient": "recipient"}
_LINE = re.compile(r"^(?P<name>[A-Za-z-]+):[ \t]*(?P<value>.*?)\s*$")
_SUFFIX = re.compile(r",\s*(?P<kind>Expanded|Forwarded):\s*", re.IGNORECASE)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_ATTACHED_MESSAGE = re.compile(rb"message/rfc822", re.IGNORECASE)


@dataclass(frozen=True)
class JournalRecipient:
    address: str
    kind: str  # to / cc / bcc / recipient (type not disclosed)
    expanded: str = ""  # the distribution list it was expanded from
    forwarded: str = ""  # the address that forwarded to it


@dataclass(frozen=True)
class JournalReport:
    inner: bytes  # the journaled message, byte-exact as attached
    sender: str
    recipients: list[JournalRecipient] = field(default_factory=list)
    subject: str = ""
    message_id: str = ""
    on_behalf_of: str = ""

    @property
    def rcpt_to(self) -> list[str]:
        """Every reported recipient once, in report order (BCC ones included)."""
        return list(dict.fromkeys(r.address for r in self.recipients))

    def attributes(self) -> dict[str, str]:
        """What the report says beyond the envelope, kept with the inner message's source."""
        found = {
            "journal_bcc": ",".join(r.address for r in self.recipients if r.kind == "bcc"),
            "journal_expanded": ",".join(
                f"{r.address}<{r.expanded}" for r in self.recipients if r.expanded
            ),
            "journal_forwarded": ",".join(
                f"{r.address}<{r.forwarded}" for r in self.recipients if r.forwarded
            ),
            "journal_on_behalf_of": self.on_behalf_of,
        }
        return {k: v for k, v in found.items() if v}


def unwrap(raw: bytes) -> JournalReport | None:
    """The journal report in raw, or None when raw is not one (an ordinary message)."""
    head, body = _split(raw)
    # The sink asks this of every message: most are answered from the header block alone.
    if b"multipart" not in head.lower() or not _ATTACHED_MESSAGE.search(body):
        return None
    headers = BytesHeaderParser().parsebytes(head + b"\r\n")
    boundary = headers.get_param("boundary")
    if headers.get_content_maintype() != "multipart" or not isinstance(boundary, str):
        return None
    parts = _parts(body, boundary.encode("ascii", "replace"))
    inner = next((p for p in parts if _content_type(p) == "message/rfc822"), None)
    texts = [p for p in parts if _content_type(p) == "text/plain"]
    if inner is None or not texts:
        return None
    report = _report_fields(_text(texts[0]))
    is_marked = "x-ms-journal-report" in {k.lower() for k in headers}
    if not report.sender or not report.recipients:
        return None
    if not is_marked and not report.message_id:
        return None  # a forwarded attachment with a "Sender:" line is not a report
    return replace(report, inner=_part_body(inner))


def _split(data: bytes) -> tuple[bytes, bytes]:
    """Header block and body of a message or MIME part (at the first empty line)."""
    if data.startswith((b"\r\n", b"\n")):
        return b"", data[data.index(b"\n") + 1 :]
    match = _BLANK_LINE.search(data)
    if match is None:
        return data, b""
    return data[: match.start()], data[match.end() :]


def _parts(body: bytes, boundary: bytes) -> list[bytes]:
    """The body parts between the delimiter lines; the line break before a delimiter belongs
    to the delimiter (RFC 2046 5.1.1), so each part is exactly as sent."""
    delimiter = re.compile(
        rb"(?:^|\r?\n)--" + re.escape(boundary) + rb"(?P<close>--)?[ \t]*(?:\r?\n|$)"
    )
    parts: list[bytes] = []
    start: int | None = None
    for match in delimiter.finditer(body):
        if start is not None:
            parts.append(body[start : match.start()])
        if match.group("close"):
            break
        start = match.end()
    return parts


def _part_headers(part: bytes) -> Message:
    return BytesHeaderParser().parsebytes(_split(part)[0] + b"\r\n")


def _content_type(part: bytes) -> str:
    return _part_headers(part).get_content_type()


def _part_body(part: bytes) -> bytes:
    """The attached message's bytes. message/rfc822 must be 7bit/8bit/binary; a (non-conforming)
    transfer encoding is undone so the original bytes come back."""
    body = _split(part)[1]
    encoding = str(_part_headers(part).get("content-transfer-encoding", "")).strip().lower()
    try:
        if encoding == "base64":
            return binascii.a2b_base64(body)
        if encoding == "quoted-printable":
            return quopri.decodestring(body)
    except (binascii.Error, ValueError):
        return body
    return body


def _text(part: bytes) -> str:
    message = message_from_bytes(part)
    payload = message.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = message.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def _address(value: str) -> str:
    return parseaddr(value)[1].strip().lower() or value.strip().strip("<>").lower()


def _recipient(kind: str, value: str) -> JournalRecipient:
    pieces = _SUFFIX.split(value)
    extra = dict(zip(pieces[1::2], pieces[2::2], strict=False))
    extra = {k.lower(): _address(v) for k, v in extra.items()}
    return JournalRecipient(
        address=_address(pieces[0]),
        kind=kind,
        expanded=extra.get("expanded", ""),
        forwarded=extra.get("forwarded", ""),
    )


def _report_fields(text: str) -> JournalReport:
    """The envelope lines of the report text (inner bytes left empty)."""
    recipients: list[JournalRecipient] = []
    single: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        name, value = match.group("name").lower(), match.group("value")
        if name in _RECIPIENT_FIELDS and value:
            recipients.append(_recipient(_RECIPIENT_FIELDS[name], value))
        elif name in {"sender", "subject", "message-id", "on-behalf-of"}:
            single.setdefault(name, value)
    return JournalReport(
        inner=b"",
        sender=_address(single.get("sender", "")) if single.get("sender") else "",
        recipients=recipients,
        subject=single.get("subject", ""),
        message_id=single.get("message-id", ""),
        on_behalf_of=_address(single["on-behalf-of"]) if single.get("on-behalf-of") else "",
    )
