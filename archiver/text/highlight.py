"""Highlights over the original text, so Chinese shows without the spaces the index inserts.

A query term is marked only where it is a token of the text, as the index saw it: 市长 is not marked
in 南京市长江大桥 (南京市 / 长江大桥), matching what the search itself matched. A span (a Chinese
query string searched wherever it occurs, archiver/search/query/to_es.py) is marked wherever it
occurs. Matching is on the folded text (審批 ↔ 审批, ＡＢＣ ↔ abc); folding keeps every offset, so
the marks are on the original characters.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from functools import lru_cache

from archiver.text.fold import fold
from archiver.text.tokenizer import HAN_RUN, Tokenizer

MAX_SCAN_CHARS = 200_000
_HAN_CHAR = re.compile("[\u4e00-\u9fd5]")


@lru_cache(maxsize=512)
def _word_pattern(term: str) -> re.Pattern[str]:
    # a letter or digit next to the term continues the word; a Han character does not (the
    # tokenizer cuts Han runs first: 工单ABC123 holds the word abc123)
    edge = "[^\\W_\u4e00-\u9fd5]"
    return re.compile(rf"(?<!{edge}){re.escape(term)}(?!{edge})", re.IGNORECASE)


Needle = tuple[str, bool]  # a folded term, and whether it matches anywhere (a span)


def _needles(terms: set[str], spans: set[str] | frozenset[str]) -> set[Needle]:
    return {(t, False) for t in terms} | {(s, True) for s in spans if s}


def token_spans(
    text: str,
    terms: set[str],
    tokenizer: Tokenizer,
    spans: set[str] | frozenset[str] = frozenset(),
) -> list[tuple[int, int]]:
    """Spans of text where one of terms occurs as a token, or one of spans occurs at all."""
    folded = fold(text)
    han_tokens: dict[int, set[tuple[str, int, int]]] = {}
    found = {
        span
        for needle in _needles(terms, spans)
        for span in _occurrences(folded, needle, 0, tokenizer, han_tokens)
    }
    return _without_overlaps(sorted(found))


def _occurrences(
    text: str,
    needle: Needle,
    pos: int,
    tokenizer: Tokenizer,
    han_tokens: dict[int, set[tuple[str, int, int]]],
) -> Iterator[tuple[int, int]]:
    """Spans where term occurs as a token (or at all, for a span), in order, from pos on;
    lazily, so a caller that needs only the first ones does not scan (and segment) the whole
    text. text is folded."""
    term, anywhere = needle
    if anywhere:
        start = text.find(term, pos)
        while start != -1:
            yield start, start + len(term)
            start = text.find(term, start + 1)
    elif _HAN_CHAR.search(term):
        start = text.find(term, pos)
        while start != -1:
            if _is_han_token(text, term, start, tokenizer, han_tokens):
                yield start, start + len(term)
            start = text.find(term, start + 1)
    else:
        yield from (m.span() for m in _word_pattern(term).finditer(text, pos))


def _first_start(
    text: str,
    needles: set[Needle],
    tokenizer: Tokenizer,
    han_tokens: dict[int, set[tuple[str, int, int]]],
) -> int | None:
    """Where the first token of terms starts (token_spans(...)[0][0]), or None."""
    firsts = (next(_occurrences(text, n, 0, tokenizer, han_tokens), None) for n in needles)
    return min((span[0] for span in firsts if span is not None), default=None)


def _spans_within(
    text: str,
    needles: set[Needle],
    lo: int,
    hi: int,
    tokenizer: Tokenizer,
    han_tokens: dict[int, set[tuple[str, int, int]]],
) -> list[tuple[int, int]]:
    """token_spans(text, ...) clipped to [lo, hi), scanning only around that window."""
    spans: set[tuple[int, int]] = set()
    for needle in needles:
        # a match is len(term) long (case-insensitive matching never changes lengths)
        for start, end in _occurrences(
            text, needle, max(0, lo - len(needle[0]) + 1), tokenizer, han_tokens
        ):
            if start >= hi:
                break
            if end > lo:
                spans.add((max(start, lo), min(end, hi)))
    return _without_overlaps(sorted(spans))


def _is_han_token(
    text: str,
    term: str,
    start: int,
    tokenizer: Tokenizer,
    cache: dict[int, set[tuple[str, int, int]]],
) -> bool:
    # jieba segments each Han run on its own, so the run around the match decides.
    run_start = start
    while run_start > 0 and HAN_RUN.match(text, run_start - 1):
        run_start -= 1
    if run_start not in cache:
        run = HAN_RUN.match(text, run_start)
        run_text = run.group() if run else ""
        cache[run_start] = {
            (t.term, t.start + run_start, t.end + run_start)
            for t in tokenizer.tokens(run_text, "search")
        }
    return (term, start, start + len(term)) in cache[run_start]


def _without_overlaps(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    result: list[tuple[int, int]] = []
    for start, end in spans:
        if result and start < result[-1][1]:
            if end > result[-1][1]:
                result[-1] = (result[-1][0], end)
            continue
        result.append((start, end))
    return result


def mark(text: str, spans: list[tuple[int, int]]) -> str:
    """HTML-escape text and wrap spans in <em>."""
    out: list[str] = []
    pos = 0
    for start, end in spans:
        out.append(html.escape(text[pos:start]))
        out.append(f"<em>{html.escape(text[start:end])}</em>")
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out)


def snippet(
    text: str,
    terms: set[str],
    tokenizer: Tokenizer,
    *,
    length: int = 160,
    fallback: bool = True,
    spans: set[str] | frozenset[str] = frozenset(),
) -> str:
    """A fragment around the first match, escaped and marked; without a match, the start of
    text (or "" when fallback is False)."""
    scan = text[:MAX_SCAN_CHARS]
    folded = fold(scan)
    needles = _needles(terms, spans)
    han_tokens: dict[int, set[tuple[str, int, int]]] = {}
    first = _first_start(folded, needles, tokenizer, han_tokens)
    if first is None and not fallback:
        return ""
    start = max(0, first - length // 4) if first is not None else 0
    end = min(len(scan), start + length)
    # Only the window is marked, so only the window is scanned: long bodies stay cheap.
    marks = (
        _spans_within(folded, needles, start, end, tokenizer, han_tokens)
        if first is not None
        else []
    )
    inside = [(s - start, e - start) for s, e in marks]
    fragment = scan[start:end]
    marked = mark(fragment, inside)
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    return " ".join(f"{prefix}{marked}{suffix}".split())
