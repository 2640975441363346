"""A message's top keywords ("topics"): jieba's TF-IDF over our own segmentation.

jieba.analyse.extract_tags re-segments the text with the Python jieba (~20x slower than the
rjieba-based tokenizer); the index document already holds the precise-mode words
(``subject_words``, ``body_words``), which tests/archiver/text/test_tokenizer.py proves equal to
jieba's cut. So the weights are jieba's exactly — term frequency times the IDF from
``jieba/analyse/idf.txt``, the median IDF for unknown words (English included) — at no segmenting
cost. The subject counts twice: it is what the sender chose to say the message is about.
"""

from __future__ import annotations

import importlib.util
import re
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from archiver.ports import Document


def _jieba_file(*parts: str) -> Path:
    """A data file of the jieba package, found without importing it: importing jieba loads
    its HMM tables (~13 MB), which only its own segmenter needs."""
    spec = importlib.util.find_spec("jieba")
    assert spec is not None and spec.origin is not None, "jieba is a dependency"
    return Path(spec.origin).resolve().parent.joinpath(*parts)


IDF_PATH = _jieba_file("analyse", "idf.txt")
NUMBER = re.compile(r"^[\d.,:/\-]+$")

# jieba's own list (English function words) plus common Chinese and English words that say
# nothing about what a message is about. Extend it with MAILVAULT_TOPICS_STOP_WORDS.
_JIEBA_LIST = (
    "the of is and to in that we for an are by be as on with can if from which you it this then "
    "at have all not one has or"
)
_OUR_LIST = (
    "我们 你们 他们 她们 它们 自己 这个 那个 这些 那些 这样 那样 什么 怎么 如何 为什么 "
    "因为 所以 但是 而且 或者 如果 虽然 然后 以及 并且 还是 就是 已经 可以 需要 进行 "
    "一下 一些 一个 没有 不是 可能 应该 关于 对于 通过 根据 以下 以上 其中 目前 现在 "
    "今天 明天 昨天 谢谢 感谢 您好 你好 大家 各位 同事 请问 辛苦 收到 附件 邮件 回复 "
    "转发 发送 此致 敬礼 祝好 best regards thanks thank please hi hello dear re fw fwd "
    "was were will would should could our your their his her its they them he she me my "
    "i but so do does did done been being about into over than also just there here what "
    "when where who how why any some no yes out up down more most very via per cc bcc "
    "subject sent mail email message attached attachment am pm"
)
JIEBA_STOP_WORDS = frozenset(_JIEBA_LIST.split())
DEFAULT_STOP_WORDS = JIEBA_STOP_WORDS | frozenset(_OUR_LIST.split())


def _fingerprint(word: str) -> int:
    """The word's 64-bit hash. A str hashes its internal buffer, so "0a" (two 1-byte
    characters) and "愰" (U+6130, one 2-byte character) hash alike; two such strings always
    differ in length, which is mixed in (the str hash itself is cached on the string)."""
    return hash(word) ^ len(word)


_INDEX_BITS = 16
_INDEX_MASK = (1 << _INDEX_BITS) - 1


class IdfTable:
    """jieba's IDF of ~270,000 words, as sorted 64-bit hashes of the words beside their values.

    Written here rather than kept as a dict because the importing process and every worker
    hold it for their whole run: a dict of the words took ~36 MB resident, these two arrays
    ~12 MB. Python's string hash is stable within a process (and its forks), which is all the
    table lives in; a 64-bit collision that would give an unknown word a known word's IDF is
    about one in 10^14 per lookup.
    """

    def __init__(self, path: Path) -> None:
        pairs: list[int] = []
        index_of: dict[str, int] = {}  # each of the ~3,300 distinct values, in first-seen order
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                word, _, value = line.strip().partition(" ")
                if value:
                    index = index_of.setdefault(value, len(index_of))
                    # the value's index rides in the low bits, so one sort orders both
                    pairs.append((_fingerprint(word) << _INDEX_BITS) | index)
        pairs.sort()
        values = [float(value) for value in index_of]
        self._hashes = array("q", (pair >> _INDEX_BITS for pair in pairs))
        self._values = array("d", (values[pair & _INDEX_MASK] for pair in pairs))
        self.median = sorted(self._values)[len(self._values) // 2]

    def get(self, word: str) -> float:
        """The word's IDF, or the median for a word jieba's table does not hold."""
        key = _fingerprint(word)
        at = bisect_left(self._hashes, key)
        if at < len(self._hashes) and self._hashes[at] == key:
            return self._values[at]
        return self.median


@lru_cache(maxsize=1)
def idf_table() -> IdfTable:
    """jieba's IDF table (loaded once per process, ~0.5 s)."""
    return IdfTable(IDF_PATH)


def read_stop_words(path: Path | None) -> frozenset[str]:
    """The default stop words plus a file's (one word per line, ``#`` comments)."""
    if path is None:
        return DEFAULT_STOP_WORDS
    extra = {
        line.split("#", 1)[0].strip().lower()
        for line in path.read_text(encoding="utf-8-sig").splitlines()
    }
    return DEFAULT_STOP_WORDS | (extra - {""})


def top_keywords(words: Iterable[str], count: int, stop_words: frozenset[str]) -> list[str]:
    """jieba's TF-IDF ranking of already segmented words (ties keep first-seen order)."""
    # Count first (in C), then judge each distinct word once: a body has far fewer distinct
    # words than words. Counter keeps first-seen order, which breaks ties.
    freq = {
        word: float(n)
        for word, n in Counter(words).items()
        if len(word.strip()) >= 2 and word.lower() not in stop_words and not NUMBER.match(word)
    }
    total = sum(freq.values())
    if not total:
        return []
    idf = idf_table()
    weight = {w: n * idf.get(w) / total for w, n in freq.items()}
    return sorted(weight, key=weight.__getitem__, reverse=True)[:count]


def document_topics(doc: Document, count: int, stop_words: frozenset[str]) -> list[str]:
    """Topics of an index document, from the precise-mode words it already holds."""
    subject = str(doc.get("subject_words") or "").split()
    body = str(doc.get("body_words") or "").split()
    return top_keywords([*subject, *subject, *body], count, stop_words)


# the document fields document_topics reads
TOPIC_SOURCES = ("subject_words", "body_words")
