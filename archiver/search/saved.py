"""Saved searches: a named query per owner, kept in the archive's own backends."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from pydantic import BaseModel, Field

from archiver.errors import SavedSearchNotFound
from archiver.ports import JsonStore
from archiver.search.query.parser import parse_query

PREFIX = "saved-searches/"


class SavedSearchIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    query: str = Field(max_length=10_000)
    owner: str = Field(min_length=1, max_length=200)


class SavedSearch(SavedSearchIn):
    created_at: datetime
    updated_at: datetime


def _key(owner: str, name: str) -> str:
    return f"{PREFIX}{quote(owner, safe='')}/{quote(name, safe='')}"


class SavedSearches:
    def __init__(self, store: JsonStore) -> None:
        self.store = store

    def save(self, search: SavedSearchIn) -> SavedSearch:
        """Create or replace; an invalid query is rejected (InvalidQuery) before anything is
        stored."""
        parse_query(search.query)
        now = datetime.now(UTC)
        existing = self.store.get_json(_key(search.owner, search.name))
        created = SavedSearch.model_validate(existing).created_at if existing else now
        saved = SavedSearch(**search.model_dump(), created_at=created, updated_at=now)
        self.store.put_json(_key(search.owner, search.name), saved.model_dump(mode="json"))
        return saved

    def get(self, owner: str, name: str) -> SavedSearch:
        value = self.store.get_json(_key(owner, name))
        if value is None:
            raise SavedSearchNotFound(owner, name)
        return SavedSearch.model_validate(value)

    def list(self, owner: str) -> list[SavedSearch]:
        keys = self.store.list_keys(f"{PREFIX}{quote(owner, safe='')}/")
        found = (self.store.get_json(k) for k in keys)
        return [SavedSearch.model_validate(v) for v in found if v is not None]

    def delete(self, owner: str, name: str) -> None:
        self.get(owner, name)
        self.store.delete(_key(owner, name))
