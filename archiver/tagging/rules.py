"""Tagging rules: conditions on a message's fields, combined with all/any/not, and actions.

A rule is JSON, validated when it is saved (unknown fields, wrong operators and invalid regexes are
rejected with the place they occur) and compiled once into plain functions::

    {"name": "jira",
     "when": {"any": [{"field": "subject", "op": "regex", "value": "JIRA-\\d+"},
                      {"field": "sender_domain", "op": "equals", "value": "jira.example.cn"}]},
     "actions": {"add_tags": ["project/jira"], "set_department": "技术部"}}

Rules read the index document, so preview, apply and the pipeline evaluate exactly the same data.
Text comparisons ignore case unless ``"case_sensitive": true`` and fold traditional to simplified
and full-width to half-width (審批 matches 审批, ＡＢＣ matches ABC; a regex is matched as
written); a condition on a field with several
values (recipients, attachments) holds when it holds for any of them. ``words`` matches segmented
words (jieba search mode, as the index): ``市长`` does not match ``南京市长江大桥``.

Regexes run with the ``regex`` package, which has a time limit: a catastrophic pattern such as
``(a|aa)+$`` would otherwise stall the worker on one message. All the regexes of a rule share one
deadline per message; past it the rule raises RuleTimedOut. A pattern must be valid for ``re``
and means what it means there: the two places ``regex`` reads re's literals as its own syntax
(``{e}`` fuzzy matching, ``[[:alpha:]]`` POSIX classes) are escaped first.
"""

from __future__ import annotations

import fnmatch
import re
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from archiver.errors import InvalidTagging, RuleTimedOut
from archiver.ports import Document
from archiver.tagging.model import department_tag, normalise_tag
from archiver.text.fold import fold as fold_forms
from archiver.text.tokenizer import Tokenizer

Kind = Literal["text", "number", "words"]
OPERATORS: dict[Kind, tuple[str, ...]] = {
    "text": ("contains", "equals", "regex", "glob"),
    "number": ("equals", "gt", "lt"),
    "words": ("contains",),
}
RULE_NAME = re.compile(r"^[\w.\-]{1,64}$")
HEADER_PREFIX = "header:"


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower() if "@" in address else ""


def _addresses(doc: Document, *keys: str) -> list[str]:
    return [a.get("address", "") for k in keys for a in doc.get(k) or [] if a.get("address")]


def _list(doc: Document, key: str) -> list[Any]:
    value = doc.get(key)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _domains(values: Iterable[str]) -> list[str]:
    return sorted({d for d in map(_domain, values) if d})


def _words(doc: Document) -> list[str]:
    return f"{doc.get('subject_terms') or ''} {doc.get('body_terms') or ''}".split()


@dataclass(frozen=True)
class FieldSpec:
    kind: Kind
    reads: tuple[str, ...]  # document fields the values come from
    values: Callable[[Document], list[Any]]
    help: str


_RCPT = ("to", "cc", "bcc")
FIELDS: dict[str, FieldSpec] = {
    "sender": FieldSpec(
        "text", ("from",), lambda d: _addresses(d, "from"), "From header addresses"
    ),
    "sender_domain": FieldSpec(
        "text", ("from",), lambda d: _domains(_addresses(d, "from")), "domains of sender"
    ),
    "recipient": FieldSpec(
        "text", _RCPT, lambda d: _addresses(d, *_RCPT), "To, Cc and Bcc header addresses"
    ),
    "recipient_domain": FieldSpec(
        "text", _RCPT, lambda d: _domains(_addresses(d, *_RCPT)), "domains of recipient"
    ),
    "envelope_from": FieldSpec(
        "text", ("envelope_from",), lambda d: _list(d, "envelope_from"), "SMTP MAIL FROM"
    ),
    "envelope_from_domain": FieldSpec(
        "text",
        ("envelope_from",),
        lambda d: _domains(_list(d, "envelope_from")),
        "domains of envelope_from",
    ),
    "envelope_to": FieldSpec(
        "text", ("envelope_to",), lambda d: _list(d, "envelope_to"), "SMTP RCPT TO (incl. Bcc)"
    ),
    "envelope_to_domain": FieldSpec(
        "text",
        ("envelope_to",),
        lambda d: _domains(_list(d, "envelope_to")),
        "domains of envelope_to",
    ),
    "participant": FieldSpec(
        "text", ("participants",), lambda d: _list(d, "participants"), "every address involved"
    ),
    "subject": FieldSpec("text", ("subject",), lambda d: _list(d, "subject"), "decoded subject"),
    "body": FieldSpec("text", ("body",), lambda d: _list(d, "body"), "body text"),
    "attachment_name": FieldSpec(
        "text",
        ("attachments",),
        lambda d: [a.get("filename", "") for a in d.get("attachments") or []],
        "attachment file names",
    ),
    "attachment_type": FieldSpec(
        "text",
        ("attachments",),
        lambda d: [a.get("content_type", "") for a in d.get("attachments") or []],
        "attachment MIME types",
    ),
    "size": FieldSpec("number", ("size",), lambda d: _list(d, "size"), "message size in bytes"),
    "source": FieldSpec(
        "text", ("source_kinds",), lambda d: _list(d, "source_kinds"), "smtp, imap or import"
    ),
    "words": FieldSpec(
        "words",
        ("subject_terms", "body_terms"),
        _words,
        "segmented words of subject and body (Chinese keywords)",
    ),
}


def field_spec(name: str) -> FieldSpec | None:
    """The named field; ``header:NAME`` reads a header (names are case-insensitive)."""
    if name.startswith(HEADER_PREFIX) and len(name) > len(HEADER_PREFIX):
        header = name[len(HEADER_PREFIX) :].strip().lower()
        return FieldSpec(
            "text",
            ("headers",),
            lambda d: list((d.get("headers") or {}).get(header) or []),
            f"the {header} header",
        )
    return FIELDS.get(name)


class MessageView:
    """A document with each field's values computed once, however many conditions read it."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self._cache: dict[str, Any] = {}
        self.deadline: float | None = None  # of the rule being evaluated (time.monotonic)

    def remaining(self) -> float | None:
        """Seconds the rule's regexes may still run (0: time is up), None: no limit."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def values(self, name: str, spec: FieldSpec) -> Any:
        if name not in self._cache:
            values = spec.values(self.doc)
            self._cache[name] = set(values) if spec.kind == "words" else values
        return self._cache[name]


Matcher = Callable[[MessageView], bool]


class Actions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    add_tags: list[str] = Field(default_factory=list)
    set_department: str | None = None


class Rule(BaseModel):
    """A rule as saved (each save is a new version)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    enabled: bool = True
    when: dict[str, Any]
    actions: Actions


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    version: int | None  # None for a draft being previewed
    matcher: Matcher
    tags: frozenset[str]
    reads: frozenset[str] = field(default_factory=frozenset)
    timeout: float | None = None  # seconds the rule's regexes may run on one message

    def tags_for(self, view: MessageView) -> set[str]:
        """The rule's tags if it matches; RuleTimedOut when its regexes run past the limit."""
        if not self.rule.enabled:
            return set()
        view.deadline = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            matched = self.matcher(view)
        except TimeoutError as exc:  # raised by the regex package only
            doc_id = str(view.doc.get("id", ""))
            raise RuleTimedOut(self.rule.name, self.version, doc_id, self.timeout or 0) from exc
        finally:
            view.deadline = None
        return set(self.tags) if matched else set()


def parse_rule(data: Mapping[str, Any], tokenizer: Tokenizer) -> Rule:
    """Validate a rule (raises InvalidTagging saying what is wrong and where)."""
    try:
        rule = Rule.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(p) for p in first["loc"])
        raise InvalidTagging("rule", first["msg"], location) from exc
    if not RULE_NAME.match(rule.name):
        raise InvalidTagging(
            "rule", f"name {rule.name!r} must be 1-64 letters, digits, '.', '-' or '_'", "name"
        )
    tags = rule_tags(rule)
    if not tags:
        raise InvalidTagging("rule", "no action: give add_tags or set_department", "actions")
    compile_condition(rule.when, tokenizer)
    return rule.model_copy(
        update={"actions": rule.actions.model_copy(update={"add_tags": sorted(tags)})}
    )


def rule_tags(rule: Rule) -> set[str]:
    tags = set()
    for i, tag in enumerate(rule.actions.add_tags):
        try:
            tags.add(normalise_tag(tag))
        except InvalidTagging as exc:
            raise InvalidTagging("rule", exc.detail, f"actions.add_tags[{i}]") from exc
    if rule.actions.set_department is not None:
        try:
            tags.add(department_tag(rule.actions.set_department))
        except InvalidTagging as exc:
            raise InvalidTagging("rule", exc.detail, "actions.set_department") from exc
    return tags


def compile_rule(
    rule: Rule, version: int | None, tokenizer: Tokenizer, timeout: float | None = None
) -> CompiledRule:
    matcher, reads = compile_condition(rule.when, tokenizer)
    tags = frozenset(rule_tags(rule))
    return CompiledRule(rule, version, matcher, tags, frozenset(reads), timeout)


def compile_condition(
    data: Any, tokenizer: Tokenizer, location: str = "when"
) -> tuple[Matcher, set[str]]:
    """A condition as a function of a message, and the document fields it reads."""
    if not isinstance(data, Mapping):
        raise InvalidTagging("rule", "a condition must be an object", location)
    combinators = [k for k in ("all", "any", "not") if k in data]
    if combinators:
        if len(data) != 1:
            raise InvalidTagging(
                "rule", f"'{combinators[0]}' must be the only key of its object", location
            )
        return _combined(combinators[0], data[combinators[0]], tokenizer, location)
    return _leaf(data, tokenizer, location)


def _combined(
    kind: str, operand: Any, tokenizer: Tokenizer, location: str
) -> tuple[Matcher, set[str]]:
    where = f"{location}.{kind}"
    if kind == "not":
        inner, reads = compile_condition(operand, tokenizer, where)
        return (lambda view: not inner(view)), reads
    if not isinstance(operand, list) or not operand:
        raise InvalidTagging("rule", f"'{kind}' takes a non-empty list of conditions", where)
    parts = [compile_condition(c, tokenizer, f"{where}[{i}]") for i, c in enumerate(operand)]
    matchers = [m for m, _ in parts]
    reads = set().union(*(r for _, r in parts))
    if kind == "all":
        return (lambda view: all(m(view) for m in matchers)), reads
    return (lambda view: any(m(view) for m in matchers)), reads


def _leaf(data: Mapping[str, Any], tokenizer: Tokenizer, location: str) -> tuple[Matcher, set[str]]:
    unknown = set(data) - {"field", "op", "value", "case_sensitive"}
    if unknown:
        raise InvalidTagging("rule", f"unknown key(s) {sorted(unknown)} in a condition", location)
    name, op, value = data.get("field"), data.get("op"), data.get("value")
    spec = field_spec(name) if isinstance(name, str) else None
    if spec is None:
        known = ", ".join([*FIELDS, "header:NAME"])
        raise InvalidTagging(
            "rule", f"unknown field {name!r} (known: {known})", f"{location}.field"
        )
    if op not in OPERATORS[spec.kind]:
        allowed = ", ".join(OPERATORS[spec.kind])
        raise InvalidTagging(
            "rule", f"operator {op!r} does not apply to {name} (use {allowed})", f"{location}.op"
        )
    test = _predicate(spec.kind, str(op), value, bool(data.get("case_sensitive")), tokenizer)
    where = f"{location}.value"
    if isinstance(test, str):
        raise InvalidTagging("rule", test, where)
    field_name, reads = str(name), set(spec.reads)
    if isinstance(test, RegexTest):
        search = test.search
        return (
            lambda view: any(search(v, view.remaining()) for v in view.values(field_name, spec))
        ), reads
    plain = test  # narrowed: mypy keeps the union in closures over `test`
    if spec.kind == "words":
        return (lambda view: plain(view.values(field_name, spec))), reads
    return (lambda view: any(plain(v) for v in view.values(field_name, spec))), reads


@dataclass(frozen=True)
class RegexTest:
    """A user's pattern; each search is given what is left of the rule's time."""

    pattern: regex.Pattern[str]

    def search(self, value: Any, timeout: float | None) -> bool:
        return isinstance(value, str) and self.pattern.search(value, timeout=timeout) is not None


# what compiling a user's pattern can raise besides re.error: huge repeat counts, deep nesting
_REGEX_ERRORS = (re.error, regex.error, ValueError, OverflowError, RecursionError, MemoryError)
_RE_REPEAT = re.compile(r"\{(?:\d+(?:,\d*)?|,\d*)\}")  # what re reads as a repeat, not literal


def re_syntax(pattern: str) -> str:
    """The pattern (valid for re) with re's literal '{' and in-class '[' escaped, so that regex
    reads them as re does rather than as fuzzy matching or POSIX classes."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            end = pattern.find("}", i) + 1 if pattern.startswith("N{", i + 1) else 0
            out.append(pattern[i : max(end, i + 2)])
            i = max(end, i + 2)
        elif c == "[":
            j = i + 1
            j += pattern.startswith("^", j)
            j += pattern.startswith("]", j)  # a ']' first is a member
            out.append(pattern[i:j])
            while j < n and pattern[j] != "]":
                step = 2 if pattern[j] == "\\" else 1
                out.append("\\[" if pattern[j] == "[" else pattern[j : j + step])
                j += step
            out.append(pattern[j : j + 1])
            i = j + 1
        else:
            out.append("\\{" if c == "{" and not _RE_REPEAT.match(pattern, i) else c)
            i += 1
    return "".join(out)


def _predicate(
    kind: Kind, op: str, value: Any, case_sensitive: bool, tokenizer: Tokenizer
) -> Callable[[Any], bool] | RegexTest | str:
    """A test of one value, or the reason the condition's value is invalid."""
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{op} needs a number, not {value!r}"
        number = float(value)
        tests: dict[str, Callable[[Any], bool]] = {
            "gt": lambda v: isinstance(v, int | float) and v > number,
            "lt": lambda v: isinstance(v, int | float) and v < number,
            "equals": lambda v: isinstance(v, int | float) and v == number,
        }
        return tests[op]
    if not isinstance(value, str) or not value:
        return f"{op} needs a non-empty text value, not {value!r}"
    if kind == "words":
        wanted = set(tokenizer.terms(value))
        if not wanted:
            return f"{value!r} contains no words"
        return lambda words: wanted <= words
    return _text_predicate(op, value, case_sensitive)


def _text_predicate(
    op: str, value: str, case_sensitive: bool
) -> Callable[[Any], bool] | RegexTest | str:
    if op == "regex":
        try:
            with warnings.catch_warnings():  # "possible nested set": the user's business
                warnings.simplefilter("ignore", FutureWarning)
                re.compile(value, 0 if case_sensitive else re.IGNORECASE)  # re's syntax and errors
                # VERSION0 is re's behaviour (the default, said so that it stays so)
                flags = regex.VERSION0 | (0 if case_sensitive else regex.IGNORECASE)
                return RegexTest(regex.compile(re_syntax(value), flags))
        except _REGEX_ERRORS as exc:
            return f"invalid regex {value!r}: {exc}"
    # Traditional and simplified characters, full-width and half-width forms are the same text
    # (as in search); case_sensitive is about letter case only. A regex is matched as written.
    fold: Callable[[str], str] = (
        fold_forms if case_sensitive else (lambda s: fold_forms(s).casefold())
    )
    wanted = fold(value)
    if op == "contains":
        return lambda v: isinstance(v, str) and wanted in fold(v)
    if op == "equals":
        return lambda v: isinstance(v, str) and fold(v) == wanted
    return lambda v: isinstance(v, str) and fnmatch.fnmatchcase(fold(v), wanted)
