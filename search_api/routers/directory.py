"""The department directory: import (CSV or JSON), read, preview and apply to archived mail."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request

from archiver.access.model import Permission
from archiver.audit.records import AuditAction
from archiver.errors import NotFound
from archiver.tagging.directory import Scope
from search_api.audit import AuditedRoute, RequestAudit, audited
from search_api.deps import FollowUpDep, TaggingDep
from search_api.routers.rules import previewed

router = APIRouter(prefix="/api/directory", tags=["directory"], route_class=AuditedRoute)
ReadingDirectory = Annotated[
    RequestAudit, Depends(audited(AuditAction.CONFIG_READ, Permission.MANAGE_RULES))
]
ChangingDirectory = Annotated[
    RequestAudit, Depends(audited(AuditAction.CONFIG_CHANGE, Permission.MANAGE_RULES))
]


@router.get("")
def get_directory(audit: ReadingDirectory, tagging: TaggingDep) -> dict[str, Any]:
    audit.target = "directory"
    return tagging.store.directory().model_dump(mode="json")


async def _file(request: Request) -> bytes:
    """The request body as sent: read here, on the event loop (it only awaits the client), so
    the route itself can be a plain def and its S3 and Elasticsearch calls run in the
    threadpool."""
    return await request.body()


_FILE_BODY = {
    "requestBody": {
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
        }
    }
}


@router.post("/import", openapi_extra=_FILE_BODY)
def import_directory(
    audit: ChangingDirectory,
    tagging: TaggingDep,
    request: Request,
    file: Annotated[bytes, Depends(_file)],
    follow_up: FollowUpDep,
    format: Literal["csv", "json"] | None = None,
    scope: Scope | None = None,
    replace: bool = False,
    apply: bool = False,
) -> dict[str, Any]:
    """The request body is the file (text/csv or application/json; or say ?format=). Adds or
    updates people (?replace=true: the file is the whole directory); ?scope=sender|participants
    says whose departments a message gets; ?apply=true re-tags archived mail at once."""
    assert audit.principal is not None
    fmt = format or ("json" if "json" in request.headers.get("content-type", "") else "csv")
    audit.target = "directory"
    audit.details.update(format=fmt, bytes=len(file), replace=replace, apply=apply)
    data = tagging.import_directory(
        file, fmt, scope=scope, replace=replace, user=audit.principal.username
    )
    audit.details["version"] = data.version
    result: dict[str, Any] = {
        "version": data.version,
        "scope": data.scope,
        "people": len(data.people),
    }
    if apply:
        result["applied"] = previewed(tagging.apply_directory(), audit)
        follow_up.recompute()  # departments decide retention policies and holds too
    return result


@router.get("/people/{address}")
def get_person(audit: ReadingDirectory, tagging: TaggingDep, address: str) -> dict[str, Any]:
    audit.target = f"directory:{address}"
    person = tagging.store.directory().people.get(address.strip().lower())
    if person is None:
        raise NotFound(f"{address} is not in the directory")
    return person.model_dump()


@router.post("/preview")
def preview_directory(audit: ReadingDirectory, tagging: TaggingDep) -> dict[str, Any]:
    audit.target = "directory"
    return previewed(tagging.preview_directory(), audit)


@router.post("/apply")
def apply_directory(
    audit: ChangingDirectory, tagging: TaggingDep, follow_up: FollowUpDep, restart: bool = False
) -> dict[str, Any]:
    """Re-tag archived mail by the directory; retention is recomputed afterwards."""
    audit.target, audit.details["apply"] = "directory", {"restart": restart}
    report = tagging.apply_directory(restart=restart)
    follow_up.recompute()
    return previewed(report, audit)
