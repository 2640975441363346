from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel

from archiver.access.model import Permission
from archiver.audit.records import AuditAction
from archiver.retention.service import Explanation
from archiver.search.reading import html_body, message_view, raw_message
from search_api.audit import AuditedRoute, RequestAudit, audited
from search_api.deps import IndexDep, RawStoreDep, RetentionDep, scoped_index

router = APIRouter(prefix="/api/messages", tags=["messages"], route_class=AuditedRoute)
MessageId = Path(pattern="^[0-9a-f]{64}$", description="SHA-256 of the raw message")
Viewing = Annotated[RequestAudit, Depends(audited(AuditAction.VIEW, Permission.VIEW))]
DownloadingRaw = Annotated[
    RequestAudit, Depends(audited(AuditAction.VIEW_RAW, Permission.VIEW_RAW))
]


@router.get("/{message_id}")
def get_message(audit: Viewing, index: IndexDep, message_id: str = MessageId) -> dict[str, Any]:
    """The parsed view of one message (the segmented index fields left out). A message the
    caller may not read answers 404, as a missing one does."""
    audit.target = message_id
    return message_view(scoped_index(index, audit, Permission.VIEW), message_id)


@router.get(
    "/{message_id}/raw",
    response_class=Response,
    responses={200: {"content": {"message/rfc822": {}}}},
)
def get_raw(
    audit: DownloadingRaw, store: RawStoreDep, index: IndexDep, message_id: str = MessageId
) -> Response:
    """The byte-exact message as archived, verified against its SHA-256."""
    audit.target = message_id
    raw = raw_message(store, scoped_index(index, audit, Permission.VIEW_RAW), message_id)
    return Response(
        content=raw,
        media_type="message/rfc822",
        headers={
            "Content-Disposition": f'attachment; filename="{message_id}.eml"',
            "X-Content-SHA256": message_id,
        },
    )


@router.get("/{message_id}/retention")
def get_retention(
    audit: Viewing, index: IndexDep, retention: RetentionDep, message_id: str = MessageId
) -> Explanation:
    """Why the message is kept as long as it is: the policies that match it (with versions),
    the default when none does, the holds covering it, the winner and the date, and what the
    storage enforces (Object Lock retention, legal hold)."""
    audit.target = message_id
    return retention.explain(message_id, scoped_index(index, audit, Permission.VIEW))


class HtmlBody(BaseModel):
    """Whether the message has an HTML body, what showing it safely holds back, and where the
    sandboxed frame that shows it is."""

    has_html: bool
    blocked_images: int = 0
    blocked_links: int = 0
    inline_images: int = 0
    frame_url: str | None = None
    remote_frame_url: str | None = None


@router.get("/{message_id}/html")
def get_html(
    audit: Viewing, store: RawStoreDep, index: IndexDep, message_id: str = MessageId
) -> HtmlBody:
    """What the message page needs to show the HTML body: the counts of remote images and links
    blocked (to offer "show remote content") and the frame's URLs. The body itself is served
    by the frame route (ui/mail_frame.py), never as JSON."""
    audit.target = message_id
    body = html_body(store, scoped_index(index, audit, Permission.VIEW), message_id, False)
    if body is None:
        return HtmlBody(has_html=False)
    frame = f"/ui/messages/{message_id}/body"
    return HtmlBody(
        has_html=True,
        blocked_images=body.blocked_images,
        blocked_links=body.blocked_links,
        inline_images=body.inline_images,
        frame_url=f"{frame}?remote=0",
        remote_frame_url=f"{frame}?remote=1",
    )
