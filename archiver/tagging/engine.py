"""Evaluating tag sources against one index document: the single function behind the pipeline,
preview and apply, so a preview's counts are exactly what an apply does."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from archiver.errors import RuleTimedOut
from archiver.ports import Document
from archiver.tagging.directory import DIRECTORY_READS, Directory
from archiver.tagging.keywords import TOPIC_SOURCES, document_topics
from archiver.tagging.model import Action, By, TagEvent, TagState, tag_fields
from archiver.tagging.rules import CompiledRule, MessageView

# what every evaluation reads: the tag state, and the subject for samples
STATE_READS = frozenset({"id", "subject", "tags", "departments", "tag_events", "topics"})


@dataclass(frozen=True)
class TagSource:
    """An automatic source of tags (a rule version or the directory) and what it reads."""

    by: By
    tags_for: Callable[[MessageView], set[str]]
    reads: frozenset[str]

    @classmethod
    def of_rule(cls, rule: CompiledRule) -> TagSource:
        by = By(kind="rule", rule=rule.rule.name, version=rule.version)
        return cls(by, rule.tags_for, rule.reads)

    @classmethod
    def released(cls, name: str, version: int | None) -> TagSource:
        """A deleted rule: it asserts nothing, so applying it takes back every tag it set."""
        return cls(By(kind="rule", rule=name, version=version), lambda _: set(), frozenset())

    @classmethod
    def of_directory(cls, directory: Directory) -> TagSource:
        by = By(kind="directory", version=directory.version)
        return cls(by, lambda view: directory.tags_for(view.doc), DIRECTORY_READS)


@dataclass(frozen=True)
class Topics:
    count: int
    stop_words: frozenset[str]


@dataclass(frozen=True)
class Evaluation:
    """What is (re-)evaluated: some automatic sources and, optionally, the topics."""

    sources: Sequence[TagSource] = ()
    topics: Topics | None = None

    def reads(self) -> list[str]:
        fields = set(STATE_READS).union(*(s.reads for s in self.sources))
        if self.topics is not None:
            fields |= set(TOPIC_SOURCES)
        return sorted(fields)


@dataclass
class Change:
    """What evaluating a message changes: new events, tags gained and lost, the partial doc."""

    id: str
    subject: str
    events: list[TagEvent]
    gained: set[str]
    lost: set[str]
    fields: Document = field(default_factory=dict)


@dataclass
class Outcome:
    """The change (None: nothing changes) and the rules that timed out, which are skipped."""

    change: Change | None
    timeouts: list[RuleTimedOut] = field(default_factory=list)


def plan(doc: Document, evaluation: Evaluation, now: datetime) -> Change | None:
    """The change evaluation makes to doc, or None when it changes nothing (so applying twice
    is a no-op)."""
    return evaluate(doc, evaluation, now).change


def evaluate(doc: Document, evaluation: Evaluation, now: datetime) -> Outcome:
    """Each source gains the tags it now asserts and gives back those it no longer does; manual
    tags and other sources' tags are untouched. A rule that times out keeps the tags it holds
    (it could not say otherwise) while the other sources still apply."""
    state = TagState.of(doc)
    before = state.effective()
    view = MessageView(doc)
    events: list[TagEvent] = []
    timeouts: list[RuleTimedOut] = []
    for source in evaluation.sources:
        held = state.held_by(source.by.holder())
        try:
            wanted = source.tags_for(view)
        except RuleTimedOut as exc:
            timeouts.append(exc)
            continue
        for tag, action in [*_pairs(wanted - held, "add"), *_pairs(held - wanted, "remove")]:
            event = TagEvent(tag=tag, action=action, by=source.by, at=now)
            state.apply(event)
            events.append(event)
    fields: Document = {}
    if events:
        fields.update(tag_fields(state, events, doc.get("tag_events") or []))
    if evaluation.topics is not None:
        topics = document_topics(doc, evaluation.topics.count, evaluation.topics.stop_words)
        if topics != (doc.get("topics") or []):
            fields["topics"] = topics
    if not fields:
        return Outcome(None, timeouts)
    after = state.effective()
    subject = str(doc.get("subject") or "")
    change = Change(str(doc.get("id", "")), subject, events, after - before, before - after, fields)
    return Outcome(change, timeouts)


def manual_change(
    doc: Document, add: Iterable[str], remove: Iterable[str], user: str, now: datetime
) -> Change | None:
    """A person adds or removes tags; a manual removal keeps rules from putting a tag back."""
    state = TagState.of(doc)
    before = state.effective()
    by = By(kind="manual", user=user)
    events = [
        TagEvent(tag=t, action="add", by=by, at=now)
        for t in sorted(set(add))
        if state.manual.get(t) != "add"
    ] + [
        TagEvent(tag=t, action="remove", by=by, at=now)
        for t in sorted(set(remove))
        if state.manual.get(t) != "remove" and (t in before or t in state.holders)
    ]
    if not events:
        return None
    for event in events:
        state.apply(event)
    after = state.effective()
    fields = tag_fields(state, events, doc.get("tag_events") or [])
    subject = str(doc.get("subject") or "")
    return Change(str(doc.get("id", "")), subject, events, after - before, before - after, fields)


def _pairs(tags: set[str], action: Action) -> list[tuple[str, Action]]:
    return [(tag, action) for tag in sorted(tags)]
