"""Filing the spool into the archive, and finding what the fast path left behind.

The SMTP sink makes accepted mail durable in spool segments (archiver/pipeline/spool.py) and sends
the worker an archive_spool task for them. Filing a segment stores each message under its SHA-256
with its source (like any import), indexes it, and only then drops the segment. The task is the
fast path; the reconciler files every segment left behind (Redis or Elasticsearch was down, a
worker died, the task gave up). Filing is idempotent (the document id is the SHA-256 and a
source is recorded once), so a segment filed twice is still one document per message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TypeVar

from pydantic import BaseModel, Field

from archiver.errors import MailvaultError, SpoolCorrupt, SpoolSegmentNotFound
from archiver.models import IngestOutcome, SpoolSegment, TaskFailure
from archiver.pipeline.archiver import Archiver, Incoming, Stored
from archiver.pipeline.failures import FailureLog
from archiver.pipeline.spool import SpoolEntry, decode_segment

log = logging.getLogger(__name__)

RECONCILE_TASK = "reconcile"
_READ_THREADS = 16
T = TypeVar("T")


class ReconcileSummary(BaseModel):
    segments: int = 0  # spool segments looked at
    pending: int = 0  # messages found to file or index
    indexed: int = 0
    duplicates: int = 0  # already indexed (another delivery, or filed before); sources merged
    failed: int = 0
    # failed messages whose cause may pass (a backend down, not misconfigured); decides whether
    # the filing task is retried, not part of the report
    retryable: int = Field(0, exclude=True)
    errors: list[dict[str, str]] = Field(default_factory=list)

    def add(self, outcome: IngestOutcome) -> None:
        if outcome.status == "imported":
            self.indexed += 1
        elif outcome.status == "duplicate":
            self.duplicates += 1
        else:
            self.failed += 1
            self.retryable += outcome.retryable
            self.errors.append(
                {"sha256": outcome.sha256 or outcome.label, "error": outcome.error or ""}
            )

    def merge(self, other: ReconcileSummary) -> None:
        for name in ("segments", "pending", "indexed", "duplicates", "failed", "retryable"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors += other.errors


def file_spooled(
    archiver: Archiver,
    segments: Sequence[SpoolSegment],
    *,
    task: str = RECONCILE_TASK,
    failures: FailureLog | None = None,
    refresh: bool = False,
) -> ReconcileSummary:
    """File segments into the archive and drop each one whose every message is filed.

    A segment already dropped (filed meanwhile) is skipped; a corrupt one is kept and its failure
    recorded. Raises BackendUnavailable when S3 cannot be read. With refresh the index is
    refreshed once filed, so the mail is searchable now rather than at the next refresh."""
    summary = ReconcileSummary(segments=len(segments))
    read = _read_segments(archiver, segments, summary, task, failures)
    items = [Incoming(e.raw, e.source, label=e.sha256) for _, entries in read for e in entries]
    summary.pending = len({i.label for i in items})
    outcomes = archiver.ingest_many(items) if items else []
    failed: set[str] = set()
    for outcome in outcomes:
        summary.add(outcome)
        if outcome.status == "failed":
            failed.add(outcome.label)
            if failures is not None:
                failures.record_safely(_failure(task, outcome.error or "", sha256=outcome.label))
    if refresh and summary.indexed:
        archiver.index.refresh()
    filed = [s for s, entries in read if not any(e.sha256 in failed for e in entries)]
    if filed:
        archiver.store.drop_spool(filed)
    return summary


def _read_segments(
    archiver: Archiver,
    segments: Sequence[SpoolSegment],
    summary: ReconcileSummary,
    task: str,
    failures: FailureLog | None,
) -> list[tuple[SpoolSegment, list[SpoolEntry]]]:
    """Each readable segment with its entries: the bytes the task carried, or read from S3 (in
    parallel). Either way each message is checked against its SHA-256."""

    def read(segment: SpoolSegment) -> tuple[SpoolSegment, list[SpoolEntry] | None]:
        try:
            data = segment.data if segment.data is not None else archiver.store.read_spool(segment)
            return segment, decode_segment(segment.key, data)
        except SpoolSegmentNotFound:
            return segment, None
        except SpoolCorrupt as exc:
            log.error(
                "spool segment corrupt; kept", extra={"segment": segment.key, "error": str(exc)}
            )
            summary.failed += 1
            summary.errors.append({"segment": segment.key, "error": str(exc)})
            if failures is not None:
                failures.record_safely(_failure(task, str(exc), segment=segment))
            return segment, None

    with ThreadPoolExecutor(max_workers=min(_READ_THREADS, max(1, len(segments)))) as pool:
        results = list(pool.map(read, segments))
    return [(s, entries) for s, entries in results if entries is not None]


def reconcile(
    archiver: Archiver,
    *,
    min_age: timedelta = timedelta(0),
    batch_size: int = 50,
    failures: FailureLog | None = None,
    now: datetime | None = None,
) -> ReconcileSummary:
    """File every spool segment older than min_age (younger ones are left to the task, to avoid
    doing the work twice), batch_size segments at a time."""
    cutoff = (now or datetime.now(UTC)) - min_age
    due = [s for s in archiver.store.spooled() if s.written_at is None or s.written_at <= cutoff]
    summary = ReconcileSummary()
    for batch in _batches(due, batch_size):
        summary.merge(file_spooled(archiver, batch, failures=failures))
    log.info("reconciled", extra=summary.model_dump(exclude={"errors"}))
    return summary


def reconcile_all(
    archiver: Archiver, *, batch_size: int = 500, failures: FailureLog | None = None
) -> ReconcileSummary:
    """Full check: the spool is filed, then every stored message missing from the index is
    indexed. Lists the whole archive, so it is for recovery (an index lost or rebuilt), not
    for the schedule."""
    summary = reconcile(archiver, failures=failures)
    summary.merge(index_missing(archiver, batch_size=batch_size, failures=failures))
    log.info("reconciled the whole archive", extra=summary.model_dump(exclude={"errors"}))
    return summary


def index_missing(
    archiver: Archiver,
    *,
    batch_size: int = 500,
    failures: FailureLog | None = None,
    progress: Callable[[int, ReconcileSummary], None] | None = None,
) -> ReconcileSummary:
    """Index every stored message the index lacks; `progress` hears how many were checked
    after each batch. Run again, it takes up where it stopped (what is indexed is skipped)."""
    summary = ReconcileSummary()
    checked = 0
    for batch in _batches(archiver.store.iter_ids(), batch_size):
        known = archiver.index.get_many(batch, ["id"])
        missing = [s for s in batch if s not in known]
        summary.pending += len(missing)
        if missing:
            for outcome in _index_from_store(archiver, missing):
                summary.add(outcome)
                if outcome.status == "failed" and failures is not None:
                    failures.record_safely(
                        _failure(RECONCILE_TASK, outcome.error or "", sha256=outcome.label)
                    )
        checked += len(batch)
        if progress is not None:
            progress(checked, summary)
    return summary


def _index_from_store(archiver: Archiver, shas: list[str]) -> list[IngestOutcome]:
    """Read the bytes and every source record of each message (in parallel), then index."""

    def read(sha256: str) -> Stored | IngestOutcome:
        try:
            raw = archiver.store.get(sha256)
            sources = [r.source for r in archiver.store.records(sha256)]
        except MailvaultError as exc:
            return IngestOutcome(sha256=sha256, status="failed", label=sha256, error=str(exc))
        arrival = sources[0].received_at if sources else datetime.now(UTC)
        return Stored(sha256, raw, sources, sha256, arrival)

    with ThreadPoolExecutor(max_workers=_READ_THREADS) as pool:
        read_all = list(pool.map(read, shas))
    loaded = [r for r in read_all if isinstance(r, Stored)]
    outcomes = [r for r in read_all if isinstance(r, IngestOutcome)]
    return outcomes + (archiver.index_stored(loaded) if loaded else [])


def _failure(
    task: str, error: str, *, sha256: str = "", segment: SpoolSegment | None = None
) -> TaskFailure:
    return TaskFailure(
        sha256=sha256, segment=segment, task=task, error=error, failed_at=datetime.now(UTC)
    )


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def unresolved(archiver: Archiver, failure: TaskFailure) -> bool:
    """The failure's message is still not indexed, or its segment still not filed."""
    if failure.segment is not None:
        return any(s.key == failure.segment.key for s in archiver.store.spooled())
    return archiver.index.get(failure.sha256) is None


def retry_failures(
    failures: FailureLog,
    unresolved: Callable[[TaskFailure], bool],
    enqueue: Callable[[TaskFailure], None],
) -> list[TaskFailure]:
    """Send every open failure back to the pipeline. Its record is removed once re-sent; a new
    failure records it again. Returns what was re-sent."""
    sent: list[TaskFailure] = []
    for failure in failures.open(unresolved):
        if failure.rule:  # archived already: a rule timeout needs the rule changed, not a re-run
            continue
        enqueue(failure)
        failures.clear(failure)
        sent.append(failure)
    return sent
