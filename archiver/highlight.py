"""Highlights over the original text, so Chinese shows without the spaces the index inserts.

A query term is marked only where it is a token of the text, as the index saw it: 市长 is not marked
in 南京市长江大桥 (南京市 / 长江大桥), matching what the search itself matched.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from archiver.segment import HAN_RUN, Segmenter

MAX_SCAN_CHARS = 200_000
_HAN_CHAR = re.compile("[\u4e00-\u9fd5]")


@lru_cache(maxsize=512)
def _word_pattern(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![^\W_]){re.escape(term)}(?![^\W_])", re.IGNORECASE)


def token_spans(text: str, terms: set[str], segmenter: Segmenter) -> list[tuple[int, int]]:
    """Spans of text where one of terms occurs as a token."""
    spans: set[tuple[int, int]] = set()
    han_tokens: dict[int, set[tuple[str, int, int]]] = {}
    for term in terms:
        if _HAN_CHAR.search(term):
            start = text.find(term)
            while start != -1:
                if _is_han_token(text, term, start, segmenter, han_tokens):
                    spans.add((start, start + len(term)))
                start = text.find(term, start + 1)
        else:
            spans.update(m.span() for m in _word_pattern(term).finditer(text))
    return _without_overlaps(sorted(spans))


def _is_han_token(
    text: str,
    term: str,
    start: int,
    segmenter: Segmenter,
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
            for t in segmenter.tokens(run_text, "search")
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
    text: str, terms: set[str], segmenter: Segmenter, *, length: int = 160, fallback: bool = True
) -> str:
    """A fragment around the first match, escaped and marked; without a match, the start of
    text (or "" when fallback is False)."""
    scan = text[:MAX_SCAN_CHARS]
    spans = token_spans(scan, terms, segmenter) if terms else []
    if not spans and not fallback:
        return ""
    start = max(0, spans[0][0] - length // 4) if spans else 0
    end = min(len(scan), start + length)
    inside = [
        (max(s, start) - start, min(e, end) - start) for s, e in spans if s < end and e > start
    ]
    fragment = scan[start:end]
    marked = mark(fragment, inside)
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    return " ".join(f"{prefix}{marked}{suffix}".split())
