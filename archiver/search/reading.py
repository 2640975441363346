"""Reading one archived message: the parsed view a person sees."""

from __future__ import annotations

from archiver.errors import MessageNotFound
from archiver.mime.html_view import SafeHtml, safe_html
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
