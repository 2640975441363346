"""Rule regexes run by the `regex` package with a time limit: any pattern is either rejected
when the rule is saved or evaluated within the limit, with `re`'s meaning (flags, case folding,
Unicode), and a catastrophic one times out instead of stalling the worker."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archiver.errors import InvalidTagging, RuleTimedOut
from archiver.tagging.engine import Evaluation, TagSource, evaluate
from archiver.tagging.rules import MessageView, compile_rule, parse_rule
from archiver.text.tokenizer import get_tokenizer
from tests.archiver.tagging.test_rules import NOW, message, rule

LIMIT = 0.05
# what regex may overrun its limit by (it checks the clock now and then), with room for a busy CI
BOUND = 2.0
RUNAWAY = "a" * 40 + "!"
PIECES = [
    *"aAbé技1,-:!^$.*+?|()[]{}\\",
    "\\d", "\\w", "\\s", "\\b", "(?i)", "(?s)", "(?x)", "(?:", "(?P<n>", "(?P=n)", "\\1",
    "(a|aa)+", "{2}", "{1,3}", "{e<=1}", "{i}", "[:alpha:]", "\\N{LATIN SMALL LETTER A}",
    "\\p{Han}",
]  # fmt: skip
PATTERNS = st.lists(st.sampled_from(PIECES), max_size=12).map("".join) | st.text(max_size=20)
SUBJECTS = ["审批 JIRA-42 Straße", RUNAWAY, "Aa{e}[:]技术部１２ ab"]


def compiled(when: dict[str, Any], timeout: float | None = LIMIT) -> Any:
    tokenizer = get_tokenizer()
    return compile_rule(parse_rule(rule(when), tokenizer), 1, tokenizer, timeout)


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return [message(s) for s in SUBJECTS]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=PATTERNS, case_sensitive=st.booleans())
def test_any_pattern_is_rejected_on_save_or_runs_within_the_limit_as_re_would(
    docs: list[dict[str, Any]], pattern: str, case_sensitive: bool
) -> None:
    when = {"field": "subject", "op": "regex", "value": pattern, "case_sensitive": case_sensitive}
    try:
        runnable = compiled(when)
    except InvalidTagging as exc:
        assert exc.location == "when.value"
        return
    reference = re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)  # re accepts it too
    for doc in docs:
        started = time.monotonic()
        try:
            matched = bool(runnable.tags_for(MessageView(doc)))
        except RuleTimedOut as exc:
            assert (exc.rule, exc.message) == ("r", doc["id"])
        else:
            assert matched == (reference.search(doc["subject"]) is not None), doc["subject"]
        assert time.monotonic() - started < BOUND


@pytest.mark.parametrize(
    ("pattern", "subject", "case_sensitive"),
    [
        (r"JIRA-\d+", "jira-123", False),
        (r"JIRA-\d+", "jira-123", True),
        ("é", "É", False),
        ("straße", "STRASSE", False),  # simple case folding, as re: ß is not ss
        (r"\d+", "１２３", False),  # Unicode digits
        (r"^\w+$", "技术部", False),
        (r"\b市长\b", "南京市长江大桥", False),
        ("k", "\u212a", False),  # the Kelvin sign folds to k
        ("ΣΑΣ", "σας", False),
        ("(?i)abc", "ABC", True),
        ("^a.b$", "a\nb", False),
        ("(?s)^a.b$", "a\nb", False),
        ("(?m)^b", "a\nb", False),
        (r"(?a)\w", "技", False),
        (r"\s", "\u3000", False),
        ("x{e}", "x{e}", True),  # a literal in re, fuzzy matching in regex
        ("x{e}", "y", True),
        ("[[:alpha:]]", "a", True),  # a set and a ']' in re, a POSIX class in regex
        ("[[:alpha:]]", ":]", True),
        (r"\N{LATIN SMALL LETTER A}{2}", "aa", True),
    ],
)
def test_regexes_mean_what_they_mean_in_re(
    pattern: str, subject: str, case_sensitive: bool
) -> None:
    when = {"field": "subject", "op": "regex", "value": pattern, "case_sensitive": case_sensitive}
    expected = re.search(pattern, subject, 0 if case_sensitive else re.IGNORECASE) is not None
    doc = {"id": "t", "subject": subject}  # subjects with line breaks, as bodies have them
    assert bool(compiled(when).tags_for(MessageView(doc))) == expected


def test_a_catastrophic_rule_times_out_and_the_other_rules_still_apply() -> None:
    doc = message(RUNAWAY)
    runaway = compiled({"field": "subject", "op": "regex", "value": "(a|aa)+$"})
    other = compile_rule(
        parse_rule(
            {
                "name": "other",
                "when": {"field": "subject", "op": "contains", "value": "aaa"},
                "actions": {"add_tags": ["project/other"]},
            },
            get_tokenizer(),
        ),
        2,
        get_tokenizer(),
        LIMIT,
    )
    started = time.monotonic()
    outcome = evaluate(doc, Evaluation([TagSource.of_rule(runaway), TagSource.of_rule(other)]), NOW)
    assert time.monotonic() - started < BOUND
    assert outcome.change is not None and outcome.change.fields["tags"] == ["project/other"]
    [timeout] = outcome.timeouts
    assert (timeout.rule, timeout.version, timeout.message) == ("r", 1, doc["id"])
    assert str(timeout) == (
        f"tagging rule 'r' (v1) timed out after {LIMIT:g} s on message {doc['id']}"
    )
