from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from archiver.access.model import Permission
from archiver.search.conversations import thread_of
from search_api.audit import AuditedRoute
from search_api.deps import IndexDep, scoped_index
from search_api.routers.messages import MessageId, Viewing

router = APIRouter(prefix="/api/threads", tags=["threads"], route_class=AuditedRoute)


@router.get("/{message_id}")
def get_thread(audit: Viewing, index: IndexDep, message_id: str = MessageId) -> dict[str, Any]:
    """The conversation the message belongs to, oldest first: only its messages the caller
    may read."""
    audit.target = message_id
    audit.details["what"] = "thread"
    messages = thread_of(scoped_index(index, audit, Permission.VIEW), message_id)
    audit.details["messages"] = [m["id"] for m in messages]
    return {"messages": messages}
