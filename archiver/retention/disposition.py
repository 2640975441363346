"""Disposition: deleting the mail whose retention has ended and that no hold covers.

A run is first planned: the candidates (retention ended by the cutoff, no hold in the index)
are each decided again under the policies and holds in force, counted by policy, department and
month, and sampled. A dry run stops there. A real run that would delete more than the approval
limit waits for a second person (never the one who asked) to approve it; the approval, like
every step, is in the audit log. A run then deletes at most the number planned.

Each batch is decided once more just before it is deleted, under the policies and holds read
at that moment, so a message that gains a hold (or a longer policy) during a run is kept. Each
message goes in this order: every version of its raw object and source records (the storage
refuses while its Object Lock runs: the message is skipped, with the date), then its tombstone
(under Object Lock) and an audit record, then its index document. A run saves its progress
after every batch; running it again resumes, and repeating a step already done is harmless.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from archiver.audit.log import AuditLog
from archiver.audit.records import AuditAction
from archiver.errors import ConcurrentEdit, InvalidRetention, StorageLocked
from archiver.models import Tombstone
from archiver.retention.decision import count_breakdown, sent_and_arrival
from archiver.retention.enforce import Decided, search_decided
from archiver.retention.service import RetentionService
from archiver.search.walk import walk_hits

log = logging.getLogger(__name__)
RunStatus = Literal["dry_run", "awaiting_approval", "approved", "running", "done", "cancelled"]
SAMPLES = 20
SYSTEM = "system:retention"


class Candidate(BaseModel):
    id: str
    subject: str
    retain_until: datetime | None
    policy: str


class DispositionRun(BaseModel):
    id: str = Field(default_factory=lambda: f"run-{secrets.token_hex(5)}")
    status: RunStatus
    requested_by: str
    requested_at: datetime
    cutoff: datetime  # only messages whose retention ended by then
    planned: int = 0  # messages due when planned: the most this run deletes
    approval_limit: int
    approved_by: str = ""
    approved_at: datetime | None = None
    by_policy: dict[str, int] = Field(default_factory=dict)
    by_department: dict[str, int] = Field(default_factory=dict)
    by_month: dict[str, int] = Field(default_factory=dict)  # month sent
    samples: list[Candidate] = Field(default_factory=list)
    deleted: int = 0
    kept_held: int = 0  # a hold covered it by the time it was reached
    kept_by_policy: int = 0  # a policy kept it longer by then
    kept_locked: int = 0  # the storage lock runs longer (a shortened policy)
    kept_spooled: int = 0  # a copy still waits in the SMTP spool
    failed: int = 0
    errors: list[str] = Field(default_factory=list)
    last_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def note_error(self, doc_id: str, error: str) -> None:
        self.failed += 1
        if len(self.errors) < 20:
            self.errors.append(f"{doc_id}: {error}")


def candidates_query(cutoff: datetime) -> dict[str, Any]:
    """Decided messages whose retention ended by the cutoff and that no hold covers."""
    return {
        "bool": {
            "filter": [
                {"range": {"retain_until": {"lte": cutoff.isoformat()}}},
                {"range": {"retention_generation": {"gte": 0}}},
            ],
            "must_not": [{"exists": {"field": "holds"}}],
        }
    }


Progress = Callable[[DispositionRun], None]


class Disposition:
    def __init__(
        self,
        retention: RetentionService,
        audit: AuditLog,
        spooled: Callable[[], set[str]] = set,
        threads: int = 16,
    ) -> None:
        self.retention = retention
        self.audit = audit
        self.spooled = spooled  # ids of messages still in unfiled SMTP spool segments
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="disposition")

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.retention.clock

    # -- planning and approval -------------------------------------------------------------

    def plan(self, actor: str, *, dry_run: bool = False) -> DispositionRun:
        limit = self.retention.options.approval_limit
        now = self.clock()
        run = DispositionRun(
            status="dry_run",
            requested_by=actor,
            requested_at=now,
            cutoff=now,
            approval_limit=limit,
        )
        for decided in self._due(run.cutoff):
            self._count(run, decided)
        if not dry_run:
            run.status = "approved" if run.planned <= limit else "awaiting_approval"
            self.retention.state.save_run(run.id, run, etag=None)
        log.info(
            "disposition planned",
            extra={"run": run.id, "planned": run.planned, "status": run.status},
        )
        return run

    def _candidates(self, cutoff: datetime, after: str | None = None) -> Iterator[list[str]]:
        """The ids the index says are due, batch by batch, in id order after `after`."""
        service = self.retention
        query = candidates_query(cutoff)
        size = service.options.batch_size
        for hits in walk_hits(service.index, ("id",), size, after, query=query):
            yield [h["_id"] for h in hits]

    def _due(self, cutoff: datetime) -> Iterator[Decided]:
        """The candidates, each decided now: only those still deletable."""
        service = self.retention
        now = self.clock()
        for ids in self._candidates(cutoff):
            state = service.state.load()
            for item in search_decided(service.index, service.queries, state, ids):
                if item.decision.deletable(now):
                    yield item

    @staticmethod
    def _count(run: DispositionRun, item: Decided) -> None:
        run.planned += 1
        policy = item.decision.winner.policy
        run.by_policy[policy] = run.by_policy.get(policy, 0) + 1
        count_breakdown(run.by_department, run.by_month, item.doc)
        if len(run.samples) < SAMPLES:
            run.samples.append(
                Candidate(
                    id=str(item.doc["id"]),
                    subject=str(item.doc.get("subject") or ""),
                    retain_until=item.decision.retain_until,
                    policy=policy,
                )
            )

    def run(self, run_id: str) -> DispositionRun:
        return DispositionRun.model_validate(self.retention.state.run(run_id)[0])

    def runs(self) -> list[DispositionRun]:
        found = [self.run(i) for i in self.retention.state.run_ids()]
        return sorted(found, key=lambda r: r.requested_at, reverse=True)

    def approve(self, run_id: str, actor: str) -> DispositionRun:
        """The second person's approval: anyone allowed, except whoever requested the run."""

        def edit(run: DispositionRun) -> None:
            if run.status != "awaiting_approval":
                raise InvalidRetention(
                    "approval", f"run {run_id} is {run.status}, not awaiting approval"
                )
            if actor == run.requested_by:
                raise InvalidRetention(
                    "approval", f"{actor} requested run {run_id}: a second person must approve it"
                )
            run.status, run.approved_by, run.approved_at = "approved", actor, self.clock()

        return self._change(run_id, edit)

    def cancel(self, run_id: str) -> DispositionRun:
        def edit(run: DispositionRun) -> None:
            if run.status not in ("awaiting_approval", "approved"):
                raise InvalidRetention("cancel", f"run {run_id} is {run.status}")
            run.status = "cancelled"

        return self._change(run_id, edit)

    def _change(self, run_id: str, edit: Callable[[DispositionRun], None]) -> DispositionRun:
        for _ in range(5):
            data, etag = self.retention.state.run(run_id)
            run = DispositionRun.model_validate(data)
            edit(run)
            try:
                self.retention.state.save_run(run_id, run, etag)
            except ConcurrentEdit:
                continue
            return run
        raise ConcurrentEdit(f"disposition run {run_id}")

    # -- deleting ----------------------------------------------------------------------------

    def execute(self, run_id: str, progress: Progress | None = None) -> DispositionRun:
        """Delete what the run planned, resuming a run that was interrupted."""

        def start(run: DispositionRun) -> None:
            if run.status not in ("approved", "running"):
                raise InvalidRetention(
                    "disposition run", f"run {run_id} is {run.status}; it cannot run"
                )
            run.status = "running"
            run.started_at = run.started_at or self.clock()

        run = self._change(run_id, start)
        spooled = self.spooled()
        for ids in self._candidates(run.cutoff, run.last_id):
            room = run.planned - run.deleted
            if room <= 0:
                break
            self._delete(run, ids, room, spooled, progress)
        run.status, run.finished_at = "done", self.clock()
        self._save(run, progress)
        log.info(
            "disposition done", extra={"run": run.id, "deleted": run.deleted, "failed": run.failed}
        )
        return run

    def _delete(
        self,
        run: DispositionRun,
        ids: Sequence[str],
        room: int,
        spooled: set[str],
        progress: Progress | None,
    ) -> None:
        """Decide these candidates under the policies and holds as they are now (the last look)
        and delete those still due, at most `room` of them."""
        service = self.retention
        state = service.state.load()
        now = self.clock()
        due: list[Decided] = []
        for item in search_decided(service.index, service.queries, state, ids):
            if len(due) >= room:
                break
            if item.decision.holds:
                run.kept_held += 1
            elif not item.decision.deletable(now):
                run.kept_by_policy += 1
            elif str(item.doc["id"]) in spooled:
                run.kept_spooled += 1
            else:
                due.append(item)
        # each message's purge, tombstone and audit record are round trips of its own: side by
        # side they overlap (the audit log still appends one record at a time)
        disposed = list(self._pool.map(lambda item: self._dispose(run, item), due))
        gone = [str(item.doc["id"]) for item, done in zip(due, disposed, strict=True) if done]
        run.kept_locked += len(due) - len(gone)
        for doc_id, error in service.index.delete_many(gone).items():
            if error is not None:
                run.note_error(doc_id, f"purged, but its index document remains: {error}")
        run.deleted += len(gone)
        run.last_id = max(ids)
        self._save(run, progress)

    def _dispose(self, run: DispositionRun, item: Decided) -> bool:
        doc, decision = item.doc, item.decision
        sha256 = str(doc["id"])
        storage = self.retention.storage
        try:
            versions, records = storage.purge(sha256)
        except StorageLocked as exc:
            log.info(
                "disposition kept a locked message", extra={"id": sha256, "until": str(exc.until)}
            )
            return False
        now = self.clock()
        sent, _ = sent_and_arrival(doc)
        tombstone = Tombstone(
            sha256=sha256,
            run_id=run.id,
            policy=decision.winner.policy,
            retain_until=decision.retain_until,
            disposed_at=now,
            approved_by=run.approved_by,
            date=sent,
            size=int(doc.get("size") or 0),
            versions_deleted=versions,
            records_deleted=records,
        )
        first = storage.put_tombstone(
            tombstone, now + timedelta(days=self.retention.options.tombstone_days)
        )
        self.audit.record(
            AuditAction.DISPOSE,
            actor=run.approved_by or run.requested_by,
            client="local",
            target=sha256,
            details={
                "run": run.id,
                "policy": tombstone.policy,
                "retain_until": tombstone.retain_until.isoformat()
                if tombstone.retain_until
                else None,
                "requested_by": run.requested_by,
                "approved_by": run.approved_by,
                "versions_deleted": versions,
                "records_deleted": records,
                **({} if first else {"repeated": True}),
            },
        )
        return True

    def _save(self, run: DispositionRun, progress: Progress | None) -> None:
        _, etag = self.retention.state.run(run.id)
        self.retention.state.save_run(run.id, run, etag)
        if progress is not None:
            progress(run)
