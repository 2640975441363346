"""The audit log's search copy, indexed off the request path.

A record is durable once it is in S3; its Elasticsearch copy is for searching and may trail it
(`mailvault audit reindex` rebuilds it from S3). Indexing each record while the request waits
would add an Elasticsearch round trip to every audited request, so records are queued here and
a background thread indexes them in batches. A search first waits for what is queued, so an
auditor never misses a record the log already holds, except one whose indexing failed (logged,
and found again by reindex).
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from archiver.ports import AuditIndex, Document

log = logging.getLogger(__name__)
_BATCH = 500


class QueuedAuditIndex:
    """An AuditIndex whose index_records returns at once; a daemon thread does the indexing."""

    def __init__(self, index: AuditIndex, max_queued: int = 100_000, linger: float = 0.25) -> None:
        self._index = index
        self.linger = linger
        self._flushing = threading.Event()
        # bounded: if Elasticsearch stalls for long, requests wait here rather than memory grow
        self._queue: queue.Queue[Document] = queue.Queue(max_queued)
        self._thread: threading.Thread | None = None
        self._started = threading.Lock()

    def ensure_ready(self) -> None:
        self._index.ensure_ready()

    def index_records(self, docs: Sequence[Document]) -> None:
        self._start()
        for doc in docs:
            self._queue.put(doc)

    def flush(self) -> None:
        """Return once every record queued so far has been indexed (or failed to be)."""
        if self._thread is not None:
            self._flushing.set()  # no lingering while someone waits
            try:
                self._queue.join()
            finally:
                self._flushing.clear()

    def search(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        if self._thread is not None and self._queue.unfinished_tasks:
            self.flush()
            self._index.refresh()
        return self._index.search(body)

    def refresh(self) -> None:
        self.flush()
        self._index.refresh()

    def _start(self) -> None:
        with self._started:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-indexer", daemon=True)
                self._thread.start()
                # a short-lived process (the CLI) indexes what it recorded before it exits
                atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            # linger a moment for more: one bulk request for the records of many requests
            # costs Elasticsearch far less than one each, on a machine that also searches
            until = time.monotonic() + self.linger
            while len(batch) < _BATCH and (left := until - time.monotonic()) > 0:
                if self._flushing.is_set():
                    left = 0.0
                try:
                    batch.append(
                        self._queue.get(timeout=left) if left else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
            try:
                self._index.index_records(batch)
            except Exception as exc:  # the thread must outlive any one failure
                log.warning(
                    "audit records %s not indexed (mailvault audit reindex): %s",
                    [d.get("seq") for d in batch],
                    exc,
                )
            finally:
                for _ in batch:
                    self._queue.task_done()
