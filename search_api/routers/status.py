"""The Status page's figures: backend health, ingest rate and lag, queues, failures, storage.

Administrators (manage_config) see them: they run the archive but read no mail, and the
figures are counts, never mail. Audited as a configuration read like the other admin pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from archiver.access.model import Permission
from archiver.audit.records import AuditAction
from archiver.status import SystemStatus
from search_api.audit import AuditedRoute, RequestAudit, audited
from search_api.deps import StatusDep

router = APIRouter(prefix="/api/status", tags=["status"], route_class=AuditedRoute)
ReadingStatus = Annotated[
    RequestAudit, Depends(audited(AuditAction.CONFIG_READ, Permission.MANAGE_CONFIG))
]


@router.get("")
def get_status(audit: ReadingStatus, status: StatusDep) -> SystemStatus:
    audit.target = "status"
    return status.get()
