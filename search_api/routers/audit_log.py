"""The audit log for auditors: search it, export it (CSV, JSON, PDF), verify its chain."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Annotated, BinaryIO, cast

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from archiver.access.model import Permission
from archiver.audit.export import ExportFormat, export
from archiver.audit.log import AuditFilter, AuditPage
from archiver.audit.records import AuditAction, Outcome
from archiver.audit.verify import VerifyReport
from search_api.audit import AuditedRoute, AuditLogDep, RequestAudit, audited

router = APIRouter(prefix="/api/audit", tags=["audit"], route_class=AuditedRoute)
Searching = Annotated[
    RequestAudit, Depends(audited(AuditAction.AUDIT_SEARCH, Permission.READ_AUDIT))
]
Exporting = Annotated[
    RequestAudit, Depends(audited(AuditAction.AUDIT_EXPORT, Permission.READ_AUDIT))
]
Verifying = Annotated[
    RequestAudit, Depends(audited(AuditAction.AUDIT_VERIFY, Permission.READ_AUDIT))
]
MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSON: "application/json",
    ExportFormat.PDF: "application/pdf",
}
_CHUNK = 64 * 1024
# an export is written here first (a large one spills to disk), then streamed
_IN_MEMORY = 8 * 1024 * 1024


def audit_filter(
    actor: Annotated[str | None, Query(max_length=256)] = None,
    action: Annotated[list[AuditAction] | None, Query()] = None,
    target: Annotated[str | None, Query(max_length=512)] = None,
    outcome: Outcome | None = None,
    since: Annotated[AwareDatetime | None, Query(description="inclusive, ISO 8601")] = None,
    until: Annotated[AwareDatetime | None, Query(description="exclusive, ISO 8601")] = None,
) -> AuditFilter:
    return AuditFilter(
        actor=actor,
        actions=action or [],
        target=target,
        outcome=outcome,
        since=since,
        until=until,
    )


FilterDep = Annotated[AuditFilter, Depends(audit_filter)]


@router.get("", response_model=AuditPage)
def search_audit(
    audit: Searching,
    log: AuditLogDep,
    filters: FilterDep,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditPage:
    """Records, newest first, by actor, action(s), target, outcome and time range. Searches
    the log's Elasticsearch copy, which may trail the log by a moment."""
    audit.details["filters"] = filters.model_dump(mode="json", exclude_defaults=True)
    found = log.search(filters, page=page, size=size)
    audit.details["total"] = found.total
    return found


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        spool.seek(0)
        while chunk := spool.read(_CHUNK):
            yield chunk
    finally:
        spool.close()


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}}},
)
def export_audit(
    audit: Exporting,
    log: AuditLogDep,
    filters: FilterDep,
    format: ExportFormat = ExportFormat.CSV,
) -> StreamingResponse:
    """The matching records from the log itself (S3, not the search copy), oldest first, as
    CSV (UTF-8 with a BOM), JSON, or a PDF report with the period, filters and counts."""
    spool = tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY)  # noqa: SIM115 - streamed, then closed
    written = export(format, lambda: log.records(filters), filters, cast(BinaryIO, spool))
    audit.details.update(
        filters=filters.model_dump(mode="json", exclude_defaults=True),
        format=format.value,
        records=written,
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        _chunks(spool),
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.{format.value}"'},
    )


@router.get("/verify", response_model=VerifyReport)
def verify_audit(audit: Verifying, log: AuditLogDep) -> VerifyReport:
    """Walk the whole chain and the sealed segments: every record changed, removed, reordered
    or inserted, and every segment missing, is reported."""
    report = log.verify()
    audit.details.update(records=report.records, issues=len(report.issues))
    return report
