"""Reading one archived message: the parsed view a person sees."""

from __future__ import annotations

import email
import hashlib
from dataclasses import dataclass
from email.policy import compat32

from archiver.errors import MessageNotFound, NotFound
from archiver.mime.attachments import Extraction, extract_text
from archiver.mime.html_view import SafeHtml, safe_html
from archiver.mime.parsing import payload_bytes
from archiver.models import AttachmentInfo
from archiver.ports import Document, RawStore, SearchIndex
from archiver.search.scoped import ScopedIndex

# Segmented copies of the text, for the index only.
INTERNAL_FIELDS = frozenset(
    {
        "subject_terms",
        "subject_words",
        "body_terms",
        "body_words",
        "names_terms",
        "attachment_names_terms",
    }
)


def message_view(index: SearchIndex, sha256: str) -> Document:
    """The parsed message with `related_ids`: other messages with the same Message-ID but
    different bytes (journal copies), found at read time so the relation is never stale."""
    doc = index.get(sha256)
    if doc is None:
        raise MessageNotFound(sha256)
    view = {k: v for k, v in doc.items() if k not in INTERNAL_FIELDS}
    message_id = doc.get("message_id")
    copies = index.ids_by_message_id([message_id]).get(message_id, []) if message_id else []
    view["related_ids"] = sorted(set(copies) - {sha256})
    return view


def raw_message(store: RawStore, index: ScopedIndex, sha256: str) -> bytes:
    """The byte-exact message, verified against its SHA-256. A reader of the whole archive gets
    any stored message, indexed yet or not; a scoped reader only one the index shows in scope."""
    if not index.scope.everything and not index.exists(sha256):
        raise MessageNotFound(sha256)
    return store.get(sha256)


def html_body(
    store: RawStore, index: ScopedIndex, sha256: str, allow_remote: bool
) -> SafeHtml | None:
    """The message's HTML body made safe to show (None: it has none). The index keeps text
    only, so the part comes from the verified raw message, read through the reader's scope."""
    return safe_html(raw_message(store, index, sha256), allow_remote)


@dataclass(frozen=True)
class Attachment:
    info: AttachmentInfo
    data: bytes


def attachment(
    store: RawStore, index: ScopedIndex, sha256: str, attachment_sha256: str
) -> Attachment:
    """One attachment of the message, by its SHA-256 as the index lists it: the bytes are found
    again in the verified raw message, so what is downloaded is what was hashed at ingest."""
    doc = index.get(sha256)
    if doc is None:
        raise MessageNotFound(sha256)
    listed = [a for a in doc.get("attachments") or [] if a.get("sha256") == attachment_sha256]
    if not listed:
        raise NotFound(f"message {sha256} has no attachment {attachment_sha256}")
    info = AttachmentInfo.model_validate(listed[0])
    raw = raw_message(store, index, sha256)
    for part in email.message_from_bytes(raw, policy=compat32).walk():
        if part.is_multipart():
            continue
        data = payload_bytes(part)
        if hashlib.sha256(data).hexdigest() == attachment_sha256:
            return Attachment(info, data)
    raise NotFound(f"attachment {attachment_sha256} is listed but not found in message {sha256}")


def attachment_text(found: Attachment, max_chars: int = 200_000) -> Extraction:
    """The attachment's text, extracted again (the index keeps all attachments' text as one)."""
    return extract_text(
        found.data, found.info.content_type, found.info.filename, max_chars=max_chars, timeout_s=10
    )
