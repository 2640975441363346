"""Chinese search on the real Elasticsearch: spans across word boundaries, folding of scripts and
widths, exact subjects first, pasted text searched as text."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from archiver.models import Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.search.service import SearchService
from archiver.settings import Settings
from archiver.text.tokenizer import get_tokenizer
from tests.conftest import own_archive

pytestmark = pytest.mark.services

MESSAGES = {  # label: (subject, body, charset)
    "original": ("● 有些话不吐不快", "有些话不吐不快，今天说出来。", "utf-8"),
    "reply": ("Re: 有些话不吐不快", "有些话不吐不快？我同意。", "utf-8"),
    "forward": ("转发：有些话不吐不快", "转发给你看看：有些话不吐不快。", "utf-8"),
    "mention": ("周报", "会上有人说有些话不吐不快，有些话不吐不快。", "utf-8"),
    "simplified": ("采购流程", "请尽快审批这份采购合同。", "utf-8"),
    "traditional": ("採購流程", "請儘快審批這份採購合同。", "big5"),
    "fullwidth": ("编号", "工单ＡＢＣ１２３已经关闭。", "utf-8"),
    "word": ("视察", "市长今天视察了新建的工厂。", "utf-8"),
    "boundary": ("大桥", "南京市长江大桥建成通车。", "utf-8"),
}


def _raw(label: str, subject: str, body: str, charset: str) -> bytes:
    import base64

    encoded = base64.b64encode(subject.encode()).decode()
    return (
        f"Message-ID: <{label}@chinese.test>\r\nFrom: a@example.cn\r\n"
        f"Subject: =?utf-8?b?{encoded}?=\r\nContent-Type: text/plain; charset={charset}\r\n\r\n"
    ).encode() + f"{body}\r\n".encode(charset)


@pytest.fixture(scope="module")
def archiver(settings: Settings, backends: None) -> Iterator[Archiver]:
    with own_archive(settings, "chinese") as instance:
        yield instance


@pytest.fixture(scope="module")
def ids(archiver: Archiver) -> dict[str, str]:
    now = datetime.now(UTC)
    raws = {label: _raw(label, *fields) for label, fields in MESSAGES.items()}
    items = [
        Incoming(raw, Source(kind="import", detail=label, received_at=now), label)
        for label, raw in raws.items()
    ]
    assert {o.status for o in archiver.ingest_many(items)} == {"imported"}
    archiver.index.refresh()
    return {hashlib.sha256(raw).hexdigest(): label for label, raw in raws.items()}


@pytest.fixture(scope="module")
def service(archiver: Archiver) -> SearchService:
    return SearchService(archiver.index, get_tokenizer())


def labels(service: SearchService, ids: dict[str, str], q: str, **options: str) -> list[str]:
    return [ids[h.id] for h in service.search(q, size=20, **options).hits]


def test_the_exact_subject_ranks_first_and_the_original_above_its_replies(
    service: SearchService, ids: dict[str, str]
) -> None:
    found = labels(service, ids, "有些话不吐不快")
    assert found[0] == "original"
    assert set(found[1:3]) == {"reply", "forward"}
    assert set(found) == {"original", "reply", "forward", "mention"}
    assert labels(service, ids, "● 有些话不吐不快")[0] == "original"


def test_a_pasted_subject_with_a_stray_bracket_is_searched_as_text(
    service: SearchService, ids: dict[str, str]
) -> None:
    result = service.search("Re: 有些话不吐不快)")
    assert result.interpreted_as == "text"
    assert result.query_note and "unknown field 'Re'" in result.query_note
    assert ids[result.hits[0].id] == "original"


def test_a_span_starting_inside_a_word_is_found_unless_words_only(
    service: SearchService, ids: dict[str, str]
) -> None:
    assert set(labels(service, ids, "些话不吐")) == {"original", "reply", "forward", "mention"}
    assert labels(service, ids, "些话不吐", match="words") == []


def test_the_word_ranks_above_the_boundary_match(
    service: SearchService, ids: dict[str, str]
) -> None:
    assert labels(service, ids, "市长") == ["word", "boundary"]
    assert labels(service, ids, "市长", match="words") == ["word"]


@pytest.mark.parametrize("query", ["审批", "審批", "采购合同", "採購合同"])
def test_simplified_and_traditional_find_each_other(
    service: SearchService, ids: dict[str, str], query: str
) -> None:
    assert set(labels(service, ids, query)) == {"simplified", "traditional"}


def test_highlights_stay_on_the_original_characters(
    service: SearchService, ids: dict[str, str]
) -> None:
    hits = {ids[h.id]: h for h in service.search("审批", size=5).hits}
    assert "<em>審批</em>" in hits["traditional"].snippet
    assert "<em>审批</em>" in hits["simplified"].snippet
    wide = service.search("abc123").hits
    assert [ids[h.id] for h in wide] == ["fullwidth"]
    assert "<em>ＡＢＣ１２３</em>" in wide[0].snippet
