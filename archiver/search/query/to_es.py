"""The one place a query tree becomes Elasticsearch query DSL.

User input never reaches Elasticsearch as query_string: text is segmented here with the same
tokenizer as the index and sent as exact tokens; everything else becomes term, wildcard or range
queries on keyword, number and date fields.

Chinese text matches in one of two ways (``match``):

- ``span`` (the default): a word with Chinese matches wherever its characters occur in that order,
  across jieba's word boundaries (a phrase of its characters over the ``*_han`` fields), so a
  search is exhaustive. Where it is also a jieba word, a bonus larger than any span score ranks the
  message above those where the characters only meet across a boundary (市长 finds 南京市长江大桥
  too, below every message where 市长 is a word).
- ``words``: jieba words only, as before: 市长 does not find 南京市长江大桥.

Both sides fold traditional to simplified and full-width to half-width (archiver/text/fold.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from archiver.errors import InvalidQuery
from archiver.search.query.tree import And, Field, Node, Not, Or, Phrase, Word
from archiver.text.subjects import subject_key
from archiver.text.tokenizer import HAN_RUN, Tokenizer, han_runs

Query = dict[str, Any]
Match = Literal["span", "words"]
MATCHES: tuple[Match, ...] = ("span", "words")

# search-mode token fields (any word) and precise-mode fields (phrases), by query field
TERM_FIELDS: dict[str, list[str]] = {
    "": [
        "subject_terms^3",
        "attachment_names_terms^2",
        "names_terms^2",
        "body_terms",
        "attachment_terms",
    ],
    "subject": ["subject_terms"],
    "body": ["body_terms"],
    "attachment": ["attachment_terms"],
    "filename": ["attachment_names_terms"],
}
PHRASE_FIELDS: dict[str, list[str]] = {
    "": ["subject_words", "body_words", "attachment_words"],
    "subject": ["subject_words"],
    "body": ["body_words"],
    "attachment": ["attachment_words"],
    "filename": ["attachment_names_terms"],
}
# the Chinese character copies (span matching), by query field, with their weights
HAN_FIELDS: dict[str, dict[str, float]] = {
    "": {"subject_han": 3, "attachment_names_han": 2, "body_han": 1, "attachment_han": 1},
    "subject": {"subject_han": 1},
    "body": {"body_han": 1},
    "attachment": {"attachment_han": 1},
    "filename": {"attachment_names_han": 1},
}
# Scores, so that the order is: the exact subject (the original before its replies), then
# messages where each Chinese query word is a word, then those where it only occurs as a span.
# A span's phrase score is scaled far below the word bonus (BM25 of a phrase stays below ~50).
EXACT_SUBJECT_BOOST = 1000.0
ORIGINAL_BOOST = 100.0
WORD_BONUS = 10.0
SPAN_WEIGHT = 0.01
ADDRESS_FIELDS: dict[str, tuple[list[str], list[str]]] = {  # addresses, display names
    "from": (["from.address"], ["from.name"]),
    "to": (["to.address"], ["to.name"]),
    "cc": (["cc.address"], ["cc.name"]),
    "bcc": (["bcc.address"], ["bcc.name"]),
    "envelope": (["envelope_to", "envelope_from"], []),
    "participant": (
        ["participants", "envelope_from"],
        ["from.name", "to.name", "cc.name", "bcc.name"],
    ),
}
SOURCES = ("smtp", "imap", "import")
HAS: dict[str, Query] = {
    "attachment": {"term": {"has_attachment": True}},
    "parse_error": {"term": {"parse_failed": True}},
    "hold": {"exists": {"field": "holds"}},  # under at least one active legal hold
}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmg]?)b?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_MAX_SIZE = 2**63 - 1024  # the largest float below 2**63 is 2**63 - 1024
_DATE = re.compile(r"^(\d{4})(?:[-/](\d{1,2})(?:[-/](\d{1,2}))?)?$")


@dataclass
class Translation:
    query: Query
    highlight_terms: set[str] = field(default_factory=set)
    # folded Chinese strings marked wherever they occur (span matches)
    highlight_spans: set[str] = field(default_factory=set)


def known_item(query: Query, text: str) -> Query:
    """query, with the message whose normalised subject is text ranked first, the original
    above its replies (subject_key in the index document)."""
    key = subject_key(text)[0]
    if not key:
        return query
    exact = {"term": {"subject_key": key}}
    original = {"bool": {"filter": [exact], "must_not": [{"term": {"subject_is_reply": True}}]}}
    return {
        "bool": {
            "must": [query],
            "should": [
                {"constant_score": {"filter": exact, "boost": EXACT_SUBJECT_BOOST}},
                {"constant_score": {"filter": original, "boost": ORIGINAL_BOOST}},
            ],
        }
    }


def _has_han(text: str) -> bool:
    return bool(han_runs(text))


class Translator:
    def __init__(
        self, tokenizer: Tokenizer, timezone: str = "Asia/Shanghai", *, match: Match = "span"
    ) -> None:
        self.tokenizer = tokenizer
        self.tz = ZoneInfo(timezone)
        self.span = match == "span"

    def translate(self, node: Node | None) -> Translation:
        terms: set[str] = set()
        if node is None:
            return Translation({"match_all": {}}, terms)
        query = self._node(node, terms, negated=False)
        # spans travel in terms with a prefix, so the recursion keeps one accumulator
        spans = {t[len(_SPAN) :] for t in terms if t.startswith(_SPAN)}
        words = {t for t in terms if not t.startswith(_SPAN)}
        return Translation(query, words, spans)

    def _node(self, node: Node, terms: set[str], *, negated: bool) -> Query:
        if isinstance(node, Not):
            return {"bool": {"must_not": [self._node(node.child, terms, negated=not negated)]}}
        if isinstance(node, Or):
            return {
                "bool": {
                    "should": [self._node(c, terms, negated=negated) for c in node.children],
                    "minimum_should_match": 1,
                }
            }
        if isinstance(node, And):
            return self._and(node, terms, negated=negated)
        if isinstance(node, Word):
            return self._words([node.text], "", terms, negated)
        if isinstance(node, Phrase):
            return self._phrase(node.text, "", terms, negated)
        return self._field(node, terms, negated)

    def _and(self, node: And, terms: set[str], *, negated: bool) -> Query:
        # Adjacent free words form one query, so they may match across fields together; in span
        # mode each word with Chinese is its own span.
        def merged(child: Node) -> bool:
            return isinstance(child, Word) and not (self.span and _has_han(child.text))

        words = [c.text for c in node.children if isinstance(c, Word) and merged(c)]
        others = [self._node(c, terms, negated=negated) for c in node.children if not merged(c)]
        must = ([self._words(words, "", terms, negated)] if words else []) + others
        return must[0] if len(must) == 1 else {"bool": {"must": must}}

    def _words(self, words: list[str], field: str, terms: set[str], negated: bool) -> Query:
        if self.span and len(words) == 1 and _has_han(words[0]):
            return self._span_word(words[0], field, terms, negated)
        return self._word_match(words, field, terms, negated)

    def _span_word(self, text: str, field: str, terms: set[str], negated: bool) -> Query:
        """Each Chinese run of text wherever it occurs, other parts as words; ranked above
        when the whole is made of words (WORD_BONUS)."""
        runs = han_runs(text)
        tokens = list(dict.fromkeys(self.tokenizer.terms(text)))
        others = [t for t in tokens if not HAN_RUN.search(t)]
        must = [_span(run, field) for run in runs]
        if others:
            must.append(_combined(others, field))
        if negated:
            return must[0] if len(must) == 1 else {"bool": {"must": must}}
        # the runs are marked wherever they occur; their jieba words need no marks of their own
        terms.update(others)
        terms.update(_SPAN + run for run in runs)
        word = _combined(tokens, field)
        return {
            "bool": {
                "must": must,
                "should": [{"constant_score": {"filter": word, "boost": WORD_BONUS}}, word],
            }
        }

    def _word_match(self, words: list[str], field: str, terms: set[str], negated: bool) -> Query:
        tokens = list(dict.fromkeys(t for w in words for t in self.tokenizer.terms(w)))
        if not tokens:
            return {"match_all": {}}
        if not negated:
            terms.update(tokens)
        return _combined(tokens, field)

    def _phrase(self, text: str, field: str, terms: set[str], negated: bool) -> Query:
        tokens = self.tokenizer.terms(text, "precise")
        if not tokens:
            return {"match_all": {}}
        if not negated:
            terms.update(self.tokenizer.terms(text))
        phrase = " ".join(tokens)
        should = [{"match_phrase": {f: phrase}} for f in PHRASE_FIELDS[field]]
        runs = han_runs(text)
        if self.span and runs and not any(not HAN_RUN.search(t) for t in tokens):
            # the Chinese characters in a row, wherever they occur, as well as the words
            should.append(_span("".join(runs), field))
            if not negated:
                terms.add(_SPAN + "".join(runs))
        return {"bool": {"should": should, "minimum_should_match": 1}}

    def _field(self, node: Field, terms: set[str], negated: bool) -> Query:
        name, value = node.name, node.value.strip()
        if name in TERM_FIELDS:
            if node.phrase:
                return self._phrase(value, name, terms, negated)
            if name == "filename" and any(c in value for c in "*?"):
                return _filter(_wildcard(["attachments.filename"], value))
            return self._words([value], name, terms, negated)
        if not value:
            raise InvalidQuery(f"expected a value after '{name}:' at position {node.pos}", node.pos)
        return _filter(self._keyword_field(node, name, value))

    def _keyword_field(self, node: Field, name: str, value: str) -> Query:
        if name in ADDRESS_FIELDS:
            return _address(*ADDRESS_FIELDS[name], value)
        if name in ("tag", "department"):
            path = value.strip("/")
            target = "tags" if name == "tag" else "departments"
            return _any([{"term": {target: path}}, {"prefix": {target: path + "/"}}])
        if name == "hold":
            return {"term": {"holds": value}}
        if name == "folder":
            return {"term": {"folders": value}}
        if name == "message-id":
            return {"term": {"message_id": value.strip("<>")}}
        if name == "source":
            if value.lower() not in SOURCES:
                raise _bad(node, f"one of {', '.join(SOURCES)}")
            return {"term": {"source_kinds": value.lower()}}
        if name == "has":
            if value.lower() not in HAS:
                raise _bad(node, f"one of {', '.join(HAS)}")
            return HAS[value.lower()]
        if name in ("larger", "smaller"):
            return {"range": {"size": {"gt" if name == "larger" else "lt": _size(node)}}}
        return {"range": {"date": self._date_range(node)}}

    def _date_range(self, node: Node | Field) -> dict[str, str]:
        assert isinstance(node, Field)
        value = node.value.strip()
        if node.name == "before":
            return {"lt": self._day_bounds(node, value)[0]}
        if node.name == "after":
            return {"gte": self._day_bounds(node, value)[0]}
        start, _, end = value.partition("..")
        bounds: dict[str, str] = {}
        if start:
            bounds["gte"] = self._day_bounds(node, start)[0]
        if end or not _:
            bounds["lt"] = self._day_bounds(node, end or start)[1]
        return bounds

    def _day_bounds(self, node: Field, text: str) -> tuple[str, str]:
        """Start and end (exclusive) of a year, month or day, in the configured time zone."""
        match = _DATE.match(text.strip())
        if not match:
            raise _bad(node, "a date as YYYY, YYYY-MM or YYYY-MM-DD (ranges: A..B)")
        year, month, day = (int(g) if g else None for g in match.groups())
        assert year is not None
        try:  # the end is out of range, too, for the last day, month or year of 9999
            start = datetime(year, month or 1, day or 1, tzinfo=self.tz)
            if day:
                end = start + timedelta(days=1)
            elif month:
                end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=self.tz)
            else:
                end = datetime(year + 1, 1, 1, tzinfo=self.tz)
        except (ValueError, OverflowError) as exc:
            raise _bad(node, f"a valid date ({exc})") from exc
        return start.isoformat(), end.isoformat()


_SPAN = "\x00span:"


def _combined(tokens: list[str], field: str) -> Query:
    return {
        "combined_fields": {
            "query": " ".join(tokens),
            "fields": TERM_FIELDS[field],
            "operator": "and",
        }
    }


def _span(run: str, field: str) -> Query:
    """Messages where the folded Han run occurs, over the character fields: the phrase of its
    characters (the standard analyzer splits it as it split the index's runs)."""
    weights = HAN_FIELDS[field]
    if len(run) == 1:
        clauses = [
            {"term": {f: {"value": run, "boost": w * SPAN_WEIGHT}}} for f, w in weights.items()
        ]
    else:
        clauses = [
            {"match_phrase": {f: {"query": run, "boost": w * SPAN_WEIGHT}}}
            for f, w in weights.items()
        ]
    return _any(clauses)


def _filter(query: Query) -> Query:
    """Structured conditions decide membership, not relevance."""
    return {"bool": {"filter": [query]}}


def _any(queries: list[Query]) -> Query:
    return (
        queries[0]
        if len(queries) == 1
        else {"bool": {"should": queries, "minimum_should_match": 1}}
    )


def _wildcard(fields: list[str], pattern: str) -> Query:
    return _any(
        [
            {
                "wildcard": {
                    f: {
                        "value": pattern.lower()
                        if "address" in f or f in ("participants", "envelope_to", "envelope_from")
                        else pattern,
                        "case_insensitive": True,
                    }
                }
            }
            for f in fields
        ]
    )


def _address(addresses: list[str], names: list[str], value: str) -> Query:
    """A full address, a domain (example.com, @example.com), a wildcard, or a name."""
    lowered = value.lower()
    if any(c in value for c in "*?"):
        return _wildcard(addresses, lowered)
    if "@" in value and not value.startswith("@"):
        return _any([{"term": {f: lowered}} for f in addresses])
    domain = lowered.lstrip("@")
    if "." in domain:
        patterns = [f"*@{domain}", f"*@*.{domain}"] + (
            [] if value.startswith("@") else [f"{domain}@*"]
        )
        return _any([_wildcard(addresses, p) for p in patterns])
    return _any(
        [_wildcard(names, f"*{value}*")] * bool(names) + [_wildcard(addresses, f"{lowered}*@*")]
    )


def _size(node: Field) -> int:
    match = _SIZE.match(node.value.strip())
    if not match:
        raise _bad(node, "a size such as 500K, 10M or 1G")
    size = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not size <= _MAX_SIZE:  # Elasticsearch's long (and float() of many digits is inf)
        raise _bad(node, f"a size below {_MAX_SIZE + 1} bytes")
    return int(size)


def _bad(node: Field, expected: str) -> InvalidQuery:
    return InvalidQuery(
        f"invalid value '{node.value}' for '{node.name}:' at position {node.pos}: "
        f"expected {expected}",
        node.pos,
    )
