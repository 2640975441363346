"""The department directory: import (CSV or JSON), read, preview and apply to archived mail."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request

from archiver.errors import NotFound
from archiver.tagging.directory import Scope
from search_api.deps import TaggingDep

router = APIRouter(prefix="/api/directory", tags=["directory"])


@router.get("")
def get_directory(tagging: TaggingDep) -> dict[str, Any]:
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
    tagging: TaggingDep,
    request: Request,
    file: Annotated[bytes, Depends(_file)],
    format: Literal["csv", "json"] | None = None,
    scope: Scope | None = None,
    replace: bool = False,
    apply: bool = False,
    user: str = "",
) -> dict[str, Any]:
    """The request body is the file (text/csv or application/json; or say ?format=). Adds or
    updates people (?replace=true: the file is the whole directory); ?scope=sender|participants
    says whose departments a message gets; ?apply=true re-tags archived mail at once."""
    fmt = format or ("json" if "json" in request.headers.get("content-type", "") else "csv")
    data = tagging.import_directory(file, fmt, scope=scope, replace=replace, user=user)
    result: dict[str, Any] = {
        "version": data.version,
        "scope": data.scope,
        "people": len(data.people),
    }
    if apply:
        result["applied"] = tagging.apply_directory().model_dump(mode="json")
    return result


@router.get("/people/{address}")
def get_person(tagging: TaggingDep, address: str) -> dict[str, Any]:
    person = tagging.store.directory().people.get(address.strip().lower())
    if person is None:
        raise NotFound(f"{address} is not in the directory")
    return person.model_dump()


@router.post("/preview")
def preview_directory(tagging: TaggingDep) -> dict[str, Any]:
    return tagging.preview_directory().model_dump(mode="json")


@router.post("/apply")
def apply_directory(tagging: TaggingDep, restart: bool = False) -> dict[str, Any]:
    return tagging.apply_directory(restart=restart).model_dump(mode="json")
