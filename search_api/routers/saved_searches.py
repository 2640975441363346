from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from archiver.ports import JsonStore
from archiver.search.saved import SavedSearch, SavedSearches, SavedSearchIn
from search_api.deps import get_json_store

router = APIRouter(prefix="/api/saved-searches", tags=["saved searches"])


def get_saved_searches(store: Annotated[JsonStore, Depends(get_json_store)]) -> SavedSearches:
    return SavedSearches(store)


SavedDep = Annotated[SavedSearches, Depends(get_saved_searches)]


@router.put("", response_model=SavedSearch)
def save(saved: SavedDep, search: SavedSearchIn) -> SavedSearch:
    """Create or replace a saved search; its query is checked first (400 when invalid)."""
    return saved.save(search)


@router.get("", response_model=list[SavedSearch])
def list_saved(saved: SavedDep, owner: Annotated[str, Query(min_length=1)]) -> list[SavedSearch]:
    return saved.list(owner)


@router.get("/{owner}/{name}", response_model=SavedSearch)
def get_saved(saved: SavedDep, owner: str, name: str) -> SavedSearch:
    return saved.get(owner, name)


@router.delete("/{owner}/{name}", status_code=204)
def delete_saved(saved: SavedDep, owner: str, name: str) -> Response:
    saved.delete(owner, name)
    return Response(status_code=204)
