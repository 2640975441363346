"""The fast tokenizer (rjieba) must cut exactly like reference jieba, user dictionary too."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archiver.text.tokenizer import Tokenizer, get_tokenizer, han_runs, read_user_dict
from bench.mailgen import generate

MIXED = "请review一下JIRA-1234的patch，南京市长江大桥和中华人民共和国 v2.0 zhang.san@example.com"


def fast_tokenizer() -> Tokenizer:
    return get_tokenizer()


@pytest.fixture(scope="module")
def corpus_texts() -> list[str]:
    return [f"{m.subject}\n{m.body_text}" for m in generate(300, seed=7)]


@pytest.fixture(scope="module")
def user_dict(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dict") / "user.dict"
    path.write_text("# company terms\n凤凰项目组 20 n\n张小喆\n云原生平台 5\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("mode", ["search", "precise"])
def test_rjieba_matches_reference_jieba_on_mixed_corpus(corpus_texts: list[str], mode: str) -> None:
    fast, reference = Tokenizer(backend="rjieba"), Tokenizer(backend="jieba")
    compared = 0
    for text in corpus_texts:
        assert list(fast.tokens(text, mode)) == list(reference.tokens(text, mode))  # type: ignore[arg-type]
        compared += len(text)
    assert compared > 100_000


def test_user_dictionary_applies_to_both_implementations(user_dict: Path) -> None:
    text = "张小喆负责凤凰项目组的云原生平台建设"
    default = Tokenizer().terms(text, "precise")
    fast = Tokenizer(user_dict, backend="rjieba").terms(text, "precise")
    reference = Tokenizer(user_dict, backend="jieba").terms(text, "precise")
    assert fast == reference
    assert {"张小喆", "凤凰项目组", "云原生平台"} <= set(fast)
    assert "凤凰项目组" not in default


def test_user_dictionary_lines_are_parsed(user_dict: Path) -> None:
    assert read_user_dict(user_dict) == [
        ("凤凰项目组", 20, "n"),
        ("张小喆", None, None),
        ("云原生平台", 5, None),
    ]


def test_search_mode_adds_inner_words_and_compound_parts() -> None:
    terms = Tokenizer().terms(MIXED, "search")
    assert {
        "中华人民共和国",
        "共和国",
        "人民",
        "长江大桥",
        "大桥",
        "jira-1234",
        "jira",
        "1234",
        "review",
        "patch",
    } <= set(terms)
    assert "市长" not in terms  # 南京市 / 长江大桥: the characters meet only across a boundary


def test_offsets_point_at_original_text() -> None:
    text = "Ｈｅｌｌｏ 南京市长江大桥 JIRA-1234"
    for token in Tokenizer().tokens(text, "search"):
        original = text[token.start : token.end]
        assert token.term == original.lower() or token.term == "hello"


@pytest.mark.parametrize("mode", ["search", "precise"])
@pytest.mark.parametrize("backend", ["rjieba", "jieba"])
def test_terms_fast_path_equals_the_tokens_with_offsets(
    corpus_texts: list[str], mode: str, backend: str
) -> None:
    tokenizer = Tokenizer(backend=backend)  # type: ignore[arg-type]
    extra = [MIXED, "Ｈｅｌｌｏ ＡＢＣ-１２３ Straße İstanbul ﬁle ①②", "", "。，！", "a_b c__d"]
    for text in corpus_texts + extra:
        assert tokenizer.terms(text, mode) == [t.term for t in tokenizer.tokens(text, mode)]  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["rjieba", "jieba"])
def test_fields_are_both_modes_and_the_han_runs_of_one_pass(
    corpus_texts: list[str], backend: str
) -> None:
    tokenizer = Tokenizer(backend=backend)  # type: ignore[arg-type]
    extra = [
        MIXED,
        "Ｈｅｌｌｏ ＡＢＣ-１２３ Straße İstanbul ﬁle ①②",
        "",
        "。，！",
        "a_b c__d",
        "審批-v2 表",
    ]
    for text in corpus_texts + extra:
        assert tokenizer.fields(text) == (
            tokenizer.index_text(text),
            tokenizer.index_text(text, "precise"),
            han_runs(text),
        )


@given(
    st.text(alphabet=st.sampled_from("ab1-_.@ 　，。審批中华人民共和国ＡＢ１①İß\n"), max_size=60)
)
def test_fields_agree_with_the_three_passes_on_generated_text(text: str) -> None:
    tokenizer = fast_tokenizer()
    assert tokenizer.fields(text) == (
        tokenizer.index_text(text),
        tokenizer.index_text(text, "precise"),
        han_runs(text),
    )
