"""Evidence exports as people use them: ask, follow, cancel, download (with custody), expire.

Who sees an export: anyone allowed to export whose scope covers the requester's (an export holds
only mail its requester could see, so such a person could have built it), the requester included
while their own scope still does. Anyone else is told it does not exist. Building is the
builder's (a Celery task); this service only records the request and hands the job over through
`enqueue`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from archiver.access.model import Permission, Principal, Scope
from archiver.audit.log import AuditLog
from archiver.audit.records import AuditAction
from archiver.errors import ExportNotReady, InvalidExport, NotFound, PermissionDenied
from archiver.exports.builder import ExportOptions
from archiver.exports.jobs import ExportJobs, custody_text
from archiver.exports.model import CustodyEntry, CustodyEvent, ExportJob, ExportRequest
from archiver.exports.parts import package_prefix
from archiver.ports import PackageStore
from archiver.retention.evaluate import CriteriaQueries

log = logging.getLogger(__name__)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class PartDownload:
    name: str
    size: int
    sha256: str
    chunks: Iterator[bytes]


def covers(wide: Scope, narrow: Scope) -> bool:
    """Whether everything `narrow` shows, `wide` shows too."""
    if wide.everything:
        return True
    return not narrow.everything and narrow.tags <= wide.tags


class ExportService:
    def __init__(
        self,
        jobs: ExportJobs,
        packages: PackageStore,
        queries: CriteriaQueries,
        matter_exists: Callable[[str], object],
        audit: AuditLog,
        options: ExportOptions | None = None,
        enqueue: Callable[[str], None] = lambda export_id: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.jobs = jobs
        self.packages = packages
        self.queries = queries
        self.matter_exists = matter_exists  # raises NotFound for an unknown matter
        self.audit = audit  # the archive's own steps (expiry); people's are audited at the edge
        self.options = options or ExportOptions()
        self.enqueue = enqueue
        self.clock = clock

    # -- asking ------------------------------------------------------------------------------

    def create(self, request: ExportRequest, principal: Principal, client: str) -> ExportJob:
        if not principal.may(Permission.EXPORT):
            raise PermissionDenied(principal.username, Permission.EXPORT)
        self._check(request)
        scope = principal.scope(Permission.EXPORT)
        job = ExportJob(
            request=request,
            requested_by=principal.username,
            requested_at=self.clock(),
            scope_everything=scope.everything,
            scope_tags=sorted(scope.tags),
        )
        self.jobs.create(job)
        what = {"query": request.query, "matter": request.matter, "ids": f"{len(request.ids)} ids"}
        self._custody(job.id, "requested", principal.username, client, what[request.kind])
        try:
            self.enqueue(job.id)
        except Exception as exc:  # the broker is a transport: whatever it raises, the job is
            # saved, and the beat's upkeep hands a job nobody took to a worker (stalled())
            log.warning(
                "export queued without a worker", extra={"export": job.id, "error": str(exc)}
            )
        return job

    def _check(self, request: ExportRequest) -> None:
        if request.kind == "query":
            self.queries.query_text(request.query)  # InvalidQuery, with its position
        elif request.kind == "matter":
            self.matter_exists(request.matter)
        else:
            bad = [i for i in request.ids if not _SHA256.match(i)]
            if bad:
                raise InvalidExport("ids", f"not a message id (64 hex digits): {bad[0][:80]!r}")

    # -- following -----------------------------------------------------------------------------

    def job(self, export_id: str, principal: Principal) -> ExportJob:
        job = self.jobs.get(export_id)
        if not self.may_see(job, principal):
            raise NotFound(f"no export {export_id!r}")
        return job

    def may_see(self, job: ExportJob, principal: Principal) -> bool:
        """Its requester too only while their scope still covers what it holds: a package of
        mail someone may no longer read is not theirs to download any more."""
        return principal.may(Permission.EXPORT) and covers(
            principal.scope(Permission.EXPORT), job.scope
        )

    def jobs_for(self, principal: Principal) -> list[ExportJob]:
        return [j for j in self.jobs.all() if self.may_see(j, principal)]

    def cancel(self, export_id: str, principal: Principal, client: str) -> ExportJob:
        self.job(export_id, principal)

        def cancel(job: ExportJob) -> None:
            if job.finished:
                raise InvalidExport("cancel", f"export {export_id} is {job.status} already")
            job.status, job.lease_until = "cancelled", None

        job, _ = self.jobs.change(export_id, cancel)
        # a builder at work notices at its next renewal and removes what it wrote; a queued
        # job never started, so nothing of it is left behind here either way
        self.packages.delete_prefix(package_prefix(export_id))
        self._custody(export_id, "cancelled", principal.username, client, "")
        return job

    # -- downloading ---------------------------------------------------------------------------

    def download(
        self, export_id: str, number: int, principal: Principal, client: str
    ) -> PartDownload:
        job = self.job(export_id, principal)
        if job.status != "done":
            raise ExportNotReady(export_id, job.status, job.error)
        part = next((p for p in job.parts if p.number == number), None)
        if part is None:
            raise NotFound(f"export {export_id} has no part {number} (it has {len(job.parts)})")
        chunks = self.packages.read(part.key)
        detail = f"part {number} of {len(job.parts)}: {part.name}, sha256 {part.sha256}"
        self._custody(export_id, "download", principal.username, client, detail)
        return PartDownload(part.name, part.size, part.sha256, chunks)

    def custody_log(self, export_id: str, principal: Principal) -> str:
        self.job(export_id, principal)
        return custody_text(export_id, self.jobs.custody(export_id))

    def _custody(
        self, export_id: str, event: CustodyEvent, actor: str, client: str, detail: str
    ) -> None:
        entry = CustodyEntry(
            time=self.clock(), event=event, actor=actor, client=client, detail=detail
        )
        self.jobs.add_custody(export_id, entry)

    # -- the archive's own upkeep ------------------------------------------------------------

    def expire(self, actor: str = "system:exports") -> list[str]:
        """Delete the packages whose time is up; their jobs and custody logs stay."""
        now = self.clock()
        expired: list[str] = []
        for job in self.jobs.all():
            if job.status != "done" or job.expires_at is None or job.expires_at > now:
                continue
            self.packages.delete_prefix(package_prefix(job.id))

            def expire(stored: ExportJob) -> None:
                stored.status = "expired"

            self.jobs.change(job.id, expire)
            self._custody(job.id, "expired", actor, "", f"package deleted at {now.isoformat()}")
            self.audit.record(
                AuditAction.EXPORT,
                actor=actor,
                client="local",
                target=job.id,
                details={"step": "expired", "requested_by": job.requested_by},
            )
            expired.append(job.id)
        return expired

    def stalled(self) -> list[str]:
        """Unfinished jobs nobody is building: a worker died holding them, or their task was
        lost. A queued job counts once it has waited a whole lease."""
        now = self.clock()
        lease = self.options.lease
        return [
            job.id
            for job in self.jobs.all()
            if not job.finished and (job.lease_until or job.requested_at + lease) <= now
        ]
