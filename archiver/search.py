"""Searching the archive: query text → Elasticsearch query → hits with highlighted snippets."""

from __future__ import annotations

from typing import Any

from archiver.highlight import mark, snippet, token_spans
from archiver.models import SearchHit, SearchResult
from archiver.ports import Document, SearchIndex
from archiver.segment import Segmenter

# Segmented fields and their weights; all hold jieba search-mode tokens.
TEXT_FIELDS = ["subject_terms^3", "attachment_names_terms^2", "names_terms^2", "body_terms"]
HIT_FIELDS = ["subject", "from", "date", "body"]
MAX_PAGE_SIZE = 100
MAX_WINDOW = 10_000


def text_query(terms: list[str]) -> dict[str, Any]:
    """Every term must occur, in any of the text fields."""
    if not terms:
        return {"match_all": {}}
    return {"combined_fields": {"query": " ".join(terms), "fields": TEXT_FIELDS, "operator": "and"}}


def _first_from(doc: Document) -> str:
    senders = doc.get("from") or []
    if not senders:
        return ""
    sender = senders[0]
    name, address = sender.get("name", ""), sender.get("address", "")
    return f"{name} <{address}>" if name else address


class SearchService:
    def __init__(self, index: SearchIndex, segmenter: Segmenter) -> None:
        self.index = index
        self.segmenter = segmenter

    def search(self, q: str, *, page: int = 1, size: int = 10) -> SearchResult:
        size = max(1, min(size, MAX_PAGE_SIZE))
        page = max(1, page)
        terms = list(dict.fromkeys(self.segmenter.terms(q)))
        body: dict[str, Any] = {
            "query": text_query(terms),
            "from_": min((page - 1) * size, MAX_WINDOW - size),
            "size": size,
            "track_total_hits": True,
            "source_includes": HIT_FIELDS,
        }
        if not terms:
            body["sort"] = [{"date": "desc"}, {"id": "asc"}]
        response = self.index.search(body)
        wanted = set(terms)
        hits = [self._hit(h, wanted) for h in response["hits"]["hits"]]
        return SearchResult(total=response["hits"]["total"]["value"], hits=hits)

    def _hit(self, hit: dict[str, Any], terms: set[str]) -> SearchHit:
        doc = hit["_source"]
        subject = doc.get("subject") or ""
        return SearchHit(
            id=hit["_id"],
            subject=subject,
            subject_highlight=mark(subject, token_spans(subject, terms, self.segmenter)),
            **{"from": _first_from(doc)},
            date=doc.get("date"),
            snippet=snippet(doc.get("body") or "", terms, self.segmenter),
            score=hit.get("_score"),
        )
