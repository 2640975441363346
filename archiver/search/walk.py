"""Walking every message of a query in id order from one point in time (search_after): the
archive-wide jobs (re-tagging, recomputing retention, previews, disposition) all page this way,
so a walk can stop after any batch and resume after its last id."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from archiver.ports import SearchIndex

PIT_KEEP_ALIVE = "5m"


def walk_hits(
    index: SearchIndex,
    fields: Sequence[str],
    batch_size: int,
    after: str | None = None,
    query: Mapping[str, Any] | None = None,
    named: Sequence[Mapping[str, Any]] = (),
) -> Iterator[list[dict[str, Any]]]:
    """The hits of `query` (every message when None) in id order, batch by batch, starting
    after the given id; each hit as Elasticsearch gives it (_id, _source, and the `named`
    clauses it matched in matched_queries: they report, they do not filter)."""
    filters: list[Any] = [dict(query)] if query else []
    if after:
        filters.append({"range": {"id": {"gt": after}}})
    body_query: dict[str, Any] = {
        "bool": {
            "filter": filters or [{"match_all": {}}],
            "should": [dict(n) for n in named],
            "minimum_should_match": 0,
        }
    }
    index.refresh()  # see every write made so far (the last job's included)
    pit = index.open_pit(PIT_KEEP_ALIVE)
    abandoned = False
    try:
        cursor: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "query": body_query,
                "pit": {"id": pit, "keep_alive": PIT_KEEP_ALIVE},
                "sort": [{"id": "asc"}],
                "size": batch_size,
                "source_includes": list(fields),
                "track_total_hits": False,
            }
            if cursor:
                body["search_after"] = cursor
            response = index.search(body)
            pit = response.get("pit_id", pit)
            hits = response["hits"]["hits"]
            if not hits:
                return
            yield hits
            cursor = hits[-1]["sort"]
    except GeneratorExit:
        # A consumer stopped early. The generator may be closed by the cyclic garbage collector,
        # in the middle of any other request of this thread: a request from here could wait
        # forever for a connection of the pool that request holds. The point in time expires
        # by its keep-alive instead.
        abandoned = True
        raise
    finally:
        if not abandoned:
            index.close_pit(pit)
