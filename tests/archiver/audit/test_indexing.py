"""The queued search copy: records reach the index in the background, a search waits for them,
and a failing index neither loses the thread nor fails the caller (no services)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from archiver.audit.indexing import QueuedAuditIndex
from archiver.errors import BackendUnavailable
from archiver.ports import Document


class SlowIndex:
    """Holds every index_records call until released; fails the first `failures` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.docs: list[Document] = []
        self.release = threading.Event()
        self.failures = failures
        self.refreshed = 0

    def ensure_ready(self) -> None: ...

    def index_records(self, docs: Sequence[Document]) -> None:
        self.release.wait()
        if self.failures:
            self.failures -= 1
            raise BackendUnavailable("elasticsearch", "injected")
        self.docs += docs

    def search(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"hits": {"total": {"value": len(self.docs)}, "hits": []}}

    def refresh(self) -> None:
        self.refreshed += 1


def test_records_are_indexed_off_the_callers_thread_and_searches_wait_for_them() -> None:
    slow = SlowIndex()
    queued = QueuedAuditIndex(slow)
    queued.index_records([{"seq": 1}, {"seq": 2}])  # returns although the index is stalled
    assert slow.docs == []
    slow.release.set()
    assert queued.search({})["hits"]["total"]["value"] == 2
    assert slow.refreshed == 1
    assert [d["seq"] for d in slow.docs] == [1, 2]


def test_a_failing_index_loses_those_records_from_the_copy_only_and_keeps_going() -> None:
    slow = SlowIndex(failures=1)
    slow.release.set()
    queued = QueuedAuditIndex(slow)
    queued.index_records([{"seq": 1}])
    queued.flush()
    queued.index_records([{"seq": 2}])
    queued.flush()
    assert [d["seq"] for d in slow.docs] == [2]  # reindex from S3 brings 1 back
