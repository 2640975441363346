"""Preview and apply an evaluation over archived mail, in batches, resumably.

Both walk the index in id order from one point in time (search_after) and call the same
``engine.plan`` on every message, so a preview's counts are what the apply then does. Apply
re-reads each message it changes (with its version token), plans again on that fresh copy and
writes it with optimistic concurrency, retrying conflicts; after every batch it stores its
progress (the last id and the counts so far) so an interrupted apply resumes where it stopped.
A rule that times out on a message leaves that message's tags as they are; both report it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from archiver.errors import RuleTimedOut
from archiver.ports import VERSION_TOKEN, Document, SearchIndex
from archiver.search.walk import walk_hits
from archiver.tagging.engine import Change, Evaluation, evaluate
from archiver.tagging.store import TaggingStore

log = logging.getLogger(__name__)

SAMPLES = 5
TIMEOUTS_LISTED = 100
WRITE_ATTEMPTS = 5


def _no_samples() -> dict[str, dict[str, list[Sample]]]:
    return {"gained": {}, "lost": {}}


class Sample(BaseModel):
    id: str
    subject: str


class TimedOut(BaseModel):
    """A message a rule timed out on."""

    id: str
    subject: str
    rule: str
    version: int | None
    error: str


class Report(BaseModel):
    """What a preview would do or an apply did: messages changed, tags gained and lost."""

    job: str
    mode: Literal["preview", "apply"]
    status: Literal["running", "done"] = "running"
    scanned: int = 0
    changed: int = 0  # messages whose tags (or topics) change
    gained: dict[str, int] = Field(default_factory=dict)  # tag -> messages gaining it
    lost: dict[str, int] = Field(default_factory=dict)
    samples: dict[str, dict[str, list[Sample]]] = Field(default_factory=_no_samples)
    failed: int = 0
    errors: list[str] = Field(default_factory=list)
    timed_out: int = 0  # messages a rule timed out on (their tags by it unchanged)
    timeouts: list[TimedOut] = Field(default_factory=list)  # the first TIMEOUTS_LISTED
    last_id: str | None = None  # the walk resumes after this id
    batches: int = 0
    resumed: bool = False
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def count(self, change: Change) -> None:
        self.changed += 1
        for direction, tags in (("gained", change.gained), ("lost", change.lost)):
            counts: dict[str, int] = getattr(self, direction)
            for tag in tags:
                counts[tag] = counts.get(tag, 0) + 1
                samples = self.samples[direction].setdefault(tag, [])
                if len(samples) < SAMPLES:
                    samples.append(Sample(id=change.id, subject=change.subject))

    def count_timeouts(self, doc: Document, timeouts: Sequence[RuleTimedOut]) -> None:
        if not timeouts:
            return
        self.timed_out += 1
        subject = str(doc.get("subject") or "")
        for error in timeouts:
            if len(self.timeouts) < TIMEOUTS_LISTED:
                self.timeouts.append(
                    TimedOut(
                        id=error.message,
                        subject=subject,
                        rule=error.rule,
                        version=error.version,
                        error=str(error),
                    )
                )
        log.warning("tagging rule timed out", extra={"id": doc.get("id"), "rules": len(timeouts)})


Progress = Callable[[Report], None]


def walk(
    index: SearchIndex, fields: Sequence[str], batch_size: int, after: str | None = None
) -> Iterator[list[Document]]:
    """Every message in id order, from one point in time, starting after the given id."""
    for hits in walk_hits(index, fields, batch_size, after):
        yield [{**h["_source"], "id": h["_id"]} for h in hits]


def preview(
    index: SearchIndex,
    evaluation: Evaluation,
    job: str,
    *,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> Report:
    report = Report(job=job, mode="preview")
    now = datetime.now(UTC)
    for batch in walk(index, evaluation.reads(), batch_size):
        for doc in batch:
            outcome = evaluate(doc, evaluation, now)
            report.count_timeouts(doc, outcome.timeouts)
            if outcome.change is not None:
                report.count(outcome.change)
        _advance(report, batch)
        if progress is not None:
            progress(report)
    report.status = "done"
    return report


def apply(
    index: SearchIndex,
    store: TaggingStore,
    evaluation: Evaluation,
    job: str,
    *,
    batch_size: int = 500,
    restart: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Apply evaluation to every archived message; resumes an unfinished run of the same job."""
    saved = None if restart else store.job(job)
    if saved and saved.get("status") == "running":
        report = Report.model_validate({**saved, "resumed": True})
        log.info("resuming apply", extra={"job": job, "after": report.last_id})
    else:
        report = Report(job=job, mode="apply")
    fields = evaluation.reads()
    for batch in walk(index, fields, batch_size, report.last_id):
        now = datetime.now(UTC)
        ids = []
        for doc in batch:
            outcome = evaluate(doc, evaluation, now)
            report.count_timeouts(doc, outcome.timeouts)
            if outcome.change is not None:
                ids.append(str(doc["id"]))
        for change in _write(index, evaluation, ids, fields, now, report):
            report.count(change)
        _advance(report, batch)
        store.save_job(job, report.model_dump(mode="json"))  # before anyone may interrupt
        if progress is not None:
            progress(report)
    report.status = "done"
    store.save_job(job, report.model_dump(mode="json"))
    log.info("apply done", extra={"job": job, "changed": report.changed, "failed": report.failed})
    return report


def _advance(report: Report, batch: Sequence[Document]) -> None:
    report.scanned += len(batch)
    report.batches += 1
    report.last_id = str(batch[-1]["id"])
    report.updated_at = datetime.now(UTC)


def _write(
    index: SearchIndex,
    evaluation: Evaluation,
    ids: Sequence[str],
    fields: Sequence[str],
    now: datetime,
    report: Report,
) -> list[Change]:
    """Re-read, re-plan and write the given messages, retrying version conflicts."""
    done: list[Change] = []
    todo = list(ids)
    for _ in range(WRITE_ATTEMPTS):
        if not todo:
            break
        fresh = index.get_many(todo, fields)
        changes: dict[str, Change] = {}
        for doc_id, doc in fresh.items():
            outcome = evaluate({**doc, "id": doc_id}, evaluation, now)
            report.count_timeouts(doc, outcome.timeouts)  # in time when scanned, not now
            if outcome.change is not None:
                changes[doc_id] = outcome.change
        updates: Mapping[str, Document] = {
            i: {**c.fields, VERSION_TOKEN: fresh[i][VERSION_TOKEN]} for i, c in changes.items()
        }
        results = index.update_many(updates)
        done += [changes[i] for i, status in results.items() if status is None]
        for doc_id, status in results.items():
            if status not in (None, "conflict"):
                _fail(report, doc_id, status)
        todo = [i for i, status in results.items() if status == "conflict"]
    for doc_id in todo:
        _fail(report, doc_id, "concurrent updates kept conflicting")
    return done


def _fail(report: Report, doc_id: str, error: str | None) -> None:
    report.failed += 1
    if len(report.errors) < 20:
        report.errors.append(f"{doc_id}: {error}")
    log.warning("re-tagging failed", extra={"id": doc_id, "error": error})
