"""Folding traditional to simplified Chinese and full-width to half-width forms, one character
for one character.

Indexing, querying, highlighting and tagging rules all compare folded text, so 審批 finds 审批,
ＡＢＣ１２３ finds abc123, and the other way round. The fold never changes the length of a text:
offsets into folded text are offsets into the original, so highlights stay on the original
characters. That is why the table is per character (OpenCC's character dictionary, taken one
character at a time) and not OpenCC's phrase conversion, which may change lengths; a search
fold only needs both sides to fold alike, not the best traditional→simplified rendering.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# The Han block the tokenizer treats as Han, plus the compatibility ideographs NFKC unifies.
_HAN_BLOCKS = ((0x4E00, 0x9FD6), (0xF900, 0xFB00))
_FULL_WIDTH = range(0xFF01, 0xFF5F)  # ！ … ～ → ! … ~


@lru_cache(maxsize=1)
def fold_table() -> dict[int, str]:
    """code point → its folded character (only those that change); built once, ~50 ms."""
    import opencc

    t2s = opencc.OpenCC("t2s")
    table: dict[int, str] = {cp: chr(cp - 0xFEE0) for cp in _FULL_WIDTH}
    table[0x3000] = " "  # ideographic space
    for lo, hi in _HAN_BLOCKS:
        for cp in range(lo, hi):
            char = unicodedata.normalize("NFKC", chr(cp))
            if len(char) != 1:
                continue
            simplified = t2s.convert(char)
            folded = simplified if len(simplified) == 1 else char
            if folded != chr(cp):
                table[cp] = folded
    return table


def fold(text: str) -> str:
    """text with traditional characters simplified and full-width forms made half-width; the
    same length as text (not lower-cased: the tokenizer does that per term)."""
    if text.isascii():
        return text
    return text.translate(fold_table())
