"""The query language: parse trees and positioned syntax errors (no services)."""

from __future__ import annotations

import pytest

from archiver.errors import InvalidQuery
from archiver.search.query.parser import parse_query
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
