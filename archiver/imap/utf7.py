"""IMAP's modified UTF-7 mailbox names (RFC 3501 section 5.1.3), which imaplib leaves to us.

Printable ASCII stands for itself, except "&", written "&-". Everything else is a run of
UTF-16BE in base64 with "," for "/", no padding, between "&" and "-": 收件箱 is "&ZTZO9nux-".
"""

from __future__ import annotations

import base64
import binascii

from archiver.errors import MailboxNameError


def _is_direct(char: str) -> bool:
    return 0x20 <= ord(char) <= 0x7E and char != "&"


def encode(name: str) -> str:
    """A mailbox name as sent to the server."""
    out: list[str] = []
    pending: list[str] = []  # a run of characters that must be base64-encoded

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ","))
            out.append("-")
            pending.clear()

    for char in name:
        if _is_direct(char):
            flush()
            out.append(char)
        elif char == "&":
            flush()
            out.append("&-")
        else:
            pending.append(char)
    flush()
    return "".join(out)


def decode(name: str) -> str:
    """A mailbox name as the server sent it, for people and source records."""
    out: list[str] = []
    i = 0
    while i < len(name):
        char = name[i]
        if char != "&":
            if not _is_direct(char):
                raise MailboxNameError(name, f"raw character {char!r} at {i}")
            out.append(char)
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise MailboxNameError(name, f"unterminated shift at {i}")
        chunk = name[i + 1 : end]
        out.append("&" if not chunk else _decode_chunk(name, chunk))
        i = end + 1
    return "".join(out)


def _decode_chunk(name: str, chunk: str) -> str:
    padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
    try:
        data = base64.b64decode(padded, validate=True)
        return data.decode("utf-16-be")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise MailboxNameError(name, f"bad base64 run &{chunk}-: {exc}") from exc
