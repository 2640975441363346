"""Translation of query trees to Elasticsearch DSL (no services)."""

from __future__ import annotations

import json

import pytest

from archiver.errors import InvalidQuery
from archiver.search.query.parser import parse_query
from archiver.search.query.to_es import WORD_BONUS, Translator, known_item
from archiver.text.tokenizer import get_tokenizer


@pytest.fixture(scope="module")
def translator() -> Translator:
    return Translator(get_tokenizer(), "Asia/Shanghai")


@pytest.fixture(scope="module")
def words_only() -> Translator:
    return Translator(get_tokenizer(), "Asia/Shanghai", match="words")


def dsl(translator: Translator, query: str) -> str:
    return json.dumps(translator.translate(parse_query(query)).query, ensure_ascii=False)


def test_chinese_words_are_segmented_like_the_index(words_only: Translator) -> None:
    translation = words_only.translate(parse_query("长江大桥"))
    assert translation.query["combined_fields"]["query"] == "长江 大桥 长江大桥"
    assert translation.query["combined_fields"]["operator"] == "and"
    assert translation.highlight_terms == {"长江", "大桥", "长江大桥"}
    assert translation.highlight_spans == set()


def test_chinese_matches_as_a_span_of_bigrams_and_ranks_words_first(
    translator: Translator,
) -> None:
    translation = translator.translate(parse_query("長江大橋"))  # folded to 长江大桥
    query = translation.query["bool"]
    phrases = query["must"][0]["bool"]["should"]
    assert {"match_phrase": {"body_han": {"query": "长江大桥", "boost": 0.01}}} in phrases
    bonus, score = query["should"]
    assert bonus["constant_score"]["boost"] == WORD_BONUS
    assert bonus["constant_score"]["filter"] == score
    assert score["combined_fields"]["query"] == "长江 大桥 长江大桥"
    assert translation.highlight_spans == {"长江大桥"}


def test_one_chinese_character_is_a_term(translator: Translator) -> None:
    should = translator.translate(parse_query("subject:市")).query["bool"]["must"][0]
    assert should == {"term": {"subject_han": {"value": "市", "boost": 0.01}}}


def test_mixed_words_keep_other_parts_as_words(translator: Translator) -> None:
    must = translator.translate(parse_query("请review一下")).query["bool"]["must"]
    assert len(must) == 3  # 请, 一下, review
    assert must[-1]["combined_fields"]["query"] == "review"


def test_a_negated_span_excludes_every_occurrence(translator: Translator) -> None:
    translation = translator.translate(parse_query("合同 -草案"))
    excluded = translation.query["bool"]["must"][1]["bool"]["must_not"][0]
    assert {"match_phrase": {"body_han": {"query": "草案", "boost": 0.01}}} in excluded["bool"][
        "should"
    ]
    assert translation.highlight_spans == {"合同"}


def test_the_exact_subject_ranks_first_and_the_original_above_replies() -> None:
    query = known_item({"match_all": {}}, "● 有些话不吐不快")
    exact, original = query["bool"]["should"]
    assert exact["constant_score"]["filter"] == {"term": {"subject_key": "有些话不吐不快"}}
    assert original["constant_score"]["boost"] < exact["constant_score"]["boost"]
    assert {"term": {"subject_is_reply": True}} in original["constant_score"]["filter"]["bool"][
        "must_not"
    ]
    assert known_item({"match_all": {}}, "  ") == {"match_all": {}}


def test_user_text_never_reaches_query_string(translator: Translator) -> None:
    hostile = 'a:* OR _exists_:x "<script>" \\ / ( ) {"json": 1}'
    with pytest.raises(InvalidQuery):  # 'a:' is not a field
        dsl(translator, hostile)
    assert "query_string" not in dsl(translator, '"<script>" \\ / {json} *:*')


def test_phrase_uses_precise_words_with_positions(words_only: Translator) -> None:
    query = words_only.translate(parse_query('subject:"季度报告 已经 发送"')).query
    assert query == {
        "bool": {
            "should": [{"match_phrase": {"subject_words": "季度 报告 已经 发送"}}],
            "minimum_should_match": 1,
        }
    }


def test_a_chinese_phrase_also_matches_its_characters_in_a_row(translator: Translator) -> None:
    should = translator.translate(parse_query('subject:"季度报告 已经"')).query["bool"]["should"]
    assert should == [
        {"match_phrase": {"subject_words": "季度 报告 已经"}},
        {"match_phrase": {"subject_han": {"query": "季度报告已经", "boost": 0.01}}},
    ]


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


def test_holds_are_exact_filters_on_the_hold_ids_a_message_carries(
    translator: Translator,
) -> None:
    # hold ids are keywords: matched exactly, never analysed, and no part of the score
    by_id = {"bool": {"filter": [{"term": {"holds": "hold-1a2b3c4d"}}]}}
    assert translator.translate(parse_query("hold:hold-1a2b3c4d")).query == by_id
    held = {"bool": {"filter": [{"exists": {"field": "holds"}}]}}
    assert translator.translate(parse_query("has:hold")).query == held
    assert translator.translate(parse_query("HAS:Hold")).query == held
    assert translator.translate(parse_query("-has:hold")).query == {"bool": {"must_not": [held]}}
    both = translator.translate(parse_query("hold:hold-1a2b3c4d 合同")).query["bool"]["must"]
    assert both[0] == by_id
    assert translator.translate(parse_query("hold:hold-1a2b3c4d")).highlight_terms == set()


def test_hold_needs_a_value(translator: Translator) -> None:
    with pytest.raises(InvalidQuery, match="expected a value after 'hold:'") as error:
        dsl(translator, "hold:")
    assert error.value.position == 5


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("larger:big", "expected a size"),
        ("date:2024-13", "month must be in 1..12"),
        ("before:yesterday", "expected a date"),
        ("source:fax", "one of smtp, imap, import"),
        ("has:wings", "one of attachment, parse_error, hold"),
        ("has:holds", "one of attachment, parse_error, hold"),
    ],
)
def test_invalid_values_are_clear_errors(translator: Translator, query: str, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message) as error:
        dsl(translator, query)
    assert error.value.position == 0


def test_negated_words_are_not_highlighted(translator: Translator, words_only: Translator) -> None:
    assert words_only.translate(parse_query("合同 -草案")).highlight_terms == {"合同"}
    spans = translator.translate(parse_query("合同 -草案 -draft review"))
    assert (spans.highlight_terms, spans.highlight_spans) == ({"review"}, {"合同"})
