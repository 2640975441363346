"""Names in an export package: folders, message files, mbox files, control numbers.

Every name must unzip the same on Windows, macOS and Linux, so a component never holds what one
of them refuses or rewrites (separators, `: * ? " < > |`, control characters, a trailing dot or
space, a reserved device name), is NFC (macOS file systems normalise, zip tools compare bytes),
and stays within a byte budget well under the 255 bytes most file systems allow.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

MAX_COMPONENT_BYTES = 200
MAX_FILE_NAME_BYTES = 200
MAX_SENDER_BYTES = 80  # an address rarely needs more; the subject gets the rest
MAX_ID_BYTES = 64
UNKNOWN_CUSTODIAN = "unknown"
NO_DATE = "00000000-000000"  # undated messages sort first and keep the names' width
HASH_CHARS = 12

_FORBIDDEN = frozenset('/\\:*?"<>|')
# Control (Cc), format (Cf: bidirectional overrides could disguise an extension), surrogate
# (Cs: not encodable) and line/paragraph separators (Zl, Zp).
_REPLACED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_SPACES = re.compile(r"\s+")
_DIGITS = "123456789¹²³"  # Windows reserves COM¹ and LPT² too
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{dev}{n}" for dev in ("COM", "LPT") for n in _DIGITS}
)
_EXTENSION = re.compile(r"[a-z0-9]{1,10}")


def _reserved(name: str) -> bool:
    # Windows ignores an extension and trailing spaces: "con.txt" and "NUL .eml" are devices.
    return name.split(".", 1)[0].rstrip(" ").upper() in _RESERVED


def _clean(text: str) -> str:
    out = []
    for char in text:
        bad = char in _FORBIDDEN or unicodedata.category(char) in _REPLACED_CATEGORIES
        out.append("_" if bad and not char.isspace() else " " if bad else char)
    return _SPACES.sub(" ", "".join(out)).strip(". ")


def _truncate(text: str, max_bytes: int) -> str:
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    # decoding with "ignore" drops a character cut in the middle: the cut is on a boundary
    return encoded[:max_bytes].decode(errors="ignore")


def safe_component(text: str, max_bytes: int = MAX_COMPONENT_BYTES) -> str:
    """`text` as one path component that every platform accepts unchanged: never empty ("_"),
    at most `max_bytes` UTF-8 bytes, Chinese kept as is."""
    if max_bytes < 1:
        raise ValueError("max_bytes must be at least 1")
    name = _clean(unicodedata.normalize("NFC", text))
    # Truncating (or NFC after a cut) can expose a trailing dot or a device name again, or
    # leave a decomposed tail: repeat until nothing changes.
    while True:
        if _reserved(name):
            name = f"_{name}"
        fitted = _clean(unicodedata.normalize("NFC", _truncate(name, max_bytes)))
        if fitted == name:
            return name or "_"
        if not fitted:
            return "_"
        name = fitted


def _utc_stamp(date: datetime | None) -> str:
    if date is None:
        return NO_DATE
    aware = date if date.tzinfo is not None else date.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y%m%d-%H%M%S")


def message_file_name(
    date: datetime | None, sender: str, subject: str, sha256: str, ext: str = "eml"
) -> str:
    """`<YYYYMMDD-HHMMSS>_<sender>_<subject>_<sha256[:12]>.<ext>` (UTC), at most 200 bytes:
    the subject is cut first, then the sender; the hash and extension always stay, so names
    differ whenever the messages' first 48 hash bits do."""
    if not _EXTENSION.fullmatch(ext):
        raise ValueError(f"not a plain extension: {ext!r}")
    digest = sha256[:HASH_CHARS].lower()
    if not re.fullmatch(r"[0-9a-f]{12}", digest):
        raise ValueError(f"not a sha256: {sha256!r}")
    stamp = _utc_stamp(date)
    fixed = len(stamp) + len(digest) + len(ext) + 4  # three "_" and the "."
    room = MAX_FILE_NAME_BYTES - fixed
    who = safe_component(sender.strip().lower(), max_bytes=min(MAX_SENDER_BYTES, room // 2))
    what = safe_component(subject, max_bytes=room - len(who.encode()))
    return f"{stamp}_{who}_{what}_{digest}.{ext}"


def hold_folder(name: str, hold_id: str) -> str:
    """`<name> (<hold_id>)`: the name is cut to fit, the id always stays (it makes the folder
    unique when two holds share a name)."""
    ident = safe_component(hold_id, max_bytes=MAX_ID_BYTES)
    room = MAX_COMPONENT_BYTES - len(ident.encode()) - 3
    return f"{safe_component(name, max_bytes=room)} ({ident})"


def custodian_folder(address: str) -> str:
    # Lower case: two spellings of one address would otherwise be one folder on Windows and
    # macOS and two on Linux (and two mbox files overwriting each other).
    return safe_component(address.strip().lower(), max_bytes=MAX_COMPONENT_BYTES - 16)


def _addresses(values: Any) -> Iterable[str]:
    for value in values or ():
        address = value.get("address", "") if isinstance(value, Mapping) else value
        if isinstance(address, str) and address.strip():
            yield address.strip().lower()


def custodian_of(doc: Mapping[str, Any], addresses: Sequence[str] = ()) -> str:
    """Whose mail a message is: for a hold with custodians, the first of them (sorted) among
    its participants; otherwise the first envelope recipient, else the first To address, else
    the sender, else "unknown". Addresses in lower case."""
    if addresses:
        participants = {
            *_addresses(doc.get("from")),
            *_addresses(doc.get("to")),
            *_addresses(doc.get("cc")),
            *_addresses(doc.get("bcc")),
            *_addresses(doc.get("envelope_to")),
        }
        for address in sorted({a.strip().lower() for a in addresses if a.strip()}):
            if address in participants:
                return address
    for field in ("envelope_to", "to", "from"):
        found = next(iter(_addresses(doc.get(field))), None)
        if found:
            return found
    return UNKNOWN_CUSTODIAN


def mbox_name(custodian_folder: str, count: int) -> str:
    """The `count`th mbox file of a custodian: `<c>.mbox`, then `<c>_002.mbox`, ..."""
    if count < 1:
        raise ValueError("mbox files are counted from 1")
    return f"{custodian_folder}.mbox" if count == 1 else f"{custodian_folder}_{count:03d}.mbox"


def control_prefix(export_id: str) -> str:
    """`exp-3f2a1c9d0e` → `EXP3F2A1C9D0E-`: the whole id, so two productions loaded into one
    review platform never share control numbers."""
    letters = re.sub(r"[^0-9A-Za-z]", "", export_id).upper()
    if not letters:
        raise ValueError(f"no letters or digits in export id {export_id!r}")
    return f"{letters}-"


def control_number(export_id: str, number: int) -> str:
    if number < 1:
        raise ValueError("control numbers start at 1")
    return f"{control_prefix(export_id)}{number:07d}"
