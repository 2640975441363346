from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Response

from archiver.errors import MessageNotFound
from search_api.deps import IndexDep, RawStoreDep

router = APIRouter(prefix="/api/messages", tags=["messages"])
MessageId = Path(pattern="^[0-9a-f]{64}$", description="SHA-256 of the raw message")
_INTERNAL_FIELDS = (
    "subject_terms",
    "subject_words",
    "body_terms",
    "body_words",
    "names_terms",
    "attachment_names_terms",
)


@router.get("/{message_id}")
def get_message(index: IndexDep, message_id: str = MessageId) -> dict[str, Any]:
    """The parsed view of one message (the segmented index fields left out)."""
    doc = index.get(message_id)
    if doc is None:
        raise MessageNotFound(message_id)
    return {k: v for k, v in doc.items() if k not in _INTERNAL_FIELDS}


@router.get(
    "/{message_id}/raw",
    response_class=Response,
    responses={200: {"content": {"message/rfc822": {}}}},
)
def get_raw(store: RawStoreDep, message_id: str = MessageId) -> Response:
    """The byte-exact message as archived, verified against its SHA-256."""
    raw = store.get(message_id)
    return Response(
        content=raw,
        media_type="message/rfc822",
        headers={
            "Content-Disposition": f'attachment; filename="{message_id}.eml"',
            "X-Content-SHA256": message_id,
        },
    )
