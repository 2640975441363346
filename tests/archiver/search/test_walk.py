"""Walking a query from one point in time: the point is closed when the walk ends or fails, and
left to expire when a consumer abandons the walk (its generator may then be closed by the garbage
collector, in the middle of another request, where a request of its own could wait forever)."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from archiver.errors import BackendUnavailable
from archiver.search.walk import walk_hits


class PagedIndex:
    """Just the calls a walk makes: `pages` batches of two hits, then an empty page."""

    def __init__(self, pages: int, fail_at: int | None = None) -> None:
        self.pages = pages
        self.fail_at = fail_at
        self.searches = 0
        self.closed: list[str] = []

    def refresh(self) -> None:
        pass

    def open_pit(self, keep_alive: str) -> str:
        return "pit-1"

    def close_pit(self, pit: str) -> None:
        self.closed.append(pit)

    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        self.searches += 1
        if self.searches == self.fail_at:
            raise BackendUnavailable("elasticsearch", "gone")
        n = self.searches
        hits = (
            [{"_id": f"{n}-{i}", "sort": [f"{n}-{i}"]} for i in range(2)] if n <= self.pages else []
        )
        return {"pit_id": "pit-1", "hits": {"hits": hits}}


@pytest.mark.parametrize("pages", [0, 1, 3])
def test_a_finished_walk_closes_its_point_in_time(pages: int) -> None:
    index = PagedIndex(pages)
    batches = list(walk_hits(index, ["id"], 2))  # type: ignore[arg-type]
    assert len(batches) == pages and index.closed == ["pit-1"]


def test_a_failed_walk_closes_its_point_in_time() -> None:
    index = PagedIndex(3, fail_at=2)
    with pytest.raises(BackendUnavailable):
        list(walk_hits(index, ["id"], 2))  # type: ignore[arg-type]
    assert index.closed == ["pit-1"]


def test_an_abandoned_walk_sends_no_request_when_it_is_collected() -> None:
    index = PagedIndex(5)
    walk = walk_hits(index, ["id"], 2)  # type: ignore[arg-type]
    assert len(next(walk)) == 2
    searches = index.searches
    del walk
    gc.collect()
    assert index.closed == [] and index.searches == searches
