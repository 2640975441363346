"""The one place where what a principal may read is enforced: a SearchIndex seen through a Scope.

Every read of mail on behalf of a person goes through a ScopedIndex: searches, facets, counts,
cursor walks, threads, the message view, tags of a message, raw downloads (which first ask it
whether the message is visible), saved searches when they run, and later exports. Searches get
the scope as a filter clause around their query, so hits, totals and every aggregation count
only what the principal may see; reads by id answer None for a message out of scope, exactly as
for one that does not exist, so a caller cannot tell the two apart (the API answers 404 for both).

Writes are not part of reading: the archive's own jobs use the unscoped index.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from archiver.access.model import Scope
from archiver.ports import Document, SearchIndex

_TAGS = "tags"


def scope_filter(scope: Scope) -> dict[str, Any] | None:
    """The Elasticsearch filter clause of a scope; None when the scope is the whole archive."""
    if scope.everything:
        return None
    if scope.nothing:
        return {"match_none": {}}
    return {"terms": {_TAGS: sorted(scope.tags)}}


def admits(scope: Scope, doc: Mapping[str, Any]) -> bool:
    """Whether a stored document is in scope; the same rule as scope_filter's terms clause."""
    if scope.everything:
        return True
    return bool(scope.tags.intersection(doc.get(_TAGS) or ()))


def _scoped_query(query: Mapping[str, Any] | None, clause: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"must": [dict(query) if query else {"match_all": {}}], "filter": [clause]}}


class ScopedIndex:
    """A SearchIndex that shows only the documents of a scope (a SearchIndex itself)."""

    def __init__(self, index: SearchIndex, scope: Scope) -> None:
        self._index = index
        self.scope = scope
        self._filter = scope_filter(scope)

    # -- reading ----------------------------------------------------------------------------

    def search(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        if self._filter is None:
            return self._index.search(body)
        scoped = {**body, "query": _scoped_query(body.get("query"), self._filter)}
        return self._index.search(scoped)

    def get(self, doc_id: str) -> Document | None:
        doc = self._index.get(doc_id)
        return doc if doc is not None and admits(self.scope, doc) else None

    def get_many(self, ids: Iterable[str], fields: Sequence[str]) -> dict[str, Document]:
        if self.scope.everything:
            return self._index.get_many(ids, fields)
        found = self._index.get_many(ids, [*fields, _TAGS])
        keep_tags = _TAGS in fields
        return {
            doc_id: doc if keep_tags else {k: v for k, v in doc.items() if k != _TAGS}
            for doc_id, doc in found.items()
            if admits(self.scope, doc)
        }

    def ids_by_message_id(self, message_ids: Iterable[str]) -> dict[str, list[str]]:
        found = self._index.ids_by_message_id(message_ids)
        if self.scope.everything:
            return found
        visible = set(self.get_many({i for ids in found.values() for i in ids}, [_TAGS]))
        return {
            message_id: kept
            for message_id, ids in found.items()
            if (kept := [i for i in ids if i in visible])
        }

    def scan(
        self, query: Mapping[str, Any], fields: Sequence[str], batch_size: int = 1000
    ) -> Iterator[list[Document]]:
        if self._filter is None:
            return self._index.scan(query, fields, batch_size)
        return self._index.scan(_scoped_query(query, self._filter), fields, batch_size)

    def exists(self, doc_id: str) -> bool:
        """Whether the message is indexed and in scope (a raw download asks this first)."""
        return bool(self.get_many([doc_id], [_TAGS]))

    # -- points in time, health: no documents pass, nothing to filter -----------------------

    def open_pit(self, keep_alive: str = "5m") -> str:
        return self._index.open_pit(keep_alive)

    def close_pit(self, pit: str) -> None:
        self._index.close_pit(pit)

    def health(self) -> dict[str, Any]:
        return self._index.health()

    def ensure_ready(self) -> None:
        self._index.ensure_ready()

    def refresh(self) -> None:
        self._index.refresh()

    # -- writing: only a person's own tag changes, on a message they could read first --------

    def update_many(self, updates: Mapping[str, Document]) -> dict[str, str | None]:
        visible = set(self.get_many(updates, [_TAGS]))
        hidden = {doc_id: "not found" for doc_id in updates if doc_id not in visible}
        done = self._index.update_many({k: v for k, v in updates.items() if k in visible})
        return {**hidden, **done}

    def create_many(self, docs: Sequence[Document]) -> dict[str, str | None]:
        raise TypeError("a ScopedIndex reads on behalf of a person; the pipeline creates documents")

    def delete_many(self, ids: Sequence[str]) -> dict[str, str | None]:
        raise TypeError("a ScopedIndex reads on behalf of a person; disposition deletes")

    def pause_refresh(self) -> None:
        raise TypeError("a ScopedIndex reads on behalf of a person; imports pause refreshes")

    def resume_refresh(self) -> None:
        raise TypeError("a ScopedIndex reads on behalf of a person; imports resume refreshes")
