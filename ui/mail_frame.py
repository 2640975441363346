"""The document shown in the message page's sandboxed frame: the HTML body, sanitised.

Two walls around hostile mail. The sanitiser (archiver/mime/html_view.py) removes script,
handlers, forms, frames and every URL the reader did not allow; this document's own CSP then
refuses scripts, plugins, forms and any fetch but data: images (and remote images once the reader
allows them), and its `sandbox` directive gives it an opaque origin even if it is opened outside
the page's `<iframe sandbox>`. The page embeds it as
`<iframe sandbox="allow-popups allow-popups-to-escape-sandbox" src=...>`: links (allowed ones)
open in a new tab, nothing else runs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse

from archiver.access.model import Permission
from archiver.audit.records import AuditAction
from archiver.errors import NotFound
from archiver.mime.html_view import frame_document
from archiver.search.reading import html_body
from search_api.audit import AuditedRoute, RequestAudit, audited
from search_api.deps import IndexDep, RawStoreDep, scoped_index

router = APIRouter(prefix="/ui/messages", include_in_schema=False, route_class=AuditedRoute)
MessageId = Path(pattern="^[0-9a-f]{64}$", description="SHA-256 of the raw message")
Viewing = Annotated[RequestAudit, Depends(audited(AuditAction.VIEW, Permission.VIEW))]

FRAME_SANDBOX = "allow-popups allow-popups-to-escape-sandbox"


def frame_policy(remote: bool) -> str:
    images = "data: http: https:" if remote else "data:"
    return (
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; "
        f"img-src {images}; font-src 'none'; form-action 'none'; base-uri 'none'; "
        "frame-ancestors 'self'"
    )


class NoHtmlBody(NotFound):
    def __init__(self, message_id: str) -> None:
        super().__init__(f"message {message_id} has no HTML body")


@router.get("/{message_id}/body", response_class=HTMLResponse)
def get_body(
    audit: Viewing,
    store: RawStoreDep,
    index: IndexDep,
    message_id: str = MessageId,
    remote: int = Query(0, ge=0, le=1, description="1: show remote images and links"),
) -> HTMLResponse:
    """The message's HTML body as a complete document for the sandboxed frame."""
    audit.target = message_id
    audit.details["remote"] = bool(remote)
    body = html_body(store, scoped_index(index, audit, Permission.VIEW), message_id, bool(remote))
    if body is None:
        raise NoHtmlBody(message_id)
    return HTMLResponse(
        frame_document(body),
        headers={
            "Content-Security-Policy": frame_policy(bool(remote)),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "private, no-store",
        },
    )
