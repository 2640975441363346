from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from archiver.models import SearchResult
from search_api.deps import SearchDep

router = APIRouter(prefix="/api", tags=["search"])


@router.get("/search", response_model=SearchResult, response_model_by_alias=True)
def search(
    service: SearchDep,
    q: Annotated[str, Query(description="Words in Chinese and/or English; all must match")] = "",
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 10,
) -> SearchResult:
    """Full-text search. Chinese is segmented with jieba exactly as the index was, so a word
    matches only where it is a word of the text. Snippets are HTML with matches in ``<em>``."""
    return service.search(q, page=page, size=size)
