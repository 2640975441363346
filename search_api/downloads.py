"""Headers of a file the browser saves."""

from __future__ import annotations

import re
from urllib.parse import quote


def content_disposition(name: str, ascii_name: str | None = None) -> str:
    """`attachment` with the UTF-8 name (RFC 6266 filename*) and an ASCII one for older
    clients: the given one, or the name with anything outside printable ASCII replaced."""
    fallback = ascii_name or re.sub(r'[^\x20-\x7e]|["\\]', "_", name) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
