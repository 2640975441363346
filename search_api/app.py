"""The HTTP API. Domain errors map to JSON errors with a clear message."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from archiver.errors import (
    AccountDisabled,
    ApprovalRequired,
    BackendFailed,
    BackendUnavailable,
    ConcurrentEdit,
    CsrfRejected,
    ExportBusy,
    ExportNotReady,
    IntegrityError,
    InvalidExport,
    InvalidQuery,
    InvalidRetention,
    InvalidTagging,
    InvalidToken,
    InvalidUser,
    MailvaultError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    SignInFailed,
    SignInThrottled,
    StorageLocked,
    UserExists,
)
from archiver.settings import get_settings
from search_api import metrics
from search_api.audit import REQUEST_ID_HEADER, request_id
from search_api.deps import cached_status as get_cached_status
from search_api.routers import (
    audit_log,
    directory,
    exports,
    health,
    holds,
    messages,
    retention,
    rules,
    saved_searches,
    search,
    session,
    status,
    tags,
    threads,
    users,
)
from ui import web

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[MailvaultError], int]] = [
    (NotFound, 404),
    (InvalidQuery, 400),
    (InvalidTagging, 422),
    (InvalidRetention, 422),
    (InvalidExport, 422),
    (ExportNotReady, 409),
    (ExportBusy, 409),
    (ApprovalRequired, 409),
    (StorageLocked, 409),
    (InvalidToken, 422),
    (InvalidUser, 422),
    (NotAuthenticated, 401),
    (SignInFailed, 401),
    (SignInThrottled, 429),
    (AccountDisabled, 403),
    (CsrfRejected, 403),
    (PermissionDenied, 403),
    (ConcurrentEdit, 409),
    (UserExists, 409),
    (BackendUnavailable, 503),
    # permanent (a misconfigured backend): the message names the backend and the cause
    (BackendFailed, 500),
    (IntegrityError, 500),
]


async def _domain_error(request: Request, exc: Exception) -> Response:
    status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)
    body: dict[str, object] = {"error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, InvalidQuery) and exc.position is not None:
        body["position"] = exc.position
    # a 5xx is the archive's fault (a backend down, bytes that changed): for a person to act on
    rid = request_id(request)
    log.log(
        logging.ERROR if status >= 500 else logging.WARNING,
        "request failed",
        extra={"path": request.url.path, "status": status, "error": str(exc), "request_id": rid},
    )
    headers = {REQUEST_ID_HEADER: rid}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, SignInThrottled):
        body["until"] = exc.until.isoformat()
        headers["Retry-After"] = str(max(1, int((exc.until - datetime.now(UTC)).total_seconds())))
    if web.is_ui(request):
        page = web.error_page(request, status, str(exc))
        page.headers[REQUEST_ID_HEADER] = rid
        return page
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MailvaultError, _domain_error)


def create_app() -> FastAPI:
    app = FastAPI(
        title="mailvault",
        description="Search and read the mail archive. Chinese is segmented with jieba. "
        "Every route but /healthz and sign-in needs a session (POST /api/session) or an API "
        "token (Authorization: Bearer mv_...), and every one is audited.",
        version="0.1.0",
    )
    install_error_handlers(app)
    for router in (
        search.router,
        messages.router,
        threads.router,
        saved_searches.router,
        health.router,
        tags.router,
        rules.router,
        directory.router,
        session.router,
        users.router,
        audit_log.router,
        retention.router,
        holds.router,
        exports.router,
        status.router,
    ):
        app.include_router(router)
    web.mount(app)
    metrics.mount(app, get_cached_status, get_settings().metrics_access)
    return app


app = create_app()
