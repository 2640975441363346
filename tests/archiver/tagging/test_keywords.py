"""The compact IDF table gives every word jieba's own IDF, and unknown words its median."""

from __future__ import annotations

import jieba.analyse
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from archiver.tagging.keywords import idf_table

JIEBA = jieba.analyse.default_tfidf


def _same_buffer_twins() -> list[str]:
    """For each word of the table held as 2-byte characters, the 1-byte-character string with
    the same bytes (U+6130 "愰" and "0a"): CPython's str hash reads that buffer."""
    return [
        word.encode("utf-16-le").decode("latin-1")
        for word in JIEBA.idf_freq
        if 0xFF < max(map(ord, word)) <= 0xFFFF
    ]


def test_every_word_has_jiebas_idf_and_the_median_is_jiebas() -> None:
    table = idf_table()
    ours = {word: table.get(word) for word in JIEBA.idf_freq}
    wrong = {word: idf for word, idf in ours.items() if idf != JIEBA.idf_freq[word]}
    assert not wrong
    assert table.median == JIEBA.median_idf


def test_strings_sharing_a_table_words_bytes_are_not_that_word() -> None:
    twins = _same_buffer_twins()
    assert len(twins) > 100_000
    table = idf_table()
    wrong = [t for t in twins if table.get(t) != JIEBA.idf_freq.get(t, JIEBA.median_idf)]
    assert not wrong


@pytest.mark.parametrize("word", ["0a", "kubernetes", "", " ", "不存在的词组合"])
def test_known_outsiders_get_the_median(word: str) -> None:
    assert word not in JIEBA.idf_freq
    assert idf_table().get(word) == JIEBA.median_idf


@given(st.text(alphabet=st.characters(categories=["Lo", "Ll", "Nd"]), min_size=1, max_size=8))
@example("0a")
def test_a_word_gets_jiebas_idf_or_the_median(word: str) -> None:
    expected = JIEBA.idf_freq.get(word, JIEBA.median_idf)
    assert idf_table().get(word) == expected
