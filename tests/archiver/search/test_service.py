"""Chinese and English search over generated mail, against the real Elasticsearch."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from archiver.models import Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.search.service import SearchService
from archiver.settings import Settings
from archiver.text.highlight import MAX_SCAN_CHARS
from archiver.text.tokenizer import get_tokenizer
from bench.mailgen import POSITIVE_CASES, PRECISION_CASES, GeneratedMessage, generate
from bench.relevance import WORD_SENTENCES
from tests.conftest import own_archive

pytestmark = pytest.mark.services
CORPUS_SIZE = 600
TAG = re.compile(r"</?em>")
MARKER = "precisioncase"  # in every case message's subject, to search among them only


def _source() -> Source:
    return Source(kind="import", detail="test_search", received_at=datetime.now(UTC))


@pytest.fixture(scope="module")
def archiver(settings: Settings, backends: None) -> Iterator[Archiver]:
    with own_archive(settings, "search") as instance:
        yield instance


@pytest.fixture(scope="module")
def generated(archiver: Archiver) -> list[GeneratedMessage]:
    messages = list(generate(CORPUS_SIZE, seed=11))
    outcomes = archiver.ingest_many([Incoming(m.raw, _source(), str(m.index)) for m in messages])
    assert [o.status for o in outcomes].count("imported") == CORPUS_SIZE
    archiver.index.refresh()
    return messages


@pytest.fixture(scope="module")
def service(archiver: Archiver) -> SearchService:
    return SearchService(archiver.index, get_tokenizer())


def _sha(message: GeneratedMessage) -> str:
    return hashlib.sha256(message.raw).hexdigest()


def test_every_keyword_finds_its_messages_first(
    generated: list[GeneratedMessage], service: SearchService
) -> None:
    holders: dict[str, set[str]] = defaultdict(set)
    for message in generated:
        for keyword in message.keywords:
            holders[keyword].add(_sha(message))
    chinese = [k for k in holders if re.search("[\u4e00-\u9fff]", k)]
    assert len(chinese) > 50 and len(holders) > len(chinese)
    tokenizer = get_tokenizer()
    for keyword in holders:
        # 潜水 is also a word inside the keyword 潜水艇 (search mode indexes both)
        wanted = set(tokenizer.terms(keyword))
        expected = set().union(
            *(ids for other, ids in holders.items() if wanted <= set(tokenizer.terms(other)))
        )
        result = service.search(keyword, size=len(expected))
        top = {hit.id for hit in result.hits}
        assert top == expected, f"{keyword!r}: expected {len(expected)} messages first"


def test_charsets_and_mislabelled_bodies_are_searchable(
    generated: list[GeneratedMessage], service: SearchService
) -> None:
    tricky = [m for m in generated if m.mislabel or m.charset in ("big5", "gb18030")]
    assert {m.charset for m in tricky} >= {"big5", "gb18030"}
    assert any(m.mislabel for m in tricky)
    for message in tricky:
        zh = [k for k in message.keywords if re.search("[\u4e00-\u9fff]", k)]
        for keyword in zh:
            ids = {h.id for h in service.search(keyword, size=50).hits}
            assert _sha(message) in ids, (keyword, message.charset, message.mislabel)


@pytest.fixture(scope="module")
def cases(archiver: Archiver) -> dict[str, str]:
    texts = sorted(
        {text for text, _ in PRECISION_CASES + POSITIVE_CASES} | set(WORD_SENTENCES.values())
    )
    ids: dict[str, str] = {}
    items = []
    for n, text in enumerate(texts):
        raw = (
            f"Message-ID: <case-{n}@example.com>\r\nSubject: {MARKER} {n}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{text}\r\n"
        ).encode()
        ids[text] = hashlib.sha256(raw).hexdigest()
        items.append(Incoming(raw, _source(), text))
    archiver.ingest_many(items)
    archiver.index.refresh()
    return ids


@pytest.mark.parametrize(("text", "query"), PRECISION_CASES)
def test_word_only_mode_does_not_match_across_a_word_boundary(
    cases: dict[str, str], service: SearchService, text: str, query: str
) -> None:
    assert query in text  # a unigram or bigram analyzer would match here
    assert cases[text] in {h.id for h in service.search(MARKER, size=100).hits}
    words = service.search(f"{query} {MARKER}", size=100, match="words")
    assert cases[text] not in {h.id for h in words.hits}


@pytest.mark.parametrize(("text", "query"), PRECISION_CASES)
def test_a_span_across_a_word_boundary_is_found_below_the_word(
    cases: dict[str, str], service: SearchService, text: str, query: str
) -> None:
    ranked = [h.id for h in service.search(f"{query} {MARKER}", size=100).hits]
    assert cases[text] in ranked  # every occurrence is found
    where_a_word = cases[WORD_SENTENCES[query]]
    assert ranked.index(where_a_word) < ranked.index(cases[text])


@pytest.mark.parametrize(("text", "query"), POSITIVE_CASES)
def test_word_matches_where_it_is_a_word(
    cases: dict[str, str], service: SearchService, text: str, query: str
) -> None:
    assert cases[text] in {h.id for h in service.search(f"{query} {MARKER}", size=100).hits}


def test_highlights_show_original_chinese_without_inserted_spaces(
    generated: list[GeneratedMessage], service: SearchService
) -> None:
    message = next(
        m
        for m in generated
        if m.language == "zh"
        and m.charset == "utf-8"
        and m.content_kind == "plain"
        and any(k in m.body_text for k in m.keywords)
    )
    keyword = next(k for k in message.keywords if k in message.body_text)
    hit = next(h for h in service.search(keyword, size=20).hits if h.id == _sha(message))
    assert f"<em>{keyword}</em>" in hit.snippet
    plain = TAG.sub("", hit.snippet).strip("…")
    assert plain in " ".join(message.body_text.split())
    assert not re.search("[\u4e00-\u9fff] [\u4e00-\u9fff]", plain.replace("\n", ""))


def test_mixed_chinese_english_query_requires_every_word(
    generated: list[GeneratedMessage], service: SearchService
) -> None:
    mixed = next(m for m in generated if len(m.keywords) >= 2)
    query = " ".join(mixed.keywords[:2])
    ids = [h.id for h in service.search(query, size=10).hits]
    assert _sha(mixed) in ids
    assert service.search(query + " 不存在的词汇zzqx", size=10).total == 0


def test_snippets_of_long_bodies_come_from_a_bounded_prefix(
    archiver: Archiver, service: SearchService
) -> None:
    # Elasticsearch hands back at most MAX_SCAN_CHARS of a body: a match inside that is shown
    # and marked, as when the whole body was fetched; the response stays bounded.
    filler = "填充文字内容。" * (1_200_000 // 7)
    early = filler[:150_000] + " zhenbao " + filler
    late = filler[: MAX_SCAN_CHARS + 1000] + " zhenbao " + filler
    raws = [
        (
            f"Message-ID: <long-{n}@example.cn>\r\nFrom: a@example.cn\r\nSubject: long {n}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        ).encode()
        + text.encode()
        for n, text in enumerate([early, late])
    ]
    outcomes = archiver.ingest_many([Incoming(raw, _source()) for raw in raws])
    assert [o.status for o in outcomes] == ["imported", "imported"]
    archiver.index.refresh()
    hits = {h.subject: h for h in service.search("zhenbao", size=5).hits}
    assert set(hits) == {"long 0", "long 1"}
    assert "<em>zhenbao</em>" in hits["long 0"].snippet
    assert hits["long 0"].snippet.startswith("…")
    assert hits["long 1"].snippet.startswith("填充文字内容")  # beyond the scan: the start
    assert len(hits["long 1"].snippet) < 400
