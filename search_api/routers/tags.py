"""Tags: the namespaces, definitions and usage; a message's tags with their provenance."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from archiver.errors import NotFound
from search_api.deps import TaggingDep

router = APIRouter(prefix="/api", tags=["tags"])
MessageId = Path(pattern="^[0-9a-f]{64}$", description="SHA-256 of the raw message")


class TagIn(BaseModel):
    description: str = ""


class TagChange(BaseModel):
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)
    user: str = Field(description="who makes the change (recorded with it)")


@router.get("/tags")
def list_tags(tagging: TaggingDep) -> dict[str, Any]:
    """Namespaces (project, department, urgency), defined tags, and tags in use with counts."""
    return tagging.list_tags()


@router.put("/tags/{path:path}")
def define_tag(tagging: TaggingDep, path: str, body: TagIn) -> dict[str, Any]:
    return tagging.define_tag(path, body.description).model_dump(mode="json")


@router.delete("/tags/{path:path}", status_code=204)
def delete_tag(tagging: TaggingDep, path: str) -> Response:
    """Forget a tag's definition; messages keep the tag."""
    if not tagging.delete_tag(path):
        raise NotFound(f"no tag definition {path!r}")
    return Response(status_code=204)


@router.get("/messages/{message_id}/tags")
def message_tags(tagging: TaggingDep, message_id: str = MessageId) -> dict[str, Any]:
    """The message's tags and every event that added or removed one (rule, person, directory)."""
    return tagging.message_tags(message_id)


@router.post("/messages/{message_id}/tags")
def change_message_tags(
    tagging: TaggingDep, body: TagChange, message_id: str = MessageId
) -> dict[str, Any]:
    """Add or remove tags by hand. A tag removed by hand is not put back by rules."""
    return tagging.change_message_tags(message_id, body.add, body.remove, body.user)


@router.delete("/messages/{message_id}/tags/{tag:path}")
def remove_message_tag(
    tagging: TaggingDep, tag: str, user: str, message_id: str = MessageId
) -> dict[str, Any]:
    return tagging.change_message_tags(message_id, [], [tag], user)
