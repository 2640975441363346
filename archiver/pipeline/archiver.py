"""The archive pipeline: store durably, then parse, segment and index.

Order matters for evidence: nothing is indexed that is not stored, and a stored message that cannot
be parsed is indexed with a parse_error rather than dropped.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Protocol

from archiver.errors import BackendFailed, MailvaultError
from archiver.mime.attachments import DEFAULT_LIMITS, ExtractLimits
from archiver.models import IngestOutcome, Source
from archiver.pipeline.documents import (
    analyse,
    analyse_many,
    fallback_document,
    merge_sources,
    with_participants,
)
from archiver.ports import Document, RawStore, SearchIndex

log = logging.getLogger(__name__)

# Tags (and topics) new documents before they are indexed; see archiver/tagging/service.py.
Tagger = Callable[[list[Document]], list[Document]]


class RetentionHook(Protocol):
    """Decides new mail's retention and holds (archiver/retention/service.py): `prepare` before
    the documents are indexed, `settle` after, once they are searchable."""

    def prepare(self, docs: list[Document]) -> list[Document]: ...

    def settle(self, ids: Sequence[str]) -> object: ...

    def store_locks(self) -> LockPlan | None: ...


# How long a new message is locked from its first PUT, given its document (None: not locked).
LockPlan = Callable[[Document], datetime | None]


_MERGE_ATTEMPTS = 5
_ANALYSIS_CHUNK = 8  # messages per analyser task


@dataclass
class Incoming:
    """A message offered to the archive, not yet stored."""

    raw: bytes
    source: Source
    label: str = ""


@dataclass
class _InFlight:
    """A batch begun (looked up, being analysed and stored) but not yet indexed."""

    items: Sequence[Incoming]
    batch: list[Stored]
    existing: dict[str, Document]
    pending: dict[str, Future[Document]]
    stores: list[tuple[Incoming, Future[Stored]]]


@dataclass
class Stored:
    """A message whose bytes (and sources) are durably stored."""

    sha256: str
    raw: bytes
    sources: list[Source]
    label: str = ""
    arrival: datetime = field(default_factory=lambda: datetime.now(UTC))
    lock_until: datetime | None = None  # the retention its first PUT set, when it set one


class Archiver:
    def __init__(
        self,
        store: RawStore,
        index: SearchIndex,
        *,
        user_dict: Path | None = None,
        max_body_chars: int = 2_000_000,
        extract_limits: ExtractLimits | None = DEFAULT_LIMITS,
        analysers: Callable[[], Executor] | None = None,
        store_threads: int = 16,
        tagger: Tagger | None = None,
        retention: RetentionHook | None = None,
    ) -> None:
        self.store = store
        self.tagger = tagger
        self.retention = retention
        self.index = index
        self.user_dict = user_dict
        self.max_body_chars = max_body_chars
        self.extract_limits = extract_limits
        self._new_pool = analysers
        self._pool: Executor | None = None
        self._store_pool = ThreadPoolExecutor(max_workers=store_threads)

    def with_index(self, index: SearchIndex) -> Archiver:
        """The same pipeline writing to another index (a rebuild's new one); it shares this
        one's pools, so only this one is closed."""
        if self._new_pool is not None:
            self._working_pool()  # made now, so that the twin shares it
        twin = copy.copy(self)
        twin.index = index
        return twin

    def close(self) -> None:
        self._store_pool.shutdown(wait=True)
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    # -- storing -----------------------------------------------------------------------------

    def accept(self, raw: bytes, source: Source) -> str:
        """Durably store one message; raises BackendUnavailable when that is not possible."""
        sha256, _ = self.store.put(raw, source)
        return sha256

    @staticmethod
    def _stored(
        futures: list[tuple[Incoming, Future[Stored]]],
    ) -> tuple[list[Stored], list[IngestOutcome]]:
        stored: list[Stored] = []
        failed: list[IngestOutcome] = []
        for item, future in futures:
            try:
                stored.append(future.result())
            except MailvaultError as exc:
                failed.append(
                    IngestOutcome(
                        sha256=None,
                        status="failed",
                        label=item.label,
                        error=str(exc),
                        retryable=not isinstance(exc, BackendFailed),
                    )
                )
        return stored, failed

    # -- indexing ----------------------------------------------------------------------------

    def ingest_many(self, items: Sequence[Incoming]) -> list[IngestOutcome]:
        """Store and index a batch, parsing new messages while their bytes are being stored."""
        return self._finish(self._begin(items))

    def ingest_stream(self, batches: Iterable[Sequence[Incoming]]) -> Iterator[list[IngestOutcome]]:
        """Outcomes batch by batch, the next batch being parsed and stored while this one is
        indexed, so neither the CPU nor the backends wait for each other."""
        in_flight: _InFlight | None = None
        for items in batches:
            started = self._begin(items)
            if in_flight is not None:
                yield self._finish(in_flight)
            in_flight = started
        if in_flight is not None:
            yield self._finish(in_flight)

    def _begin(self, items: Sequence[Incoming]) -> _InFlight:
        batch = _merge_same_bytes(
            Stored(
                hashlib.sha256(i.raw).hexdigest(), i.raw, [i.source], i.label, i.source.received_at
            )
            for i in items
        )
        existing = self.index.get_many([s.sha256 for s in batch], ["sources"])
        pending = self._analyse_all([s for s in batch if s.sha256 not in existing])
        plan = self.retention.store_locks() if self.retention is not None and pending else None
        # one store per message, its sources in turn: stored side by side, two deliveries of
        # the same bytes would both find it missing and one source would overwrite the other
        stores = [
            (
                Incoming(s.raw, s.sources[0], s.label),
                self._store_pool.submit(self._accept_all, s, pending.get(s.sha256), plan),
            )
            for s in batch
        ]
        return _InFlight(items, batch, existing, pending, stores)

    def _accept_all(
        self, item: Stored, analysis: Future[Document] | None, plan: LockPlan | None
    ) -> Stored:
        """Store the message with each of its sources. With a lock plan, a new message waits
        for its analysis and is locked by its first PUT (one request where three were sent)."""
        until = self._planned_lock(item, analysis, plan)
        created_until = None
        for number, source in enumerate(item.sources):
            _, created = self.store.put(
                item.raw, source, retain_until=until if number == 0 else None
            )
            if created and number == 0:
                created_until = until
        return replace(item, lock_until=created_until)

    @staticmethod
    def _planned_lock(
        item: Stored, analysis: Future[Document] | None, plan: LockPlan | None
    ) -> datetime | None:
        if plan is None or analysis is None:
            return None
        try:
            doc = analysis.result()
        except Exception:  # a dead analyser: stored unlocked now, locked by prepare or the sweep
            return None
        return plan(with_participants(doc, item.sources))

    def _finish(self, flight: _InFlight) -> list[IngestOutcome]:
        stored, failed = self._stored(flight.stores)
        outcomes = failed + self._index(stored, flight.existing, flight.pending)
        return outcomes + _repeat_duplicates(flight.items, flight.batch)

    def index_stored(self, items: Sequence[Stored]) -> list[IngestOutcome]:
        """Index messages already in the raw store (the Celery task and the reconciler)."""
        batch = _merge_same_bytes(items)
        existing = self.index.get_many([s.sha256 for s in batch], ["sources"])
        pending = self._analyse_all([s for s in batch if s.sha256 not in existing])
        return self._index(batch, existing, pending)

    def archive_stored(self, sha256: str) -> IngestOutcome:
        """Index one stored message with every source recorded for it."""
        raw = self.store.get(sha256)
        sources = [r.source for r in self.store.records(sha256)]
        arrival = sources[0].received_at if sources else datetime.now(UTC)
        return self.index_stored([Stored(sha256, raw, sources, sha256, arrival)])[0]

    def _analyse_all(self, items: Sequence[Stored]) -> dict[str, Future[Document]]:
        """A future per message; the analysers take them a few at a time, so the queue round
        trips, locks and pickling of a task are paid once for several messages (per message
        they cost the analysers a fifth of their CPU)."""
        if self._new_pool is None:
            return {item.sha256: self._analyse_later(item) for item in items}
        futures: dict[str, Future[Document]] = {}
        for start in range(0, len(items), _ANALYSIS_CHUNK):
            chunk = items[start : start + _ANALYSIS_CHUNK]
            mine: list[Future[Document]] = [Future() for _ in chunk]
            whole = self._working_pool().submit(
                analyse_many,
                [(i.sha256, i.raw, i.arrival) for i in chunk],
                self.user_dict,
                self.max_body_chars,
                self.extract_limits,
            )
            whole.add_done_callback(partial(_hand_out, mine))
            futures.update((i.sha256, f) for i, f in zip(chunk, mine, strict=True))
        return futures

    def _analyse_later(self, item: Stored) -> Future[Document]:
        args = (
            item.sha256,
            item.raw,
            item.arrival,
            self.user_dict,
            self.max_body_chars,
            self.extract_limits,
        )
        if self._new_pool is None:
            done: Future[Document] = Future()
            done.set_result(analyse(*args))
            return done
        return self._working_pool().submit(analyse, *args)

    def _working_pool(self) -> Executor:
        assert self._new_pool is not None
        if self._pool is not None:
            try:
                self._pool.submit(int)  # raises at once when a worker of this pool has died
                return self._pool
            except BrokenProcessPool:
                self._pool.shutdown(wait=False)
        self._pool = self._new_pool()
        return self._pool

    def _analysis(self, item: Stored, pending: Future[Document]) -> Document:
        """The document, even when a worker process died (a crash in a parser library, memory):
        the batch's other messages are analysed again, one at a time in a fresh pool, and the
        message that kills its worker again is indexed bare with the reason."""
        try:
            return pending.result()
        except BrokenProcessPool:
            log.error("analyser process died; retrying alone", extra={"sha256": item.sha256})
        try:
            return self._analyse_later(item).result()
        except BrokenProcessPool:
            return fallback_document(
                item.sha256, len(item.raw), "analysis crashed its worker process", item.arrival
            )

    def _document(self, item: Stored, pending: Future[Document]) -> Document:
        doc = with_participants(self._analysis(item, pending), item.sources)
        if item.lock_until is not None:  # what the storage enforces, as prepare records it
            doc["lock_until"] = item.lock_until.isoformat()
        return doc

    def _index(
        self,
        batch: Sequence[Stored],
        existing: dict[str, Document],
        pending: dict[str, Future[Document]],
    ) -> list[IngestOutcome]:
        outcomes: list[IngestOutcome] = []
        duplicates = [s for s in batch if s.sha256 in existing]
        new = [s for s in batch if s.sha256 not in existing]
        docs = {s.sha256: self._document(s, pending[s.sha256]) for s in new}
        if self.tagger is not None and docs:
            docs = {d["id"]: d for d in self.tagger(list(docs.values()))}
        if self.retention is not None and docs:
            docs = {d["id"]: d for d in self.retention.prepare(list(docs.values()))}
        statuses = self.index.create_many(list(docs.values()))
        for item in new:
            status = statuses.get(item.sha256, "not indexed")
            if status == "exists":  # indexed concurrently by another worker
                duplicates.append(item)
                continue
            if status is not None:
                status = self._index_fallback(item, status)
            outcomes.append(
                IngestOutcome(
                    sha256=item.sha256,
                    status="imported" if status is None else "failed",
                    label=item.label,
                    error=status,
                    parse_error=docs[item.sha256].get("parse_error"),
                )
            )
        outcomes += self._add_sources(duplicates)
        self._settle([o.sha256 for o in outcomes if o.status == "imported" and o.sha256])
        return outcomes

    def _settle(self, ids: list[str]) -> None:
        """Decide retention and holds of what was just indexed. Mail already stored and
        indexed is never failed for this: what cannot be decided now stays pending, and the
        retention sweep (archiver/retention/recompute.py) decides it; meanwhile nothing can
        delete it (disposition only takes decided mail)."""
        if self.retention is None or not ids:
            return
        try:
            self.retention.settle(ids)
        except MailvaultError as exc:
            log.warning("retention left pending", extra={"messages": len(ids), "error": str(exc)})

    def _index_fallback(self, item: Stored, error: str) -> str | None:
        """Elasticsearch rejected the document: index the bare message so it stays findable."""
        log.warning("index rejected document", extra={"sha256": item.sha256, "error": error})
        doc = fallback_document(
            item.sha256, len(item.raw), f"index rejected: {error}", item.arrival
        )
        status = self.index.create_many([with_participants(doc, item.sources)])[item.sha256]
        return None if status in (None, "exists") else status

    def _add_sources(self, duplicates: Sequence[Stored]) -> list[IngestOutcome]:
        """Record new sources of already-indexed messages (optimistic concurrency, retried)."""
        todo = {d.sha256: d for d in duplicates}
        errors: dict[str, str] = {}
        for _ in range(_MERGE_ATTEMPTS):
            if not todo:
                break
            current = self.index.get_many(todo, ["sources", "participants"])
            updates: dict[str, Document] = {}
            for sha256, doc in current.items():
                known = [Source.model_validate(s) for s in doc.get("sources", [])]
                merged = merge_sources(known, todo[sha256].sources)
                if merged is not None:
                    # a new delivery's envelope may name a BCC recipient the document lacks
                    kept = {"participants": doc.get("participants", [])}
                    updates[sha256] = {
                        **with_participants(kept, merged),
                        "_version_token": doc["_version_token"],
                    }
            results = self.index.update_many(updates)
            retry = {k for k, v in results.items() if v == "conflict"}
            errors.update({k: v for k, v in results.items() if v and v != "conflict"})
            todo = {k: v for k, v in todo.items() if k in retry}
        errors.update({k: "concurrent updates kept conflicting" for k in todo})
        return [
            IngestOutcome(
                sha256=d.sha256,
                status="failed" if d.sha256 in errors else "duplicate",
                label=d.label,
                error=errors.get(d.sha256),
            )
            for d in duplicates
        ]


def _hand_out(futures: Sequence[Future[Document]], whole: Future[list[Document]]) -> None:
    """A chunk's documents to its messages' futures, or its failure (a dead analyser) to each."""
    error = whole.exception()
    if error is not None:
        for future in futures:
            future.set_exception(error)
        return
    for future, doc in zip(futures, whole.result(), strict=True):
        future.set_result(doc)


def _merge_same_bytes(items: Iterable[Stored]) -> list[Stored]:
    merged: dict[str, Stored] = {}
    for item in items:
        if item.sha256 in merged:
            merged[item.sha256].sources.extend(item.sources)
        else:
            merged[item.sha256] = Stored(
                item.sha256, item.raw, list(item.sources), item.label, item.arrival
            )
    return list(merged.values())


def _repeat_duplicates(items: Sequence[Incoming], batch: Sequence[Stored]) -> list[IngestOutcome]:
    """Same bytes offered twice in one batch: the second and later copies are duplicates."""
    extra = len(items) - len(batch)
    if extra <= 0:
        return []
    seen: set[str] = set()
    repeats: list[IngestOutcome] = []
    for item in items:
        sha256 = hashlib.sha256(item.raw).hexdigest()
        if sha256 in seen:
            repeats.append(IngestOutcome(sha256=sha256, status="duplicate", label=item.label))
        seen.add(sha256)
    return repeats
