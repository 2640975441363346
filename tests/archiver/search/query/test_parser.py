"""The query language: parse trees and positioned syntax errors (no services)."""

from __future__ import annotations

import pytest

from archiver.errors import InvalidQuery, QueryNotSyntax
from archiver.search.query.parser import ReadQuery, parse_query, read_query
from archiver.search.query.tree import And, Field, Not, Or, Phrase, Word


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("", None),
        ("合同", Word("合同")),
        ("合同 审批", And((Word("合同"), Word("审批")))),
        ("合同 AND 审批", And((Word("合同"), Word("审批")))),
        ("合同 OR 报价", Or((Word("合同"), Word("报价")))),
        ("a b OR c", Or((And((Word("a"), Word("b"))), Word("c")))),
        ("-spam", Not(Word("spam"))),
        ("NOT spam", Not(Word("spam"))),
        ("jira-1234", Word("jira-1234")),  # a hyphen inside a word does not negate
        ('"长江大桥 建设"', Phrase("长江大桥 建设")),
        ("(a OR b) c", And((Or((Word("a"), Word("b"))), Word("c")))),
        ("from:*@example.com", Field("from", "*@example.com")),
        ('subject:"季度 报告"', Field("subject", "季度 报告", phrase=True)),
        ("-tag:urgency/high", Not(Field("tag", "urgency/high", pos=1))),
        ("subject:(报价 -草案)", And((Field("subject", "报价"), Not(Field("subject", "草案"))))),
        ("MESSAGE-ID:<a@b>", Field("message-id", "<a@b>")),
        ("hold:hold-1a2b3c4d", Field("hold", "hold-1a2b3c4d")),  # the id's hyphen is kept
        ("has:hold", Field("has", "hold")),
        ("-has:hold 合同", And((Not(Field("has", "hold", pos=1)), Word("合同")))),
        ("see http://example.com/x", And((Word("see"), Word("http://example.com/x")))),
    ],
)
def test_parse_tree(query: str, tree: object) -> None:
    assert parse_query(query) == tree


@pytest.mark.parametrize(
    ("query", "position", "expected"),
    [
        ('"open phrase', 0, 'expected a closing "'),
        ("a OR (b c", 9, "expected ')'"),
        ("a AND", 5, "expected a term"),
        (")", 0, "expected a term"),
        ("a )", 2, "unexpected ')'"),
        ("from:", 5, "expected a value after 'from:'"),
        ("from: x", 5, "expected a value after 'from:'"),
        ("hold:", 5, "expected a value after 'hold:'"),
        ("color:red", 0, "unknown field 'color'"),
        ("a OR", 4, "expected a term"),
    ],
)
def test_syntax_errors_say_where_and_what_was_expected(
    query: str, position: int, expected: str
) -> None:
    with pytest.raises(InvalidQuery) as error:
        parse_query(query)
    assert error.value.position == position
    assert expected in str(error.value)


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("Re: 有些话不吐不快)", Word("有些话不吐不快")),  # a pasted reply subject
        ('"open', Word("open")),
        ("a OR (b", Or((Word("a"), Word("b")))),
        ("colour:red", Word("colour:red")),
        ("合同 from:example.cn )", And((Word("合同"), Field("from", "example.cn", pos=3)))),
        ("报告 () OR", And((Word("报告"), Word("OR")))),  # still not syntax: every piece a word
        # a real subject: once it is text, a field name without its value is a word
        (
            "Re: [SAtalk] From: and To: are my address",
            And(tuple(Word(w) for w in ("[SAtalk]", "from", "and", "to", "are", "my", "address"))),
        ),
    ],
)
def test_text_that_is_not_syntax_is_read_as_text(query: str, tree: object) -> None:
    with pytest.raises(QueryNotSyntax):
        parse_query(query)
    read = read_query(query)
    assert read.tree == tree
    assert read.interpreted_as == "text"
    assert read.note is not None and read.note.startswith("searched as text: ")


def test_valid_queries_are_read_as_the_query_language() -> None:
    read = read_query("合同 -草案")
    assert read == ReadQuery(And((Word("合同"), Not(Word("草案")))), "query")


@pytest.mark.parametrize("query", ["from:", "合同 (from: x)", "larger:", "(" * 12 + "a"])
def test_operator_mistakes_stay_positioned_errors(query: str) -> None:
    with pytest.raises(InvalidQuery) as error:
        read_query(query)
    assert not isinstance(error.value, QueryNotSyntax)
    assert error.value.position is not None
