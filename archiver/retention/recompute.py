"""Recomputing every message's retention after policies or holds change.

A walk over the whole archive in id order (archiver/search/walk.py), one search per batch that
matches every policy and hold at once, deciding each message and writing only what changed
(and extending storage locks, setting and clearing legal hold flags). Progress is saved after
every batch: an interrupted job resumes after its last id. When the policies or holds change
again during a walk, it starts over under the newer generation, so a finished job always
reflects the latest change. New mail indexed while it walked is swept up at the end.

Running two at once is safe (they write the same decisions), only wasteful.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from archiver.retention.enforce import PENDING, READS, Tally, decided_hits
from archiver.retention.service import RetentionService
from archiver.search.walk import walk_hits

log = logging.getLogger(__name__)
JOB = "recompute"
SWEEP_PASSES = 5
# mail indexed this long before a walk began may still have been decided under older state
SWEEP_MARGIN = timedelta(minutes=5)


class RecomputeReport(BaseModel):
    job: str = JOB
    status: Literal["running", "done"] = "running"
    run: str = Field(default_factory=lambda: secrets.token_hex(6))
    generation: int = 0  # the policies and holds being applied
    total: int = 0  # messages in the archive when the walk (re)started
    scanned: int = 0
    changed: int = 0
    locks_extended: int = 0
    holds_set: int = 0
    holds_cleared: int = 0
    failed: int = 0
    errors: list[str] = Field(default_factory=list)
    restarts: int = 0  # walks begun again because the policies or holds changed meanwhile
    swept: int = 0  # messages indexed during the walk, decided at its end
    last_id: str | None = None
    resumed: bool = False
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None

    def add(self, tally: Tally) -> None:
        for name in ("changed", "locks_extended", "holds_set", "holds_cleared", "failed"):
            setattr(self, name, getattr(self, name) + getattr(tally, name))
        self.errors = (self.errors + tally.errors)[:20]

    @property
    def progress(self) -> float:
        return min(1.0, self.scanned / self.total) if self.total else 1.0


Progress = Callable[[RecomputeReport], None]


def status(service: RetentionService) -> RecomputeReport | None:
    saved = service.state.job(JOB)
    return RecomputeReport.model_validate(saved) if saved else None


def recompute(
    service: RetentionService, *, restart: bool = False, progress: Progress | None = None
) -> RecomputeReport:
    state = service.state.load()
    report = _start(service, state.generation, restart)
    while True:
        state = service.state.load()
        if state.generation != report.generation:
            report = _begin_again(service, report, state.generation)
        interrupted = False
        named = service.queries.named(state)
        batches = walk_hits(
            service.index, READS, service.options.batch_size, report.last_id, named=named
        )
        for hits in batches:
            if service.state.load().generation != state.generation:
                interrupted = True  # a newer change: this walk's decisions are already stale
                break
            tally = Tally()
            service.enforcer.apply(decided_hits(state, hits), state.generation, tally)
            report.add(tally)
            report.scanned += len(hits)
            report.last_id = hits[-1]["_id"]
            _save(service, report, progress)
        if not interrupted:
            break
    swept = sweep(service, report.generation, report.started_at - SWEEP_MARGIN)
    report.swept += swept.swept
    report.add(Tally(failed=swept.failed, errors=swept.errors))
    report.status, report.finished_at = "done", service.clock()
    _save(service, report, progress)
    log.info("retention recomputed", extra=report.model_dump(mode="json", exclude={"errors"}))
    return report


def _start(service: RetentionService, generation: int, restart: bool) -> RecomputeReport:
    saved = None if restart else status(service)
    if saved and saved.status == "running" and saved.generation == generation:
        log.info("resuming retention recompute", extra={"after": saved.last_id})
        return saved.model_copy(update={"resumed": True})
    now = service.clock()
    return RecomputeReport(
        generation=generation, total=_count(service), started_at=now, updated_at=now
    )


def _begin_again(
    service: RetentionService, report: RecomputeReport, generation: int
) -> RecomputeReport:
    return report.model_copy(
        update={
            "generation": generation,
            "restarts": report.restarts + 1,
            "last_id": None,
            "scanned": 0,
            "total": _count(service),
        }
    )


def _count(service: RetentionService) -> int:
    response = service.index.search(
        {"size": 0, "track_total_hits": True, "query": {"match_all": {}}}
    )
    return int(response["hits"]["total"]["value"])


def pending_query(generation: int | None = None, since: datetime | None = None) -> dict[str, Any]:
    """Mail not decided yet (pending, or indexed before retention existed), and when given, mail
    indexed since `since` under a generation older than `generation`."""
    should: list[dict[str, Any]] = [
        {"term": {"retention_generation": PENDING}},
        {"bool": {"must_not": [{"exists": {"field": "retention_generation"}}]}},
    ]
    if generation is not None and since is not None:
        should.append(
            {
                "bool": {
                    "filter": [
                        {"range": {"retention_generation": {"lt": generation}}},
                        {"range": {"ingested_at": {"gte": since.isoformat()}}},
                    ]
                }
            }
        )
    return {"bool": {"should": should, "minimum_should_match": 1}}


def sweep(
    service: RetentionService, generation: int | None = None, since: datetime | None = None
) -> RecomputeReport:
    """Decide the mail a walk could not see (indexed after its point in time by a pipeline that
    read the policies and holds before the change) and the mail left pending by a failure;
    also what the beat runs every few minutes."""
    now = service.clock()
    report = RecomputeReport(job="sweep", started_at=now, updated_at=now)
    query = pending_query(generation, since)
    for _ in range(SWEEP_PASSES):
        state = service.state.load()
        named = service.queries.named(state)
        found = 0
        for hits in walk_hits(
            service.index, READS, service.options.batch_size, query=query, named=named
        ):
            tally = Tally()
            decided = decided_hits(state, hits)
            service.enforcer.apply(decided, state.generation, tally, always=True)
            report.add(tally)
            found += len(hits)
        report.swept += found
        if not found:
            break
    report.status, report.finished_at = "done", service.clock()
    return report


def _save(service: RetentionService, report: RecomputeReport, progress: Progress | None) -> None:
    report.updated_at = service.clock()
    service.state.save_job(JOB, report)
    if progress is not None:
        progress(report)
