"""Tags: the namespaces, definitions and usage; a message's tags with their provenance."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from archiver.access.model import Permission
from archiver.audit.records import AuditAction
from archiver.errors import NotFound
from search_api.audit import AuditedRoute, RequestAudit, audited
from search_api.deps import FollowUpDep, IndexDep, RetentionFollowUp, TaggingDep, scoped_index
from search_api.routers.messages import Viewing

router = APIRouter(prefix="/api", tags=["tags"], route_class=AuditedRoute)
MessageId = Path(pattern="^[0-9a-f]{64}$", description="SHA-256 of the raw message")
ReadingTags = Annotated[
    RequestAudit,
    Depends(audited(AuditAction.CONFIG_READ, Permission.SEARCH, Permission.MANAGE_RULES)),
]
DefiningTags = Annotated[
    RequestAudit, Depends(audited(AuditAction.TAG_CHANGE, Permission.MANAGE_RULES))
]
Tagging = Annotated[RequestAudit, Depends(audited(AuditAction.TAG_CHANGE, Permission.TAG))]


class TagIn(BaseModel):
    description: str = ""


class TagChange(BaseModel):
    # extra fields refused: who makes the change is the signed-in user, never a field
    model_config = ConfigDict(extra="forbid")

    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)


@router.get("/tags")
def list_tags(audit: ReadingTags, tagging: TaggingDep, index: IndexDep) -> dict[str, Any]:
    """Namespaces (project, department, urgency), defined tags, and tags in use with counts:
    the counts of the mail the caller may search (none for an administrator who reads no
    mail)."""
    audit.target = "tags"
    return tagging.through(scoped_index(index, audit, Permission.SEARCH)).list_tags()


@router.put("/tags/{path:path}")
def define_tag(audit: DefiningTags, tagging: TaggingDep, path: str, body: TagIn) -> dict[str, Any]:
    audit.target, audit.details["description"] = f"tag:{path}", body.description
    return tagging.define_tag(path, body.description).model_dump(mode="json")


@router.delete("/tags/{path:path}", status_code=204)
def delete_tag(audit: DefiningTags, tagging: TaggingDep, path: str) -> Response:
    """Forget a tag's definition; messages keep the tag."""
    audit.target, audit.details["deleted"] = f"tag:{path}", True
    if not tagging.delete_tag(path):
        raise NotFound(f"no tag definition {path!r}")
    return Response(status_code=204)


@router.get("/messages/{message_id}/tags")
def message_tags(
    audit: Viewing, tagging: TaggingDep, index: IndexDep, message_id: str = MessageId
) -> dict[str, Any]:
    """The message's tags and every event that added or removed one (rule, person, directory)."""
    audit.target, audit.details["what"] = message_id, "tags"
    return tagging.through(scoped_index(index, audit, Permission.VIEW)).message_tags(message_id)


def _change(
    audit: RequestAudit,
    tagging: TaggingDep,
    index: IndexDep,
    message_id: str,
    add: list[str],
    remove: list[str],
    later: RetentionFollowUp,
) -> dict[str, Any]:
    assert audit.principal is not None
    audit.target = message_id
    audit.details.update(add=add, remove=remove)
    scoped = tagging.through(scoped_index(index, audit, Permission.VIEW))
    changed = scoped.change_message_tags(message_id, add, remove, audit.principal.username)
    # policies and holds may name tags and departments: decide the message again
    later.redecide([message_id])
    return changed


@router.post("/messages/{message_id}/tags")
def change_message_tags(
    audit: Tagging,
    tagging: TaggingDep,
    index: IndexDep,
    body: TagChange,
    later: FollowUpDep,
    message_id: str = MessageId,
) -> dict[str, Any]:
    """Add or remove tags by hand, as the signed-in user. A tag removed by hand is not put
    back by rules. The message's retention and holds are decided again."""
    return _change(audit, tagging, index, message_id, body.add, body.remove, later)


@router.delete("/messages/{message_id}/tags/{tag:path}")
def remove_message_tag(
    audit: Tagging,
    tagging: TaggingDep,
    index: IndexDep,
    tag: str,
    later: FollowUpDep,
    message_id: str = MessageId,
) -> dict[str, Any]:
    return _change(audit, tagging, index, message_id, [], [tag], later)
