"""Subjects as people type them: without reply/forward prefixes and pasted bullets."""

from __future__ import annotations

import re

from archiver.text.fold import fold

REPLY_PREFIX = re.compile(
    r"^\s*((re|fw|fwd|aw|wg|sv|vs|回复|答复|转发|回覆|轉寄)\s*(\[\d+\])?\s*[:：]\s*)+",
    re.IGNORECASE,
)
# Leading decorations of pasted and forwarded subjects: bullets, stars, arrows, dashes.
_BULLETS = re.compile(r"^[\s●○■□◆◇★☆•·◎※▲△▼▽►▶◀→»>*#~\-—–=+]+")


def subject_key(subject: str) -> tuple[str, bool]:
    """The subject as a known-item query would type it: without reply/forward prefixes and
    bullets, folded (審批 → 审批, ＡＢＣ → abc), lower-cased, whitespace collapsed; and whether
    anything was a reply or forward prefix (the original ranks above its replies)."""
    text, reply = subject, False
    while True:
        stripped = _BULLETS.sub("", text)
        without_prefix = REPLY_PREFIX.sub("", stripped)
        reply = reply or without_prefix != stripped
        if without_prefix == text:
            break
        text = without_prefix
    return " ".join(fold(text).split()).lower(), reply
