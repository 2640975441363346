from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Response

from archiver.search.reading import message_view
from search_api.deps import IndexDep, RawStoreDep

router = APIRouter(prefix="/api/messages", tags=["messages"])
MessageId = Path(pattern="^[0-9a-f]{64}$", description="SHA-256 of the raw message")


@router.get("/{message_id}")
def get_message(index: IndexDep, message_id: str = MessageId) -> dict[str, Any]:
    """The parsed view of one message (the segmented index fields left out)."""
    return message_view(index, message_id)


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
