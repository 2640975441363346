"""Hostile and arbitrary query text: a tree or a positioned InvalidQuery, never anything else;
and whatever tree the parser accepts translates without error into a query Elasticsearch takes
(no services: the depth Elasticsearch refuses is checked here, the real refusal in
tests/archiver/search/test_service.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from archiver.errors import InvalidQuery
from archiver.search.query.parser import FIELDS, MAX_NESTING, MAX_QUERY_CHARS, parse_query
from archiver.search.query.to_es import Translator
from archiver.search.query.tree import And, Word
from archiver.text.tokenizer import get_tokenizer

ES_MAX_BOOL_DEPTH = 29  # Elasticsearch 9 refuses a bool nested 30 deep

# Pieces of the query language mixed with arbitrary text, so the generator reaches the parser's
# and the translator's corners (fields with odd values, operators, nesting) and not only words.
_PIECES = st.sampled_from(
    ["(", ")", '"', ":", "-", " ", "OR", "AND", "NOT", "*", "?", "..", "@", "/", "<", ">"]
    + [f"{f}:" for f in sorted(FIELDS)]
    + ["9999", "0000", "2024-02-30", "1e400", "9" * 30, "attachment", "smtp", "长江大桥", "\x00"]
)
QUERIES = st.lists(st.one_of(_PIECES, st.text(max_size=12)), max_size=40).map("".join)


@pytest.fixture(scope="module")
def translator() -> Translator:
    return Translator(get_tokenizer(), "Asia/Shanghai")


def bool_depth(query: Any) -> int:
    """How deeply bool queries nest in query (iteratively: the input may be deep)."""
    deepest, stack = 0, [(query, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                stack.append((value, depth + (key == "bool")))
        elif isinstance(node, list):
            stack.extend((item, depth) for item in node)
        deepest = max(deepest, depth)
    return deepest


def parse_or_reject(query: str) -> Any:
    try:
        return parse_query(query)
    except InvalidQuery as exc:
        assert exc.position is not None, f"{exc} has no position"
        assert 0 <= exc.position <= len(query)
        return exc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), QUERIES))
@example("(" * 5000)
@example(")" * 5000)
@example("- " * 5000)
@example("NOT " * 5000)
@example("subject:(" * 5000)
@example('"' * 5001)
@example("x" * (MAX_QUERY_CHARS + 1))
@example("date:9999")
@example("larger:" + "9" * 400)
def test_any_text_parses_or_is_a_positioned_invalid_query(
    translator: Translator, query: str
) -> None:
    tree = parse_or_reject(query)
    if isinstance(tree, InvalidQuery):
        return
    try:
        translation = translator.translate(tree)
    except InvalidQuery as exc:  # values are checked in translation (dates, sizes, sources)
        assert exc.position is not None
        return
    assert bool_depth(translation.query) <= ES_MAX_BOOL_DEPTH


def _deepest(opener: str, leaf: str, levels: int) -> str:
    return opener * levels + leaf + ")" * opener.count("(") * levels


DEEPEST = [
    _deepest("a OR (b ", "participant:example.com", MAX_NESTING),
    _deepest("NOT (", "from:example.com", MAX_NESTING // 2),
    _deepest("- ", "to:*@example.com", MAX_NESTING),
    _deepest("x (y OR ", '"长江 大桥"', MAX_NESTING),
]


@pytest.mark.parametrize("query", DEEPEST)
def test_the_deepest_allowed_queries_stay_within_elasticsearch_limits(
    translator: Translator, query: str
) -> None:
    assert bool_depth(translator.translate(parse_query(query)).query) <= ES_MAX_BOOL_DEPTH


@pytest.mark.parametrize(("opener", "closer"), [("(", ")"), ("NOT ", ""), ("-(", ")")])
def test_one_level_deeper_is_a_positioned_error(opener: str, closer: str) -> None:
    levels = MAX_NESTING // (len(opener) if opener == "-(" else 1)  # -( is a NOT and a (
    query = opener * (levels + 1) + "a" + closer * (levels + 1)
    with pytest.raises(InvalidQuery, match="too deeply nested") as error:
        parse_query(query)
    assert error.value.position == len(opener) * levels


def test_a_dash_with_a_space_after_it_is_a_dash_not_a_not() -> None:
    assert parse_query("- " * (MAX_NESTING + 1) + "a") == And(
        (*[Word("-")] * (MAX_NESTING + 1), Word("a"))
    )


def test_a_too_long_query_says_how_long_it_may_be() -> None:
    with pytest.raises(InvalidQuery, match=f"at most {MAX_QUERY_CHARS}") as error:
        parse_query("a " * MAX_QUERY_CHARS)
    assert error.value.position == MAX_QUERY_CHARS
