"""Stored but not yet indexed: the pending marks that make indexing survive any queue loss.

Whoever accepts a message for later indexing (the SMTP sink) stores it and writes a pending mark
before confirming; the mark is cleared only once the message is indexed with all its sources.
The Celery task is the fast path; the reconciler walks the marks left behind (Redis or
Elasticsearch was down, a worker died, the task gave up) and indexes those messages. Indexing
is idempotent (the document id is the SHA-256), so a message seen by both is one document.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice

from pydantic import BaseModel, Field

from archiver.errors import MailvaultError, MessageNotFound
from archiver.failures import FailureLog
from archiver.models import IngestOutcome, PendingMark, Source, TaskFailure
from archiver.pipeline import Archiver, Stored

log = logging.getLogger(__name__)

RECONCILE_TASK = "reconcile"
# A mark is written alongside the bytes (not after them, to save a round trip before the 250),
# so a delivery whose store failed (answered 451) can leave a mark without a message. Far older
# than any store can take, such a mark is dropped; the sender's retry writes its own.
ORPHAN_AGE = timedelta(minutes=15)
_READ_THREADS = 16


class ReconcileSummary(BaseModel):
    pending: int = 0  # messages with marks old enough to reconcile
    indexed: int = 0
    duplicates: int = 0  # already indexed (the task got there first); sources merged
    failed: int = 0
    orphans: int = 0  # marks of deliveries that were never stored (answered 451), dropped
    errors: list[dict[str, str]] = Field(default_factory=list)

    def add(self, outcome: IngestOutcome) -> None:
        if outcome.status == "imported":
            self.indexed += 1
        elif outcome.status == "duplicate":
            self.duplicates += 1
        else:
            self.failed += 1
            self.errors.append({"sha256": outcome.sha256 or "", "error": outcome.error or ""})


def accept_for_indexing(
    archiver: Archiver, raw: bytes, source: Source, pool: Executor | None = None
) -> str:
    """Durably store a message and mark it pending; raises BackendUnavailable otherwise.

    With a pool the mark is written while the bytes are: one round trip less before the
    caller confirms. Either failing means the caller must not confirm; a mark left without its
    message is harmless (the reconciler drops it once it is ORPHAN_AGE old)."""
    if pool is None:
        sha256 = archiver.accept(raw, source)
        archiver.store.mark_pending(sha256)
        return sha256
    mark = pool.submit(archiver.store.mark_pending, hashlib.sha256(raw).hexdigest())
    try:
        sha256 = archiver.accept(raw, source)
    finally:
        error = mark.exception()  # wait for it either way: no write outlives the answer
    if error is not None:
        raise error
    return sha256


def index_pending(archiver: Archiver, sha256: str) -> IngestOutcome:
    """Index one stored message and clear the marks that existed before it was read.

    Marks are listed first: a delivery marked later may have a source this run did not see, so
    its mark stays for the next run."""
    marks = archiver.store.pending_marks(sha256)
    outcome = archiver.archive_stored(sha256)
    if outcome.status != "failed" and marks:
        archiver.store.clear_pending(marks)
    return outcome


def index_pending_many(archiver: Archiver, shas: Iterable[str]) -> ReconcileSummary:
    """index_pending for a batch: parallel S3 reads, one analysis batch, one bulk request to
    the index and one request clearing the marks (the Celery fast path, archive_batch)."""
    wanted = list(dict.fromkeys(shas))
    summary = ReconcileSummary(pending=len(wanted))
    _reconcile_batch(archiver, {s: [] for s in wanted}, summary, None, list_marks=True)
    return summary


def reconcile(
    archiver: Archiver,
    *,
    min_age: timedelta = timedelta(0),
    batch_size: int = 200,
    failures: FailureLog | None = None,
    now: datetime | None = None,
) -> ReconcileSummary:
    """Index every message with a pending mark older than min_age (younger ones are left to
    the Celery task, to avoid doing the work twice)."""
    now = now or datetime.now(UTC)
    cutoff = now - min_age
    by_sha: dict[str, list[PendingMark]] = defaultdict(list)
    for mark in archiver.store.pending():
        if mark.marked_at <= cutoff:
            by_sha[mark.sha256].append(mark)
    summary = ReconcileSummary(pending=len(by_sha))
    for batch in _batches(list(by_sha), batch_size):
        _reconcile_batch(archiver, {s: by_sha[s] for s in batch}, summary, failures, now=now)
    log.info("reconciled", extra=summary.model_dump(exclude={"errors"}))
    return summary


def reconcile_all(
    archiver: Archiver, *, batch_size: int = 500, failures: FailureLog | None = None
) -> ReconcileSummary:
    """Full check, marks or not: every stored message missing from the index is indexed.

    Lists the whole archive, so it is for recovery (messages stored by something that writes no
    marks, or marks lost), not for the schedule."""
    summary = ReconcileSummary()
    for batch in _batches(archiver.store.iter_ids(), batch_size):
        known = archiver.index.get_many(batch, ["id"])
        missing: dict[str, list[PendingMark]] = {s: [] for s in batch if s not in known}
        summary.pending += len(missing)
        if missing:
            _reconcile_batch(archiver, missing, summary, failures)
    log.info("reconciled the whole archive", extra=summary.model_dump(exclude={"errors"}))
    return summary


def _reconcile_batch(
    archiver: Archiver,
    marks: dict[str, list[PendingMark]],
    summary: ReconcileSummary,
    failures: FailureLog | None,
    *,
    list_marks: bool = False,
    now: datetime | None = None,
) -> None:
    """Index a batch and clear its marks. With list_marks, each message's marks are listed
    (before its sources are read) instead of taken from `marks`."""
    read = _read_all(archiver, marks, list_marks, now or datetime.now(UTC))
    outcomes = [r.outcome for r in read if r.outcome is not None]
    loaded = [r.stored for r in read if r.stored is not None]
    if loaded:
        outcomes += archiver.index_stored(loaded)
    orphans = [r for r in read if r.orphan]
    if orphans:
        log.warning(
            "dropped marks of deliveries never stored (answered 451)",
            extra={"sha256s": [r.sha256 for r in orphans][:20], "count": len(orphans)},
        )
    done = [m for r in orphans for m in r.marks]
    summary.orphans += len(orphans)
    marks_of = {r.sha256: r.marks for r in read}
    for outcome in outcomes:
        summary.add(outcome)
        sha256 = outcome.sha256 or ""
        if outcome.status != "failed":
            done += marks_of.get(sha256, [])
        elif failures is not None:
            failures.record_safely(
                TaskFailure(
                    sha256=sha256,
                    task=RECONCILE_TASK,
                    error=outcome.error or "",
                    failed_at=datetime.now(UTC),
                )
            )
    if done:
        archiver.store.clear_pending(done)


@dataclass
class _Read:
    """One message of a batch as read from S3: loaded, failed, or not stored at all."""

    sha256: str
    marks: list[PendingMark] = field(default_factory=list)
    stored: Stored | None = None
    outcome: IngestOutcome | None = None  # a failure to read it
    orphan: bool = False  # marked, bytes never stored, marks older than ORPHAN_AGE


def _read_all(
    archiver: Archiver, marks: dict[str, list[PendingMark]], list_marks: bool, now: datetime
) -> list[_Read]:
    """Read the bytes and every source record of each message (S3 round trips, in parallel)."""

    def read(sha256: str) -> _Read:
        found = _Read(sha256, marks.get(sha256, []))
        try:
            if list_marks:  # before the sources: a mark made later stays for the next run
                found.marks = archiver.store.pending_marks(sha256)
            raw = archiver.store.get(sha256)
            sources = [r.source for r in archiver.store.records(sha256)]
        except MessageNotFound:  # not stored (yet: the mark is written alongside the bytes)
            oldest = min((m.marked_at for m in found.marks), default=None)
            found.orphan = oldest is not None and oldest < now - ORPHAN_AGE
            if not found.marks:  # asked for by id and neither stored nor marked
                found.outcome = _failed(sha256, f"no archived message with id {sha256}")
            return found
        except MailvaultError as exc:
            found.outcome = _failed(sha256, str(exc))
            return found
        arrival = sources[0].received_at if sources else datetime.now(UTC)
        found.stored = Stored(sha256, raw, sources, sha256, arrival)
        return found

    with ThreadPoolExecutor(max_workers=_READ_THREADS) as pool:
        return list(pool.map(read, marks))


def _failed(sha256: str, error: str) -> IngestOutcome:
    return IngestOutcome(sha256=sha256, status="failed", label=sha256, error=error)


def _batches(ids: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(ids)
    while batch := list(islice(iterator, size)):
        yield batch


def needs_indexing(archiver: Archiver, sha256: str) -> bool:
    """Not indexed yet, or indexed with a delivery still pending."""
    return archiver.index.get(sha256) is None or bool(archiver.store.pending_marks(sha256))


def retry_failures(
    failures: FailureLog, unresolved: Callable[[str], bool], enqueue: Callable[[str], None]
) -> list[TaskFailure]:
    """Send every open failure back to the pipeline. Its record is removed once re-sent; a new
    failure records it again. Returns what was re-sent."""
    sent: list[TaskFailure] = []
    for failure in failures.open(unresolved):
        enqueue(failure.sha256)
        failures.clear(failure.sha256)
        sent.append(failure)
    return sent
