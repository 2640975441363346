"""Stored but not yet indexed: the pending marks that make indexing survive any queue loss.

Whoever accepts a message for later indexing (the SMTP sink) stores it and then writes a pending
mark; the mark is cleared only once the message is indexed with all its sources. The Celery task
is the fast path; the reconciler walks the marks left behind (Redis or Elasticsearch was down,
a worker died, the task gave up) and indexes those messages. Indexing is idempotent (the document
id is the SHA-256), so a message seen by both is still one document.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import islice

from pydantic import BaseModel, Field

from archiver.errors import MailvaultError
from archiver.failures import FailureLog
from archiver.models import IngestOutcome, PendingMark, Source, TaskFailure
from archiver.pipeline import Archiver, Stored

log = logging.getLogger(__name__)

RECONCILE_TASK = "reconcile"


class ReconcileSummary(BaseModel):
    pending: int = 0  # messages with marks old enough to reconcile
    indexed: int = 0
    duplicates: int = 0  # already indexed (the task got there first); sources merged
    failed: int = 0
    errors: list[dict[str, str]] = Field(default_factory=list)

    def add(self, outcome: IngestOutcome) -> None:
        if outcome.status == "imported":
            self.indexed += 1
        elif outcome.status == "duplicate":
            self.duplicates += 1
        else:
            self.failed += 1
            self.errors.append({"sha256": outcome.sha256 or "", "error": outcome.error or ""})


def accept_for_indexing(archiver: Archiver, raw: bytes, source: Source) -> str:
    """Durably store a message and mark it pending; raises BackendUnavailable otherwise.

    The mark is written after the bytes and the source record, so a mark never points at a
    message that is not stored, and a failure before it means the caller does not confirm."""
    sha256 = archiver.accept(raw, source)
    archiver.store.mark_pending(sha256)
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
    cutoff = (now or datetime.now(UTC)) - min_age
    by_sha: dict[str, list[PendingMark]] = defaultdict(list)
    for mark in archiver.store.pending():
        if mark.marked_at <= cutoff:
            by_sha[mark.sha256].append(mark)
    summary = ReconcileSummary(pending=len(by_sha))
    for batch in _batches(list(by_sha), batch_size):
        _reconcile_batch(archiver, {s: by_sha[s] for s in batch}, summary, failures)
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
) -> None:
    loaded, outcomes = _load(archiver, marks)
    if loaded:
        outcomes += archiver.index_stored(loaded)
    done: list[PendingMark] = []
    for outcome in outcomes:
        summary.add(outcome)
        sha256 = outcome.sha256 or ""
        if outcome.status != "failed":
            done += marks.get(sha256, [])
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


def _load(
    archiver: Archiver, marks: dict[str, list[PendingMark]]
) -> tuple[list[Stored], list[IngestOutcome]]:
    """Read the bytes and every source record of each message (S3 round trips, in parallel)."""

    def read(sha256: str) -> Stored | IngestOutcome:
        try:
            raw = archiver.store.get(sha256)
            sources = [r.source for r in archiver.store.records(sha256)]
        except MailvaultError as exc:
            return IngestOutcome(sha256=sha256, status="failed", label=sha256, error=str(exc))
        arrival = sources[0].received_at if sources else datetime.now(UTC)
        return Stored(sha256, raw, sources, sha256, arrival)

    loaded: list[Stored] = []
    failed: list[IngestOutcome] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for item in pool.map(read, marks):
            if isinstance(item, Stored):
                loaded.append(item)
            else:
                failed.append(item)
    return loaded, failed


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
