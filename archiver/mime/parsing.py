"""The parser stage: raw RFC 5322 bytes -> ParsedMessage, never raising.

The stdlib email package (compat32 policy, bytes parser) splits the MIME tree and undoes transfer
encodings; every charset decision (bodies, RFC 2047 words, RFC 2231 parameters, raw 8-bit headers)
goes through archiver.mime.charsets, because the email package's own decoding (and mail-parser's,
which sits on it) turns mislabelled GB2312/Big5 into mojibake.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.utils
import hashlib
import io
import quopri
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from archiver.mime.attachments import DEFAULT_LIMITS, AttachmentTexts, ExtractLimits
from archiver.mime.charsets import decode_bytes, decode_header_value_with_warnings
from archiver.mime.htmltext import html_to_text
from archiver.mime.mailbox_files import OLE_MAGIC
from archiver.models import Address, AttachmentInfo, ParsedMessage

__all__ = ["parse_message"]

HEADER_VALUE_CAP = 2_000
HEADERS_TOTAL_CAP = 64 * 1024
_HEADER_DECODE_CAP = 100_000  # raw characters of one header value looked at
_MAX_DEPTH = 64
_MAX_PARTS = 10_000
_MAX_ADDRESSES = 1_000
_MAX_REFERENCES = 500
_MAX_WARNINGS = 100
_MIN_YEAR = 1980
_FUTURE_SLACK = timedelta(days=2)

_ADDRESS_HEADERS = {
    "from": "from_",
    "to": "to",
    "cc": "cc",
    "bcc": "bcc",
    "reply-to": "reply_to",
}
_MSG_ID = re.compile(r"<([^<>\s]{1,998})>")
_LOOSE_ADDR = re.compile(r"[^\s<>(),;:\"'\[\]]{1,200}@[^\s<>(),;:\"'\[\]]{1,255}")
_ZONE = re.compile(r"(?:[+-]\d{4}\b|\b(?:UT|UTC|GMT|Z|[ECMP][SD]T)\b)", re.IGNORECASE)
_COMMENT = re.compile(r"\([^()]*\)")
_BAD_FILENAME_CHARS = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2_000]


@dataclass
class _State:
    """What has been read so far: returned as is when a later step fails."""

    raw: bytes
    arrival: datetime
    max_body_chars: int
    fields: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    text_size: int = 0
    truncated: bool = False
    has_html: bool = False
    attachments: list[AttachmentInfo] = field(default_factory=list)
    recorded: set[int] = field(default_factory=set)  # id() of parts already listed
    parts_seen: int = 0
    cursor: int = 0  # where to search raw for the next nested message
    extracted: AttachmentTexts | None = None  # attachment text, when extraction is on

    def warn(self, text: str) -> None:
        if text not in self.warnings and len(self.warnings) < _MAX_WARNINGS:
            self.warnings.append(text)

    def fail(self, where: str, exc: BaseException) -> None:
        self.errors.append(_error_text(exc))
        self.warn(f"{where} failed: {_error_text(exc)}")

    def build(self) -> ParsedMessage:
        data = dict(self.fields)
        data.setdefault("date", self.arrival)
        if "date_source" not in data:
            data["date_source"] = "arrival"
        data["body_text"] = "\n\n".join(self.texts)
        data["has_html"] = self.has_html
        data["attachments"] = self.attachments
        if self.extracted is not None:
            data["attachment_text"] = self.extracted.text
            data["extract_errors"] = self.extracted.errors
            for note in self.extracted.notes:
                self.warn(note)
        data["size"] = len(self.raw)
        data["warnings"] = self.warnings
        data["parse_error"] = self.errors[0] if self.errors else None
        try:
            return ParsedMessage(**data)
        except Exception as exc:  # a field we produced did not validate: keep the message anyway
            return ParsedMessage(
                date=self.arrival,
                date_source="arrival",
                size=len(self.raw),
                subject=str(data.get("subject", ""))[:10_000],
                warnings=self.warnings,
                parse_error=self.errors[0] if self.errors else _error_text(exc),
            )


def _utc_arrival(arrival: Any) -> datetime:
    if not isinstance(arrival, datetime):
        return datetime.now(UTC)
    if arrival.tzinfo is None:
        return arrival.replace(tzinfo=UTC)
    return arrival.astimezone(UTC)


def parse_message(
    raw: bytes,
    arrival: datetime,
    *,
    max_body_chars: int = 2_000_000,
    extract: ExtractLimits | None = DEFAULT_LIMITS,
    extract_depth: int = 0,
) -> ParsedMessage:
    """Parse one raw message. Never raises: whatever fails is noted in parse_error and warnings,
    and everything read before it is kept. Attachments' text is extracted within the limits of
    extract (None: not at all); extract_depth is how deep this message is nested in another."""
    try:
        state = _State(bytes(raw), _utc_arrival(arrival), max(0, int(max_body_chars)))
        if extract is not None:
            state.extracted = AttachmentTexts(extract, extract_depth, parse_nested)
    except Exception as exc:
        return ParsedMessage(
            date=_utc_arrival(arrival), date_source="arrival", parse_error=_error_text(exc)
        )
    try:
        _parse_into(state)
    except Exception as exc:
        state.fail("parsing", exc)
    return state.build()


def parse_nested(
    raw: bytes, max_body_chars: int, extract: ExtractLimits | None, depth: int
) -> ParsedMessage:
    """An attached message, read like any other (attachments.NestedParser)."""
    return parse_message(
        raw, datetime.now(UTC), max_body_chars=max_body_chars, extract=extract, extract_depth=depth
    )


def _parse_into(state: _State) -> None:
    raw = state.raw
    if raw.startswith(OLE_MAGIC):
        state.errors.append(
            "UnsupportedFormat: an Outlook .msg (OLE compound file), not an RFC 5322 message"
        )
        return
    try:
        msg = email.message_from_bytes(raw, policy=compat32)
    except Exception as exc:  # e.g. RecursionError on absurd nesting: keep the headers at least
        state.fail("MIME parsing", exc)
        msg = BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)
        _read_headers(state, msg)
        return
    if not msg.keys() and b"\n" in raw[:2000]:
        # A damaged first line hides every header behind it: retry without it.
        retry = email.message_from_bytes(raw[raw.index(b"\n") + 1 :], policy=compat32)
        if len(retry.keys()) >= 2:
            state.warn("first line is not a header field: parsed from the second line")
            msg = retry
    _read_headers(state, msg)
    for defect in msg.defects:
        state.warn(f"MIME defect: {type(defect).__name__}")
    try:
        _walk(state, msg, 0, True, None)
    except Exception as exc:
        state.fail("body extraction", exc)
    _finish_body(state)


# ---------------------------------------------------------------------------------------------
# Headers


def _raw_value(part: Message, name: str) -> str | None:
    """The header's first value as it was in the source. (Message.get() hands back 8-bit values
    replaced by U+FFFD under compat32; raw_items() keeps them as surrogate escapes.)"""
    for key, value in part.raw_items():
        if key.strip().lower() == name:
            return str(value)
    return None


def _read_headers(state: _State, msg: Message) -> None:
    headers: dict[str, list[str]] = {}
    raw_addresses: dict[str, list[str]] = {}
    raw_date: str | None = None
    total = 0
    capped = False
    subject: str | None = None
    for name, raw_value in msg.raw_items():
        key = name.strip().lower()
        value = str(raw_value)
        if key in _ADDRESS_HEADERS:
            raw_addresses.setdefault(key, []).append(value)
        elif key == "date" and raw_date is None:
            raw_date = value
        text = _decode_header(state, key, value)
        if key == "subject" and subject is None:
            subject = text
        if capped:
            continue
        kept = text[:HEADER_VALUE_CAP]
        if total + len(key) + len(kept) > HEADERS_TOTAL_CAP:
            capped = True
            state.warn(f"headers truncated at {HEADERS_TOTAL_CAP} bytes")
            continue
        total += len(key) + len(kept)
        headers.setdefault(key, []).append(kept)
    state.fields["headers"] = headers
    state.fields["subject"] = subject or ""

    try:
        _read_ids(state, headers)
    except Exception as exc:
        state.fail("message ids", exc)
    for header, values in raw_addresses.items():
        try:
            state.fields[_ADDRESS_HEADERS[header]] = _parse_addresses(state, header, values)
        except Exception as exc:
            state.fail(f"{header} header", exc)
    try:
        _read_date(state, raw_date)
    except Exception as exc:
        state.fail("date header", exc)


def _decode_header(state: _State, name: str, value: str) -> str:
    if len(value) > _HEADER_DECODE_CAP:
        value = value[:_HEADER_DECODE_CAP]
        state.warn(f"header {name}: value longer than {_HEADER_DECODE_CAP} characters truncated")
    # The common case, without the charset machinery ("=" then a fold: an encoded-word's "=?"
    # split by folding).
    if value.isascii() and "=?" not in value and "=\n" not in value and "=\r\n" not in value:
        return " ".join(value.split()) if "\n" in value else value.strip()
    text, notes = decode_header_value_with_warnings(value)
    for note in notes:
        state.warn(f"header {name}: {note}")
    return text


def _first_id(value: str) -> str | None:
    match = _MSG_ID.search(value)
    if match:
        return match.group(1)
    token = value.strip().strip("<>").strip()
    if token and not any(c.isspace() for c in token):
        return token[:998]
    return None


def _read_ids(state: _State, headers: dict[str, list[str]]) -> None:
    if "message-id" in headers:
        state.fields["message_id"] = _first_id(headers["message-id"][0])
    if "in-reply-to" in headers:
        state.fields["in_reply_to"] = _first_id(headers["in-reply-to"][0])
    refs: list[str] = []
    for value in headers.get("references", []):
        found = _MSG_ID.findall(value)
        if not found:
            found = [t.strip("<>") for t in value.split() if t.strip("<>")]
        refs.extend(found)
    if refs:
        state.fields["references"] = list(dict.fromkeys(refs))[:_MAX_REFERENCES]


_BARE_ADDR = re.compile(r"[^\s<>()\",;:\\\[\]@]+@[^\s<>()\",;:\\\[\]@]+")
_NAME_ADDR = re.compile(r"([^<>\"(),;:@\\]*?)\s*<([^\s<>()\",;:\\\[\]@]+@[^\s<>()\",;:\\\[\]@]+)>")


def _split_simple(value: str) -> list[tuple[str, str]] | None:
    """(name, address) pairs of a header with only plain addresses and unquoted names, the
    common case, without the full RFC 5322 parser; None when the header needs it."""
    if '"' in value or "(" in value or ":" in value or "\\" in value:
        return None
    pairs: list[tuple[str, str]] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        match = _BARE_ADDR.fullmatch(item)
        if match:
            pairs.append(("", item))
            continue
        match = _NAME_ADDR.fullmatch(item)
        if match is None:
            return None
        pairs.append((match.group(1).strip(), match.group(2)))
    return pairs


def _parse_addresses(state: _State, header: str, values: list[str]) -> list[Address]:
    unfolded = [v.replace("\r", "").replace("\n", "") for v in values]
    out: list[Address] = []
    seen: set[tuple[str, str]] = set()
    pairs: list[tuple[str, str]] = []
    for value in unfolded:
        simple = _split_simple(value)
        pairs.extend(simple if simple is not None else email.utils.getaddresses([value]))
    for name, addr in pairs:
        name = _decode_header(state, header, name) if name else ""
        addr = _decode_header(state, header, addr) if addr else ""
        addr = "".join(addr.split())
        if not addr and not name:
            continue
        if addr and "@" not in addr and not name:
            name, addr = addr, ""  # "From: Whomever": a name without an address
        item = (name[:1_000], addr.lower()[:1_000])
        if item not in seen:
            seen.add(item)
            out.append(Address(name=item[0], address=item[1]))
        if len(out) >= _MAX_ADDRESSES:
            state.warn(f"header {header}: more than {_MAX_ADDRESSES} addresses, rest dropped")
            break
    if not any(a.address for a in out):  # garbage the RFC 5322 parser could not read
        loose = []
        for value in unfolded:
            for found in _LOOSE_ADDR.findall(value):
                loose.append(Address(address=found.strip(".").lower()[:1_000]))
        if loose:
            state.warn(f"header {header}: unparseable, addresses picked out of it")
            return list(dict.fromkeys(loose))[:_MAX_ADDRESSES]
    return out


def _read_date(state: _State, value: str | None) -> None:
    if value is None or not str(value).strip():
        state.warn("Date header missing, using arrival time")
        return
    text = " ".join(str(value).split())
    parsed = _parse_date(text)
    if parsed is None:
        state.warn(f"Date header {text[:100]!r} unreadable, using arrival time")
        return
    date, offset = parsed
    if date.year < _MIN_YEAR or date > state.arrival + _FUTURE_SLACK:
        state.warn(f"Date header {text[:100]!r} is absurd, using arrival time")
        return
    if offset is None:
        state.warn(f"Date header {text[:100]!r} has no UTC offset, read as UTC")
    state.fields["date"] = date
    state.fields["date_offset_minutes"] = offset
    state.fields["date_source"] = "header"


def _parse_date(text: str) -> tuple[datetime, int | None] | None:
    """(UTC datetime, the header's offset in minutes or None if it gave none) or None."""
    try:
        parts = email.utils.parsedate_tz(text)
    except Exception:
        parts = None
    if parts is None:
        try:
            iso = datetime.fromisoformat(text.replace(" UTC", "+00:00"))
        except ValueError:
            return None
        if iso.tzinfo is None:
            return iso.replace(tzinfo=UTC), None
        delta = iso.utcoffset() or timedelta(0)
        return iso.astimezone(UTC), int(delta.total_seconds() // 60)
    year, month, day, hour, minute, second = parts[:6]
    seconds = parts[9]
    has_zone = seconds is not None and (seconds != 0 or _ZONE.search(_COMMENT.sub("", text)))
    if not has_zone:
        seconds = 0
    assert seconds is not None
    try:
        local = datetime(year, month, day, hour, minute, min(second, 59))
    except (ValueError, OverflowError, TypeError):
        return None
    if abs(seconds) >= 24 * 3600:
        return local.replace(tzinfo=UTC), None
    try:
        utc = (local - timedelta(seconds=seconds)).replace(tzinfo=UTC)
    except OverflowError:
        return None
    return utc, (seconds // 60 if has_zone else None)


# ---------------------------------------------------------------------------------------------
# Body and attachments


def payload_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    if isinstance(payload, str):
        return payload.encode("ascii", "surrogateescape")
    return b""


_PARAM = re.compile(r'([^\s=;"]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def _param(part: Message, name: str, header: str) -> str:
    """A header parameter, decoded: RFC 2231 (charset'lang'%XX, continuations) or a plain value
    that may hold RFC 2047 encoded-words or raw 8-bit bytes."""
    raw = _raw_value(part, header)
    if raw is None or "=" not in raw:
        return ""
    raw = raw[:_HEADER_DECODE_CAP].replace("\r", "").replace("\n", "")
    plain: str | None = None
    pieces: dict[int, tuple[bool, str]] = {}
    for match in _PARAM.finditer(raw):
        key = match.group(1).lower()
        value = match.group(2).strip()
        if value.startswith('"'):
            value = email.utils.unquote(value) if value.endswith('"') else value[1:]
        if key == name:
            if plain is None:
                plain = value
        elif key == name + "*":
            pieces.setdefault(0, (True, value))
        elif key.startswith(name + "*"):
            rest = key[len(name) + 1 :]
            number = rest.rstrip("*")
            if number.isdigit() and len(number) < 5:
                pieces.setdefault(int(number), (rest.endswith("*"), value))
    if pieces:
        charset: str | None = None
        data = bytearray()
        for index, number in enumerate(sorted(pieces)):
            encoded, value = pieces[number]
            if encoded:
                if index == 0 and value.count("'") >= 2:
                    charset, _, value = value.split("'", 2)
                data += urllib.parse.unquote_to_bytes(value.encode("utf-8", "surrogateescape"))
            else:
                data += value.encode("utf-8", "surrogateescape")
        text, _, _ = decode_bytes(bytes(data), charset or None)
        return text
    if plain is None:
        return ""
    text, _ = decode_header_value_with_warnings(plain)
    return text


def _filename(part: Message) -> str:
    name = _param(part, "filename", "content-disposition") or _param(part, "name", "content-type")
    return _CONTROL.sub("", name).strip()[:1_000]


def _disposition(part: Message) -> str:
    try:
        return part.get_content_disposition() or ""
    except Exception:
        return ""


def _walk(state: _State, part: Message, depth: int, as_body: bool, boundary: str | None) -> None:
    """Visit part: body text when as_body, else only its attachments (an unused alternative)."""
    state.parts_seen += 1
    if state.parts_seen > _MAX_PARTS:
        state.warn(f"more than {_MAX_PARTS} MIME parts, rest ignored")
        return
    if depth > _MAX_DEPTH:
        state.warn(f"MIME nesting deeper than {_MAX_DEPTH}, rest ignored")
        return
    for defect in part.defects if depth else ():
        state.warn(f"MIME defect: {type(defect).__name__}")
    ctype = part.get_content_type()
    maintype = ctype.split("/", 1)[0]
    payload = part.get_payload()
    if isinstance(payload, list):
        if maintype == "message":
            _nested_message(state, part, payload, boundary)
            return
        inner = part.get_boundary()
        children = [p for p in payload if isinstance(p, Message)]
        if as_body and ctype == "multipart/alternative" and len(children) > 1:
            _alternative(state, children, depth, inner)
        else:
            for child in children:
                _walk(state, child, depth + 1, as_body, inner)
        return
    if maintype == "multipart":
        state.warn(f"{ctype} without a usable boundary: its content is kept as text")
        if as_body:
            _add_text(state, part, "text/plain")
        return
    if maintype == "message" and ctype in ("message/rfc822", "message/global"):
        _nested_message(state, part, None, boundary)
        return
    disposition = _disposition(part)
    filename = _filename(part)
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        if ctype == "text/html":
            state.has_html = True
        if as_body:
            _add_text(state, part, ctype)
        return
    _attachment(state, part, ctype, disposition, filename)


def _body_types(part: Message, depth: int = 0) -> set[str]:
    """The body content types inside part (for choosing among alternatives)."""
    if depth > 8:
        return set()
    payload = part.get_payload()
    ctype = part.get_content_type()
    if isinstance(payload, list):
        if ctype.startswith("message/"):
            return set()
        found: set[str] = set()
        for child in payload:
            if isinstance(child, Message):
                found |= _body_types(child, depth + 1)
        return found
    if ctype in ("text/plain", "text/html") and _disposition(part) != "attachment":
        return {ctype}
    return set()


def _alternative(state: _State, children: list[Message], depth: int, boundary: str | None) -> None:
    kinds = [_body_types(child) for child in children]
    plain = [c for c, k in zip(children, kinds, strict=True) if "text/plain" in k]
    html = [c for c, k in zip(children, kinds, strict=True) if "text/html" in k]
    others = [c for c in reversed(children) if c not in plain and c not in html]
    tried: list[Message] = []
    for child in plain + list(reversed(html)) + others:
        if any(child is t for t in tried):
            continue
        tried.append(child)
        mark = len(state.texts)
        _walk(state, child, depth + 1, True, boundary)
        if any(t.strip() for t in state.texts[mark:]):
            break
    for child in children:
        if not any(child is t for t in tried):
            _walk(state, child, depth + 1, False, boundary)


def _add_text(state: _State, part: Message, ctype: str) -> None:
    if state.truncated:
        return
    data = payload_bytes(part)
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    text, _, notes = decode_bytes(data, charset)
    for note in notes:
        state.warn(f"body {note}")
    room = state.max_body_chars - state.text_size
    if ctype == "text/html":
        text = html_to_text(text, max_chars=room + 1)
    else:
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        text = text.replace("\x00", "")
    text = text.strip("\n")
    if not text.strip():
        return
    separator = 2 if state.texts else 0
    if len(text) + separator > room:
        text = text[: max(0, room - separator)]
        state.truncated = True
        state.warn(f"body truncated to {state.max_body_chars} characters")
    if text:
        state.texts.append(text)
        state.text_size += len(text) + separator


def _finish_body(state: _State) -> None:
    if state.text_size > state.max_body_chars:  # pragma: no cover - guarded in _add_text
        joined = "\n\n".join(state.texts)[: state.max_body_chars]
        state.texts = [joined]


def _attachment(
    state: _State,
    part: Message,
    ctype: str,
    disposition: str,
    filename: str,
    data: bytes | None = None,
) -> None:
    if id(part) in state.recorded:
        return
    state.recorded.add(id(part))
    if data is None:
        data = payload_bytes(part)
    text_chars, extract_error = 0, None
    if state.extracted is not None:
        try:
            charset = part.get_content_charset()
        except Exception:
            charset = None
        text_chars, extract_error = state.extracted.add(data, ctype, filename, charset)
    state.attachments.append(
        AttachmentInfo(
            filename=filename,
            content_type=ctype,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            disposition=disposition,
            text_chars=text_chars,
            extract_error=extract_error,
        )
    )


def _nested_message(
    state: _State, part: Message, payload: list[Any] | None, boundary: str | None
) -> None:
    if id(part) in state.recorded:
        return
    inner = payload[0] if payload and isinstance(payload[0], Message) else None
    data = _nested_bytes(state, part, inner, boundary)
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    if cte == "base64":
        try:
            data = base64.b64decode(b"".join(data.split()) + b"==", validate=False)
        except (binascii.Error, ValueError):
            state.warn("nested message: base64 undecodable, kept as is")
    elif cte == "quoted-printable":
        data = quopri.decodestring(data)
    subject = ""
    try:
        if cte in ("base64", "quoted-printable") or inner is None:
            headers = BytesHeaderParser(policy=compat32).parsebytes(data, headersonly=True)
            value = _raw_value(headers, "subject")
        else:
            value = _raw_value(inner, "subject")
        if value is not None:
            subject, _ = decode_header_value_with_warnings(str(value))
    except Exception:
        subject = ""
    filename = _filename(part)
    if not filename:
        stem = _BAD_FILENAME_CHARS.sub("_", subject).strip(" ._")[:150]
        filename = f"{stem}.eml" if stem else "message.eml"
    _attachment(state, part, part.get_content_type(), _disposition(part), filename, data)


def _nested_bytes(
    state: _State, part: Message, inner: Message | None, boundary: str | None
) -> bytes:
    """The original bytes of a message/rfc822 part, found in the raw message; re-serialized
    from the parse only when they cannot be located."""
    raw = state.raw
    if inner is None:
        return payload_bytes(part)
    found = _locate_nested(state, inner, boundary)
    if found is not None:
        return found
    state.warn("nested message: original bytes not located, sha256 is of a re-serialization")
    linesep = "\r\n" if b"\r\n" in raw[:4096] else "\n"
    out = io.BytesIO()
    generator = BytesGenerator(out, mangle_from_=False, policy=compat32.clone(linesep=linesep))
    generator.flatten(inner, linesep=linesep)
    return out.getvalue()


def _locate_nested(state: _State, inner: Message, boundary: str | None) -> bytes | None:
    raw = state.raw
    items = inner.raw_items()
    first = next(iter(items), None)
    if first is None:
        return None
    name = first[0].encode("ascii", "surrogateescape") + b":"
    value = str(first[1]).encode("utf-8", "surrogateescape")
    pos = state.cursor
    while True:
        pos = raw.find(name, pos)
        if pos < 0:
            return None
        after_blank = raw.endswith(b"\n\n", 0, pos) or raw.endswith(b"\n\r\n", 0, pos)
        rest = raw[pos + len(name) : pos + len(name) + len(value) + 64].lstrip(b" \t")
        if after_blank and rest.startswith(value):
            break
        pos += 1
    end = len(raw)
    if boundary:
        marker = raw.find(b"\n--" + boundary.encode("utf-8", "surrogateescape"), pos)
        if marker >= 0:
            end = marker - 1 if marker > 0 and raw[marker - 1 : marker] == b"\r" else marker
    state.cursor = pos + 1
    return raw[pos:end]
