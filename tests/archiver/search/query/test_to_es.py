"""Translation of query trees to Elasticsearch DSL (no services)."""

from __future__ import annotations

import json

import pytest

from archiver.errors import InvalidQuery
from archiver.search.query.parser import parse_query
from archiver.search.query.to_es import Translator
from archiver.text.tokenizer import get_tokenizer


@pytest.fixture(scope="module")
def translator() -> Translator:
    return Translator(get_tokenizer(), "Asia/Shanghai")


def dsl(translator: Translator, query: str) -> str:
    return json.dumps(translator.translate(parse_query(query)).query, ensure_ascii=False)


def test_chinese_words_are_segmented_like_the_index(translator: Translator) -> None:
    translation = translator.translate(parse_query("长江大桥"))
    assert translation.query["combined_fields"]["query"] == "长江 大桥 长江大桥"
    assert translation.query["combined_fields"]["operator"] == "and"
    assert translation.highlight_terms == {"长江", "大桥", "长江大桥"}


def test_user_text_never_reaches_query_string(translator: Translator) -> None:
    hostile = 'a:* OR _exists_:x "<script>" \\ / ( ) {"json": 1}'
    with pytest.raises(InvalidQuery):  # 'a:' is not a field
        dsl(translator, hostile)
    assert "query_string" not in dsl(translator, '"<script>" \\ / {json} *:*')


def test_phrase_uses_precise_words_with_positions(translator: Translator) -> None:
    query = translator.translate(parse_query('subject:"季度报告 已经 发送"')).query
    assert query == {
        "bool": {
            "should": [{"match_phrase": {"subject_words": "季度 报告 已经 发送"}}],
            "minimum_should_match": 1,
        }
    }


def test_dates_are_in_the_configured_time_zone(translator: Translator) -> None:
    assert '"gte": "2024-01-01T00:00:00+08:00", "lt": "2024-04-01T00:00:00+08:00"' in dsl(
        translator, "date:2024-01..2024-03"
    )
    assert '"lt": "2024-03-01T00:00:00+08:00"' in dsl(translator, "before:2024-03-01")
    assert '"gte": "2024-12-01T00:00:00+08:00"' in dsl(translator, "after:2024-12")
    assert '"gte": "2024-02-29T00:00:00+08:00", "lt": "2024-03-01T00:00:00+08:00"' in dsl(
        translator, "date:2024-02-29"
    )
    utc = Translator(get_tokenizer(), "UTC")
    assert '"lt": "2024-03-01T00:00:00+00:00"' in dsl(utc, "before:2024-03-01")


@pytest.mark.parametrize(
    ("query", "size"),
    [("larger:10M", 10 * 1024**2), ("smaller:500k", 500 * 1024), ("larger:2048", 2048)],
)
def test_sizes(translator: Translator, query: str, size: int) -> None:
    assert f": {size}" in dsl(translator, query)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("larger:big", "expected a size"),
        ("date:2024-13", "month must be in 1..12"),
        ("before:yesterday", "expected a date"),
        ("source:fax", "one of smtp, imap, import"),
        ("has:wings", "one of attachment, parse_error"),
    ],
)
def test_invalid_values_are_clear_errors(translator: Translator, query: str, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message) as error:
        dsl(translator, query)
    assert error.value.position == 0


def test_negated_words_are_not_highlighted(translator: Translator) -> None:
    assert translator.translate(parse_query("合同 -草案")).highlight_terms == {"合同"}
