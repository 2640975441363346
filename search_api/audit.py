"""Every request that reads mail, the audit log or the configuration, or changes anything, writes
exactly one audit record, and its answer is sent only once that record is durable.

A route declares what it does with a dependency, `audited(action, permission)`: it resolves the
signed-in principal, opens the request's `RequestAudit` and checks the permission. The route fills
in the target and details (the query text, the result total). The route class `AuditedRoute`
then writes the record after the route has produced its answer and before that answer leaves:
if the record cannot be written, the client gets a 503 instead and nothing is served unaudited.
A request that fails (permission denied, not found, a bad query) is recorded too, with its
outcome and the error's name, so a denied attempt is as visible as a granted one.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from archiver import bootstrap
from archiver.access.model import Permission, Principal
from archiver.audit.log import AuditLog
from archiver.audit.records import AuditAction, Outcome
from archiver.errors import (
    BackendError,
    BackendUnavailable,
    PermissionDenied,
    SignInThrottled,
)
from archiver.settings import get_settings
from search_api.auth import CurrentUser

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _audit_log() -> AuditLog:
    return bootstrap.audit_log(get_settings())


async def get_audit_log() -> AuditLog:
    return _audit_log()


AuditLogDep = Annotated[AuditLog, Depends(get_audit_log)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def request_id(request: Request) -> str:
    """The client's X-Request-ID when it is a sane token (a proxy in front may set one, so the
    proxy's log and ours meet), a new one otherwise."""
    found = getattr(request.state, "request_id", None)
    if found is None:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        found = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        request.state.request_id = found
    return str(found)


@dataclass
class RequestAudit:
    """The audit record this request will write: who, what, on what."""

    log: AuditLog
    action: AuditAction
    client: str
    request_id: str
    principal: Principal | None = None
    actor: str = ""
    target: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    # sign-in records a failure under its own action, so failed sign-ins are easy to count
    failure_action: AuditAction | None = None
    recorded: bool = False

    @property
    def acting(self) -> Principal:
        """Who acts: a route that needs a permission always has its principal."""
        if self.principal is None:
            raise RuntimeError("this route opens its audit record with a principal")
        return self.principal

    @property
    def username(self) -> str:
        return self.acting.username

    @property
    def reads_whole_archive(self) -> bool:
        """Whether the principal may search all mail: the one who may see samples of it in a
        rule's or a policy's preview (an administrator writes rules without reading mail)."""
        return self.principal is not None and self.principal.scope().everything

    def record(self, outcome: Outcome, **extra: Any) -> None:
        """Write the record (once). Raises BackendUnavailable when it cannot be written."""
        if self.recorded:
            return
        principal = self.principal
        action = self.action if outcome is Outcome.SUCCESS else self.failure_action or self.action
        self.log.record(
            action,
            actor=principal.username if principal else self.actor,
            actor_roles=tuple(r.name for r in principal.roles) if principal else (),
            client=self.client,
            target=self.target,
            details={**self.details, **extra},
            outcome=outcome,
            request_id=self.request_id,
        )
        self.recorded = True


def _open(request: Request, log_: AuditLog, action: AuditAction) -> RequestAudit:
    audit = RequestAudit(log_, action, client_address(request), request_id(request))
    request.state.audit = audit
    return audit


def audited(
    action: AuditAction, *permissions: Permission
) -> Callable[..., Coroutine[Any, Any, RequestAudit]]:
    """A dependency: the request's audit record, for the signed-in principal, who must hold
    one of `permissions` (403, recorded as denied, otherwise; none named: any principal)."""

    async def opened(request: Request, principal: CurrentUser, log_: AuditLogDep) -> RequestAudit:
        audit = _open(request, log_, action)
        audit.principal = principal
        if permissions and not any(principal.may(p) for p in permissions):
            raise PermissionDenied(principal.username, " or ".join(p.value for p in permissions))
        return audit

    return opened


def audited_anonymously(
    action: AuditAction, failure_action: AuditAction | None = None
) -> Callable[..., Coroutine[Any, Any, RequestAudit]]:
    """A dependency for a request made before anyone is signed in (sign-in itself)."""

    async def opened(request: Request, log_: AuditLogDep) -> RequestAudit:
        audit = _open(request, log_, action)
        audit.failure_action = failure_action
        return audit

    return opened


def outcome_of(exc: Exception) -> Outcome:
    # out of scope answers 404 like missing, and is recorded like missing (failed, with the
    # error's name): the log must not tell its readers more than the client was told either
    return Outcome.DENIED if isinstance(exc, PermissionDenied | SignInThrottled) else Outcome.FAILED


async def _record(audit: RequestAudit, outcome: Outcome, **extra: Any) -> None:
    try:
        await run_in_threadpool(audit.record, outcome, **extra)
    except BackendError as exc:
        log.error(
            "audit record not written: request refused",
            extra={"action": audit.action.value, "request_id": audit.request_id, "error": str(exc)},
        )
        raise BackendUnavailable("audit", f"the audit record could not be written: {exc}") from exc


class AuditedRoute(APIRoute):
    """Writes the request's audit record, if the route opened one, before its answer leaves."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def audited_handler(request: Request) -> Response:
            rid = request_id(request)
            try:
                response = await handle(request)
            except Exception as exc:
                audit = getattr(request.state, "audit", None)
                if audit is not None:
                    await _record(audit, outcome_of(exc), error=type(exc).__name__)
                raise
            audit = getattr(request.state, "audit", None)
            if audit is not None:
                await _record(audit, Outcome.SUCCESS, status=response.status_code)
            response.headers[REQUEST_ID_HEADER] = rid
            return response

        return audited_handler
