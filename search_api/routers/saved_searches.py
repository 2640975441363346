"""A user's own saved searches. Running one is a search (/api/search?q=...), in scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from archiver.access.model import Permission
from archiver.audit.records import AuditAction
from archiver.search.saved import SavedSearch, SavedSearches, SavedSearchIn
from search_api.audit import AuditedRoute, RequestAudit, audited
from search_api.deps import JsonStoreDep

router = APIRouter(prefix="/api/saved-searches", tags=["saved searches"], route_class=AuditedRoute)
ReadingSaved = Annotated[RequestAudit, Depends(audited(AuditAction.CONFIG_READ, Permission.SEARCH))]
ChangingSaved = Annotated[
    RequestAudit, Depends(audited(AuditAction.SAVED_SEARCH_CHANGE, Permission.SEARCH))
]


class SavedSearchBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    query: str = Field(max_length=10_000)


def get_saved_searches(store: JsonStoreDep) -> SavedSearches:
    return SavedSearches(store)


SavedDep = Annotated[SavedSearches, Depends(get_saved_searches)]


def _owner(audit: RequestAudit) -> str:
    assert audit.principal is not None
    return audit.principal.username


@router.put("", response_model=SavedSearch)
def save(audit: ChangingSaved, saved: SavedDep, search: SavedSearchBody) -> SavedSearch:
    """Create or replace one of your saved searches; its query is checked first (400 when
    invalid)."""
    audit.target = f"saved-search:{search.name}"
    audit.details["query"] = search.query
    return saved.save(SavedSearchIn(owner=_owner(audit), **search.model_dump()))


@router.get("", response_model=list[SavedSearch])
def list_saved(audit: ReadingSaved, saved: SavedDep) -> list[SavedSearch]:
    audit.target = "saved-searches"
    return saved.list(_owner(audit))


@router.get("/{name}", response_model=SavedSearch)
def get_saved(audit: ReadingSaved, saved: SavedDep, name: str) -> SavedSearch:
    audit.target = f"saved-search:{name}"
    return saved.get(_owner(audit), name)


@router.delete("/{name}", status_code=204)
def delete_saved(audit: ChangingSaved, saved: SavedDep, name: str) -> Response:
    audit.target, audit.details["deleted"] = f"saved-search:{name}", True
    saved.delete(_owner(audit), name)
    return Response(status_code=204)
