"""The search query language, parsed into our own tree (archiver/search/query/tree.py).

    query    := or
    or       := and ("OR" and)*
    and      := unary (["AND"] unary)*          adjacent terms are ANDed
    unary    := ("NOT" | "-") unary | primary
    primary  := "(" or ")" | field ":" (phrase | value | "(" or ")") | phrase | word

A syntax error raises InvalidQuery with the character position and what was expected; one that
reads as plain text (a stray bracket or quote, an unknown ``word:``) raises its subclass
QueryNotSyntax, and read_query() then reads the query again as text: pasted subjects always
search. A real operator mistake (``from:`` without a value, nesting too deep) stays an error.

The parser recurses, so queries are bounded in length and in nesting (parentheses and NOTs inside
one another): the tree and the Elasticsearch query made from it stay shallow (Elasticsearch
refuses bool queries nested 30 deep; each nesting level adds at most two, and a leaf at most
three: a span word is a bool of bools, and the known-item wrapper adds one at the top).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from archiver.errors import InvalidQuery, QueryNotSyntax
from archiver.search.query.tree import And, Field, Node, Not, Or, Phrase, Word
from archiver.text.subjects import REPLY_PREFIX

FIELDS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "envelope",
        "participant",
        "subject",
        "body",
        "attachment",
        "filename",
        "tag",
        "department",
        "folder",
        "source",
        "message-id",
        "has",
        "hold",
        "larger",
        "smaller",
        "before",
        "after",
        "date",
    }
)
_FIELD_PREFIX = re.compile(r"([A-Za-z][A-Za-z-]*):")
_OPERATORS = {"AND", "OR", "NOT"}
MAX_QUERY_CHARS = 2000
MAX_NESTING = 10


@dataclass(frozen=True)
class Token:
    kind: str  # "(" ")" "-" phrase word field op end
    text: str
    pos: int


def tokenize(query: str, *, lenient: bool = False) -> list[Token]:
    """The query's tokens; lenient: a quote without its closing quote and an unknown field are
    text, not errors."""
    tokens: list[Token] = []
    i = 0
    while i < len(query):
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            tokens.append(Token(ch, ch, i))
            i += 1
        elif ch == '"':
            end = query.find('"', i + 1)
            if end == -1 and lenient:
                i += 1
                continue
            if end == -1:
                raise QueryNotSyntax(
                    f'unterminated phrase at position {i}: expected a closing "', i
                )
            tokens.append(Token("phrase", query[i + 1 : end], i))
            i = end + 1
        elif (
            ch == "-"
            and (not tokens or _starts_term(tokens[-1], query, i))
            and _before_term(query, i)
        ):
            tokens.append(Token("-", ch, i))
            i += 1
        else:
            i = _word(query, i, tokens, lenient)
    tokens.append(Token("end", "", len(query)))
    return tokens


def _before_term(query: str, i: int) -> bool:
    """A '-' with a space after it is a dash (``Weekly report - week 52``), not a NOT."""
    return i + 1 < len(query) and not query[i + 1].isspace()


def _starts_term(previous: Token, query: str, i: int) -> bool:
    """A '-' negates when it starts a term (after space or '('), not inside jira-1234."""
    return (i == 0 or query[i - 1].isspace() or query[i - 1] == "(") and previous.kind != "field"


def _word(query: str, i: int, tokens: list[Token], lenient: bool) -> int:
    match = _FIELD_PREFIX.match(query, i)
    known = match is not None and match.group(1).lower() in FIELDS
    if match and not query.startswith("//", match.end()) and (known or not lenient):
        name = match.group(1).lower()  # a URL above is text, not a field
        if not known:
            raise QueryNotSyntax(
                f"unknown field '{match.group(1)}' at position {i}: expected one of "
                f"{', '.join(sorted(FIELDS))} (put text with a colon in quotes)",
                i,
            )
        tokens.append(Token("field", name, i))
        return match.end()
    end = i
    while end < len(query) and not query[end].isspace() and query[end] not in '()"':
        end += 1
    text = query[i:end]
    tokens.append(Token("op" if text in _OPERATORS else "word", text, i))
    return end


def _balanced(tokens: list[Token]) -> list[Token]:
    """tokens without the brackets that close nothing, are never closed or hold nothing."""
    keep = [True] * len(tokens)
    open_at: list[int] = []
    for n, token in enumerate(tokens):
        if token.kind == "(":
            open_at.append(n)
        elif token.kind == ")":
            if not open_at:
                keep[n] = False
            elif open_at[-1] == n - 1:  # ()
                keep[open_at.pop()] = keep[n] = False
            else:
                open_at.pop()
    for n in open_at:
        keep[n] = False
    return [t for t, k in zip(tokens, keep, strict=True) if k]


class Parser:
    def __init__(self, query: str, *, lenient: bool = False) -> None:
        tokens = tokenize(query, lenient=lenient)
        self.tokens = _balanced(tokens) if lenient else tokens
        self.lenient = lenient
        self.i = 0
        self.depth = 0

    def parse(self) -> Node | None:
        if self._peek().kind == "end":
            return None
        node = self._or()
        token = self._peek()
        if token.kind != "end":
            raise QueryNotSyntax(
                f"unexpected '{token.text}' at position {token.pos}: "
                "expected an operator, a term or the end of the query",
                token.pos,
            )
        return node

    def _peek(self) -> Token:
        return self.tokens[self.i]

    def _next(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def _or(self) -> Node:
        parts = [self._and()]
        while self._peek().kind == "op" and self._peek().text == "OR":
            self._next()
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def _and(self) -> Node:
        parts = [self._unary()]
        while True:
            token = self._peek()
            if token.kind == "op" and token.text == "AND":
                self._next()
            elif token.kind in ("end", ")") or (token.kind == "op" and token.text == "OR"):
                break
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def _unary(self) -> Node:
        token = self._peek()
        if token.kind == "-" or (token.kind == "op" and token.text == "NOT"):
            self._next()
            return Not(self._nested(token, self._unary))
        return self._primary()

    def _nested(self, opener: Token, parse: Callable[[], Node]) -> Node:
        """parse() one level deeper than opener (a '(' or a NOT), within MAX_NESTING."""
        if self.depth == MAX_NESTING:
            raise InvalidQuery(
                f"too deeply nested at position {opener.pos}: at most {MAX_NESTING} "
                "parentheses and NOTs may be inside one another",
                opener.pos,
            )
        self.depth += 1
        node = parse()
        self.depth -= 1
        return node

    def _group(self, opener: Token) -> Node:
        node = self._nested(opener, self._or)
        self._expect(")", opener.pos)
        return node

    def _primary(self) -> Node:
        token = self._next()
        if token.kind == "(":
            return self._group(token)
        if token.kind == "phrase":
            return Phrase(token.text)
        if token.kind == "word":
            return Word(token.text)
        if token.kind == "field":
            return self._field(token)
        what = "the end of the query" if token.kind == "end" else f"'{token.text}'"
        raise QueryNotSyntax(f"expected a term at position {token.pos}, found {what}", token.pos)

    def _field(self, field: Token) -> Node:
        token = self._peek()
        if token.kind == "(":
            self._next()
            return _distribute(field.text, self._group(token), field.pos)
        if token.kind in ("word", "phrase", "op") and token.pos == _after(field):
            self._next()
            return Field(field.text, token.text, phrase=token.kind == "phrase", pos=field.pos)
        if self.lenient:  # text already: 'From: and To: are my address' is words
            return Word(field.text)
        raise InvalidQuery(
            f"expected a value after '{field.text}:' at position {_after(field)}", _after(field)
        )

    def _expect(self, kind: str, opened: int) -> None:
        token = self._next()
        if token.kind != kind:
            raise QueryNotSyntax(
                f"expected '{kind}' at position {token.pos} to close the '(' at position {opened}",
                token.pos,
            )


def _after(field: Token) -> int:
    return field.pos + len(field.text) + 1


def _distribute(name: str, node: Node, pos: int) -> Node:
    """subject:(a OR -b) means subject:a OR -subject:b."""
    if isinstance(node, Word | Phrase):
        return Field(name, node.text, phrase=isinstance(node, Phrase), pos=pos)
    if isinstance(node, Not):
        return Not(_distribute(name, node.child, pos))
    if isinstance(node, And | Or):
        return type(node)(tuple(_distribute(name, c, pos) for c in node.children))
    raise InvalidQuery(f"a field inside '{name}:(...)' at position {pos} is not allowed", pos)


def parse_query(query: str, *, lenient: bool = False) -> Node | None:
    """The query's tree, or None for an empty query (everything)."""
    _check_length(query)
    return Parser(query, lenient=lenient).parse()


def _check_length(query: str) -> None:
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidQuery(
            f"the query is {len(query)} characters long: at most {MAX_QUERY_CHARS} are allowed "
            f"(it is cut off at position {MAX_QUERY_CHARS})",
            MAX_QUERY_CHARS,
        )


@dataclass(frozen=True)
class ReadQuery:
    tree: Node | None
    interpreted_as: Literal["query", "text"]
    note: str | None = None  # why it was read as text


def read_query(query: str) -> ReadQuery:
    """The query as the query language, or, when it is not valid syntax but reads as text
    (QueryNotSyntax), as text: brackets that close nothing and lone quotes are dropped, words
    with colons are words, and a reply prefix (Re:, 回复：) pasted with a subject is dropped.
    Real mistakes (from: without a value, too long, too deeply nested) are still raised."""
    try:
        return ReadQuery(parse_query(query), "query")
    except QueryNotSyntax as exc:
        note = f"searched as text: {exc}"
    text = REPLY_PREFIX.sub("", query)
    try:
        return ReadQuery(parse_query(text, lenient=True), "text", note)
    except QueryNotSyntax:  # dangling operators: every piece is a word
        words = [w for w in (w.strip('()"') for w in text.split()) if w]
        return ReadQuery(And(tuple(Word(w) for w in words)) if words else None, "text", note)
