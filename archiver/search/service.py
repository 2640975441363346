"""Searching the archive: query text → our query tree → Elasticsearch → hits with highlights.

Two ways to page: `page` (from/size, for people, up to 10,000 results) and `cursor` (a point in
time plus search_after, for walking any number of results in a stable order, e.g. exports).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from archiver.errors import InvalidQuery
from archiver.models import FacetValue, SearchHit, SearchResult
from archiver.ports import Document, SearchIndex
from archiver.search.query.parser import ReadQuery, read_query
from archiver.search.query.to_es import MATCHES, Match, Translation, Translator, known_item
from archiver.text.highlight import MAX_SCAN_CHARS, mark, snippet, token_spans
from archiver.text.tokenizer import Tokenizer

Sort = Literal["relevance", "date", "date_asc"]
HIT_FIELDS = ["subject", "from", "date", "has_attachment", "tags"]
# Shown as snippets, so fetched as bounded prefixes: bodies reach 2 M characters and attachment
# texts 1 M, and a snippet never reads past MAX_SCAN_CHARS. Elasticsearch's highlighter gives a
# field's start (no_match_size) where _source filtering can only give all of it; it marks nothing
# (match_none): the marking is ours, by jieba's tokens on the original characters.
PREFIXES = {
    "type": "unified",
    "highlight_query": {"match_none": {}},
    "max_analyzed_offset": MAX_SCAN_CHARS,
    "fields": {
        field: {
            "number_of_fragments": 1,
            "fragment_size": MAX_SCAN_CHARS,
            "no_match_size": MAX_SCAN_CHARS,
        }
        for field in ("body", "attachment_text")
    },
}
MAX_PAGE_SIZE = 100
MAX_WINDOW = 10_000
PIT_KEEP_ALIVE = "5m"
SORTS: dict[str, list[Any]] = {
    "relevance": [{"_score": "desc"}, {"date": "desc"}],
    "date": [{"date": {"order": "desc", "missing": "_last"}}],
    "date_asc": [{"date": {"order": "asc", "missing": "_last"}}],
}


class SearchRequest(BaseModel):
    q: str = ""
    sort: Sort = "relevance"
    page: int = Field(1, ge=1)
    size: int = Field(10, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = None  # "*" starts a cursor walk; then the previous next_cursor
    facets: bool = False
    match: Match = "span"  # span: Chinese found wherever it occurs; words: jieba words only


class _Cursor(BaseModel):
    pit: str
    after: list[Any]
    q: str
    sort: Sort
    size: int
    match: Match = "span"


def _facet_aggs(timezone: str) -> dict[str, Any]:
    def terms(field: str, size: int = 20) -> dict[str, Any]:
        return {"terms": {"field": field, "size": size}}

    return {
        "tags": terms("tags", 50),
        "departments": terms("departments", 50),
        "sender_domains": terms("from_domain"),
        "has_attachment": terms("has_attachment", 2),
        "sources": terms("source_kinds", 5),
        "dates": {
            "date_histogram": {
                "field": "date",
                "calendar_interval": "month",
                "time_zone": timezone,
                "format": "yyyy-MM",
                "min_doc_count": 1,
            }
        },
    }


def _facets(aggregations: dict[str, Any]) -> dict[str, list[FacetValue]]:
    return {
        name: [
            FacetValue(value=str(b.get("key_as_string", b["key"])).lower(), count=b["doc_count"])
            for b in agg["buckets"]
        ]
        for name, agg in aggregations.items()
    }


def _first_from(doc: Document) -> str:
    senders = doc.get("from") or []
    if not senders:
        return ""
    sender = senders[0]
    name, address = sender.get("name", ""), sender.get("address", "")
    return f"{name} <{address}>" if name else address


class SearchService:
    def __init__(
        self, index: SearchIndex, tokenizer: Tokenizer, timezone: str = "Asia/Shanghai"
    ) -> None:
        self.index = index
        self.tokenizer = tokenizer
        self.timezone = timezone
        self.translators = {m: Translator(tokenizer, timezone, match=m) for m in MATCHES}
        self.translator = self.translators["span"]

    def _translate(self, q: str, match: Match) -> tuple[ReadQuery, Translation]:
        read = read_query(q)
        translation = self.translators[match].translate(read.tree)
        translation.query = known_item(translation.query, q)
        return read, translation

    def search(self, q: str = "", **options: Any) -> SearchResult:
        try:
            request = SearchRequest(q=q, **options)
        except ValidationError as exc:
            raise InvalidQuery(f"invalid search options: {exc.errors()[0]['msg']}") from exc
        if request.cursor and request.cursor != "*":
            return self._next(_decode(request.cursor))
        read, translation = self._translate(request.q, request.match)
        body = _hits_body(translation.query, request.size, request.sort)
        if request.facets:
            body["aggs"] = _facet_aggs(self.timezone)
        if request.cursor == "*":
            pit = self.index.open_pit(PIT_KEEP_ALIVE)
            cursor = _Cursor(
                pit=pit,
                after=[],
                q=request.q,
                sort=request.sort,
                size=request.size,
                match=request.match,
            )
            return _read_as(self._walk(body, cursor, translation), read)
        if request.page * request.size > MAX_WINDOW:
            raise InvalidQuery(
                f"page {request.page} is beyond the first {MAX_WINDOW} results: "
                "use cursor=* to walk further"
            )
        body["from_"] = (request.page - 1) * request.size
        return _read_as(self._result(self.index.search(body), translation), read)

    def _next(self, cursor: _Cursor) -> SearchResult:
        read, translation = self._translate(cursor.q, cursor.match)
        body = _hits_body(translation.query, cursor.size, cursor.sort)
        return _read_as(self._walk(body, cursor, translation), read)

    def _walk(self, body: dict[str, Any], cursor: _Cursor, terms: Translation) -> SearchResult:
        # _shard_doc breaks ties, so the order is total and no hit is seen twice or skipped
        body = {
            **body,
            "pit": {"id": cursor.pit, "keep_alive": PIT_KEEP_ALIVE},
            "sort": [*body["sort"], {"_shard_doc": "asc"}],
        }
        if cursor.after:
            body["search_after"] = cursor.after
        response = self.index.search(body)
        result = self._result(response, terms)
        hits = response["hits"]["hits"]
        pit = response.get("pit_id", cursor.pit)
        if len(hits) < cursor.size:
            self.index.close_pit(pit)
        else:
            result.next_cursor = _encode(
                cursor.model_copy(update={"pit": pit, "after": hits[-1]["sort"]})
            )
        return result

    def _result(self, response: Any, terms: Translation) -> SearchResult:
        aggregations = response.get("aggregations")
        return SearchResult(
            total=response["hits"]["total"]["value"],
            hits=[self._hit(h, terms) for h in response["hits"]["hits"]],
            facets=_facets(aggregations) if aggregations else None,
        )

    def _hit(self, hit: dict[str, Any], translation: Translation) -> SearchHit:
        terms, spans = translation.highlight_terms, translation.highlight_spans
        doc = hit["_source"]
        subject = doc.get("subject") or ""
        prefixes = hit.get("highlight", {})
        body = (prefixes.get("body") or [""])[0]
        attachment_text = (prefixes.get("attachment_text") or [""])[0]
        return SearchHit(
            id=hit["_id"],
            subject=subject,
            subject_highlight=mark(subject, token_spans(subject, terms, self.tokenizer, spans)),
            **{"from": _first_from(doc)},
            date=doc.get("date"),
            snippet=snippet(body, terms, self.tokenizer, spans=spans),
            attachment_snippet=snippet(
                attachment_text, terms, self.tokenizer, fallback=False, spans=spans
            ),
            has_attachment=bool(doc.get("has_attachment")),
            tags=doc.get("tags") or [],
            score=hit.get("_score"),
        )


def _read_as(result: SearchResult, read: ReadQuery) -> SearchResult:
    result.interpreted_as = read.interpreted_as
    result.query_note = read.note
    return result


def _hits_body(query: dict[str, Any], size: int, sort: Sort) -> dict[str, Any]:
    return {
        "query": query,
        "size": size,
        "track_total_hits": True,
        "source_includes": HIT_FIELDS,
        "highlight": PREFIXES,
        "sort": SORTS[sort],
    }


def _encode(cursor: _Cursor) -> str:
    return base64.urlsafe_b64encode(cursor.model_dump_json().encode()).decode()


def _decode(token: str) -> _Cursor:
    try:
        return _Cursor.model_validate(json.loads(base64.urlsafe_b64decode(token.encode())))
    except (ValueError, ValidationError) as exc:
        raise InvalidQuery("invalid cursor: pass back next_cursor exactly as returned") from exc
