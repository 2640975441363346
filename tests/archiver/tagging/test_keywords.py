"""The compact IDF table gives every word jieba's own IDF, and unknown words its median."""

from __future__ import annotations

import jieba.analyse
from hypothesis import given
from hypothesis import strategies as st

from archiver.tagging.keywords import idf_table

JIEBA = jieba.analyse.default_tfidf


def test_every_word_has_jiebas_idf_and_the_median_is_jiebas() -> None:
    table = idf_table()
    wrong = {
        word: table.get(word) for word, idf in JIEBA.idf_freq.items() if table.get(word) != idf
    }
    assert not wrong
    assert table.median == JIEBA.median_idf


@given(st.text(alphabet=st.characters(categories=["Lo", "Ll", "Nd"]), min_size=1, max_size=8))
def test_a_word_outside_the_table_gets_the_median(word: str) -> None:
    expected = JIEBA.idf_freq.get(word, JIEBA.median_idf)
    assert idf_table().get(word) == expected
