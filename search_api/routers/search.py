from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from archiver import bootstrap
from archiver.access.model import Permission
from archiver.audit.records import AuditAction
from archiver.models import SearchResult
from archiver.search.query.to_es import Match
from archiver.search.service import MAX_PAGE_SIZE, Sort
from search_api.audit import AuditedRoute, RequestAudit, audited
from search_api.deps import IndexDep, SettingsDep, scoped_index

router = APIRouter(prefix="/api", tags=["search"], route_class=AuditedRoute)
Searching = Annotated[RequestAudit, Depends(audited(AuditAction.SEARCH, Permission.SEARCH))]

QUERY_HELP = """Query language (full reference in README.md, "Search syntax"):
free words in Chinese and/or English (all must match; Chinese text is found wherever it occurs,
messages where it is a whole word first; `match=words`: jieba words only), `"exact phrase"`,
`AND` (default) / `OR` / `NOT`, `-word`, parentheses, and fields:
`from:` `to:` `cc:` `bcc:` `envelope:` `participant:` (address, `*@example.com`, domain or name),
`subject:` `body:` `attachment:` `filename:`, `tag:` `department:` `folder:` `source:`
`message-id:`, `has:attachment`, `has:hold` (under a legal hold), `hold:<id>`, `larger:10M`
`smaller:500K`, `before:2024-03-01` `after:2024-01` `date:2024-01..2024-03` (dates in the
configured time zone). A syntax error is a 400 with the position and what was expected; text
that is not valid syntax (a pasted subject with a stray bracket, quote or colon) is searched as
text, and `interpreted_as`/`query_note` say so."""


@router.get("/search", response_model=SearchResult, response_model_by_alias=True)
def search(
    audit: Searching,
    index: IndexDep,
    settings: SettingsDep,
    q: Annotated[str, Query(description=QUERY_HELP)] = "",
    sort: Annotated[Sort, Query(description="relevance, date (newest first) or date_asc")] = (
        "relevance"
    ),
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 10,
    cursor: Annotated[
        str | None,
        Query(
            description="`*` starts a stable walk over all results (any number); then pass "
            "back each response's next_cursor"
        ),
    ] = None,
    facets: Annotated[
        bool,
        Query(
            description="add counts by tag, department, sender domain, month, attachment and source"
        ),
    ] = False,
    match: Annotated[
        Match,
        Query(
            description="span: Chinese text wherever it occurs, across word boundaries (whole "
            "words ranked first); words: only where jieba makes it a word"
        ),
    ] = "span",
) -> SearchResult:
    """Full-text search, within the mail the caller may read: hits, totals and facet counts
    alike. Snippets and subject_highlight are HTML with matches in `<em>`."""
    audit.details.update(
        q=q, sort=sort, page=page, cursor=cursor is not None, facets=facets, match=match
    )
    service = bootstrap.search_service(settings, scoped_index(index, audit, Permission.SEARCH))
    result = service.search(
        q, sort=sort, page=page, size=size, cursor=cursor, facets=facets, match=match
    )
    # who saw what: the ids shown, not just the count
    audit.details.update(total=result.total, hits=[h.id for h in result.hits])
    return result
