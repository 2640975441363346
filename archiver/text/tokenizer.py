"""Chinese/English word segmentation shared by indexing, querying and highlighting.

Text is split into runs of Han characters and everything else. Han runs go to jieba (the
dictionary-and-HMM tokenizer); other runs are cut by our own word pattern, so mixed text such as
``请review一下JIRA-1234`` segments the same way whichever jieba implementation runs. Two
implementations are supported: ``rjieba`` (jieba-rs, ~20x faster, the default) and ``jieba`` (the
reference). tests/archiver/text/test_tokenizer.py proves they produce identical tokens, user
dictionary included.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

from archiver.text.fold import fold

Backend = Literal["rjieba", "jieba"]
Mode = Literal["search", "precise"]

# The block jieba itself treats as Han (jieba.re_han_default without its ASCII part).
HAN_RUN = re.compile("[\u4e00-\u9fd5]+")
# A word outside Han runs: letters/digits of any script, joined by a few in-word separators.
OTHER_WORD = re.compile(r"[^\W_]+(?:[.\-_@'+&][^\W_]+)*")
WORD_PART = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class Token:
    term: str  # normalised: NFKC, lower-cased
    start: int  # character offsets into the original text
    end: int


class _JiebaLike(Protocol):
    def tokenize(self, text: str, mode: str) -> list[tuple[str, int, int]]: ...

    def cut(self, text: str, mode: str) -> list[str]: ...

    def add_word(self, word: str, freq: int | None, tag: str | None) -> None: ...


class _RJieba:
    def __init__(self) -> None:
        import rjieba

        self._impl: Any = rjieba.Jieba()

    def tokenize(self, text: str, mode: str) -> list[tuple[str, int, int]]:
        result: list[tuple[str, int, int]] = self._impl.tokenize(text, mode, True)
        return result

    def cut(self, text: str, mode: str) -> list[str]:
        cut = self._impl.cut_for_search if mode == "search" else self._impl.cut
        words: list[str] = cut(text, True)
        return words

    def add_word(self, word: str, freq: int | None, tag: str | None) -> None:
        self._impl.add_word(word, freq, tag)


class _PyJieba:
    def __init__(self) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._impl: Any = jieba.Tokenizer()

    def tokenize(self, text: str, mode: str) -> list[tuple[str, int, int]]:
        return list(self._impl.tokenize(text, mode=mode, HMM=True))

    def cut(self, text: str, mode: str) -> list[str]:
        cut = self._impl.lcut_for_search if mode == "search" else self._impl.lcut
        words: list[str] = cut(text, HMM=True)
        return words

    def add_word(self, word: str, freq: int | None, tag: str | None) -> None:
        self._impl.add_word(word, freq, tag)


def normalise(term: str) -> str:
    if term.isascii():  # NFKC leaves ASCII alone; most non-Han words are ASCII
        return term.lower()
    return unicodedata.normalize("NFKC", term).lower()


def read_user_dict(path: Path) -> list[tuple[str, int | None, str | None]]:
    """Parse a jieba user dictionary: ``word [freq] [tag]`` per line, ``#`` comments."""
    entries: list[tuple[str, int | None, str | None]] = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        tag = parts[-1] if len(parts) > 1 and not parts[-1].isdigit() else None
        entries.append((parts[0], freq, tag))
    return entries


class IndexedText(NamedTuple):
    """A text as the index takes it: the *_terms, *_words and *_han fields."""

    terms: str
    words: str
    han: list[str]


class Tokenizer:
    def __init__(self, user_dict: Path | None = None, backend: Backend = "rjieba") -> None:
        self.backend = backend
        self.user_dict = user_dict

    @cached_property
    def _jieba(self) -> _JiebaLike:
        """The dictionary, loaded at the first cut (~0.5 s, ~57 MB): a process that holds a
        tokenizer only to translate queries it may never meet (an import's tagging rules and
        retention policies, when there are none) never loads it."""
        impl: _JiebaLike = _RJieba() if self.backend == "rjieba" else _PyJieba()
        if self.user_dict is not None:
            for word, freq, tag in read_user_dict(self.user_dict):
                impl.add_word(word, freq, tag)
        return impl

    def load(self) -> Tokenizer:
        """The dictionary loaded now (a fork server, before its children fork)."""
        assert self._jieba is not None
        return self

    def add_word(self, word: str, freq: int | None = None, tag: str | None = None) -> None:
        self._jieba.add_word(word, freq, tag)

    def tokens(self, text: str, mode: Mode = "search") -> Iterator[Token]:
        """Tokens with offsets into text. Search mode adds the dictionary words inside long words
        (中华人民共和国 → 中华, 华人, …) and the parts of compounds (JIRA-1234 → jira, 1234).
        Terms are of the folded text (審批 → 审批); offsets are the same in both."""
        text = fold(text)
        pos = 0
        for han in HAN_RUN.finditer(text):
            yield from self._other_tokens(text, pos, han.start(), mode)
            base = han.start()
            jmode = "search" if mode == "search" else "default"
            for word, start, end in self._jieba.tokenize(han.group(), jmode):
                yield Token(word, base + start, base + end)
            pos = han.end()
        yield from self._other_tokens(text, pos, len(text), mode)

    def _other_tokens(self, text: str, start: int, end: int, mode: Mode) -> Iterator[Token]:
        if start >= end:
            return
        for word in OTHER_WORD.finditer(text, start, end):
            parts = list(WORD_PART.finditer(word.group()))
            if len(parts) > 1 and mode == "search":
                yield Token(normalise(word.group()), word.start(), word.end())
            for part in parts:
                yield Token(
                    normalise(part.group()), word.start() + part.start(), word.start() + part.end()
                )

    def terms(self, text: str, mode: Mode = "search") -> list[str]:
        """The terms of tokens(text, mode), without offsets: the indexing hot path, about
        three times faster (tests/archiver/text/test_tokenizer.py checks they agree)."""
        text = fold(text)
        terms: list[str] = []
        jmode = "search" if mode == "search" else "default"
        pos = 0
        for han in HAN_RUN.finditer(text):
            if han.start() > pos:
                self._other_terms(text[pos : han.start()], mode, terms)
            terms += self._jieba.cut(han.group(), jmode)
            pos = han.end()
        if pos < len(text):
            self._other_terms(text[pos:], mode, terms)
        return terms

    @staticmethod
    def _other_terms(text: str, mode: Mode, terms: list[str]) -> None:
        for word in OTHER_WORD.findall(text):
            if word.isalnum():
                terms.append(normalise(word))
                continue
            parts = WORD_PART.findall(word)
            if len(parts) > 1 and mode == "search":
                terms.append(normalise(word))
            terms += [normalise(part) for part in parts]

    def fields(self, text: str) -> IndexedText:
        """index_text in both modes and han_runs of one text, folded and split into runs once
        (three passes over a body cost a document build a sixth more)."""
        text = fold(text)
        search: list[str] = []
        precise: list[str] = []
        runs: list[str] = []
        pos = 0
        for han in HAN_RUN.finditer(text):
            if han.start() > pos:
                self._other_terms_both(text[pos : han.start()], search, precise)
            run = han.group()
            runs.append(run)
            search += self._jieba.cut(run, "search")
            precise += self._jieba.cut(run, "default")
            pos = han.end()
        if pos < len(text):
            self._other_terms_both(text[pos:], search, precise)
        return IndexedText(" ".join(search), " ".join(precise), runs)

    @staticmethod
    def _other_terms_both(text: str, search: list[str], precise: list[str]) -> None:
        for word in OTHER_WORD.findall(text):
            if word.isalnum():
                term = normalise(word)
                search.append(term)
                precise.append(term)
                continue
            parts = [normalise(part) for part in WORD_PART.findall(word)]
            if len(parts) > 1:
                search.append(normalise(word))
            search += parts
            precise += parts

    def index_text(self, text: str, mode: Mode = "search") -> str:
        """Tokens joined by spaces, for a field analysed by Elasticsearch's core whitespace
        analyzer: Elasticsearch then indexes exactly jieba's words."""
        return " ".join(self.terms(text, mode))


def han_runs(text: str) -> list[str]:
    """The runs of Han characters of the folded text, in order: the index's ``*_han`` copies.
    Sent as an array, they are analysed by the core standard analyzer into one term per
    character, and Elasticsearch's position gap between array values keeps a phrase from
    matching across two runs (南京市。长江 does not hold 市长)."""
    return HAN_RUN.findall(fold(text))


@lru_cache(maxsize=4)
def get_tokenizer(user_dict: Path | None = None, backend: Backend = "rjieba") -> Tokenizer:
    """One tokenizer per process and dictionary: loading the dictionary takes ~0.5 s."""
    return Tokenizer(user_dict, backend)


def preload_tokenizer(user_dict: Path | None = None) -> None:
    """An analyser process's initializer: its dictionary is loaded before its first message."""
    get_tokenizer(user_dict).load()
