"""Folding (traditional → simplified, full-width → half-width), the Chinese n-gram copy and
subject keys (no services)."""

from __future__ import annotations

import pytest

from archiver.text.fold import fold
from archiver.text.highlight import mark, snippet, token_spans
from archiver.text.subjects import subject_key
from archiver.text.tokenizer import get_tokenizer


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("審批", "审批"),
        ("南京市長江大橋", "南京市长江大桥"),
        ("ＡＢＣ１２３　ｘ", "ABC123 x"),
        ("臺灣 頭髮", "台湾 头发"),
        ("plain ascii", "plain ascii"),
    ],
)
def test_fold_keeps_the_length(text: str, folded: str) -> None:
    assert fold(text) == folded
    assert len(fold(text)) == len(text)


def test_tokens_are_folded_and_offsets_stay_on_the_original() -> None:
    tokenizer = get_tokenizer()
    text = "請審批ＪＩＲＡ"
    tokens = list(tokenizer.tokens(text))
    assert {t.term for t in tokens} >= {"审批", "jira"}
    assert {text[t.start : t.end] for t in tokens} >= {"審批", "ＪＩＲＡ"}
    assert tokenizer.terms("審批") == tokenizer.terms("审批")


@pytest.mark.parametrize(
    ("subject", "key", "reply"),
    [
        ("● 有些话不吐不快", "有些话不吐不快", False),
        ("Re: 有些话不吐不快", "有些话不吐不快", True),
        ("回复：● 審批  ＡＢＣ", "审批 abc", True),
        ("Fw: RE: Quarterly Report", "quarterly report", True),
        ("★★ 深圳公司", "深圳公司", False),
    ],
)
def test_subject_key_strips_prefixes_and_bullets(subject: str, key: str, reply: bool) -> None:
    assert subject_key(subject) == (key, reply)


def test_highlights_mark_folded_matches_on_the_original_characters() -> None:
    tokenizer = get_tokenizer()
    subject = "關於審批流程"
    assert mark(subject, token_spans(subject, {"审批"}, tokenizer)) == "關於<em>審批</em>流程"
    # a span is marked wherever it occurs, a word only where it is a word
    text = "南京市長江大橋"
    assert token_spans(text, {"市长"}, tokenizer) == []
    assert token_spans(text, set(), tokenizer, {"市长"}) == [(2, 4)]
    assert "<em>市長</em>" in snippet(text, set(), tokenizer, spans={"市长"})
