from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from archiver.search.conversations import thread_of
from search_api.deps import IndexDep
from search_api.routers.messages import MessageId

router = APIRouter(prefix="/api/threads", tags=["threads"])


@router.get("/{message_id}")
def get_thread(index: IndexDep, message_id: str = MessageId) -> dict[str, Any]:
    """The conversation the message belongs to, oldest first."""
    return {"messages": thread_of(index, message_id)}
