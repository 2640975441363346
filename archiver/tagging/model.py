"""Tags, their provenance and the state of a message's tags.

A tag is a path (``department/技术部``, ``project/凤凰``, ``urgency/high`` or any free path). The
message document keeps the effective tags in ``tags`` (exact paths; a subtree is a prefix query)
and every change in ``tag_events``. Effective tags are a pure function of the events, so every tag
can be explained and nothing else needs to be stored.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from archiver.errors import InvalidTagging
from archiver.ports import Document

NAMESPACES: dict[str, str] = {
    "project": "projects a message belongs to",
    "department": "departments of the people involved (rules and the directory set these)",
    "urgency": "how urgent a message is, e.g. urgency/high",
}
DEPARTMENT = "department"
MAX_TAG_CHARS = 200
MAX_TAG_DEPTH = 8


def normalise_tag(path: str) -> str:
    """The canonical form of a tag path; raises InvalidTagging for one that cannot be a tag."""
    text = unicodedata.normalize("NFKC", str(path)).strip().strip("/")
    parts = [p.strip() for p in text.split("/")]
    if not text or any(not p for p in parts):
        raise InvalidTagging("tag", f"{path!r} has an empty path segment")
    if len(text) > MAX_TAG_CHARS or len(parts) > MAX_TAG_DEPTH:
        raise InvalidTagging(
            "tag", f"{path!r} is longer than {MAX_TAG_CHARS} characters or {MAX_TAG_DEPTH} levels"
        )
    if any(not ch.isprintable() for ch in text):
        raise InvalidTagging("tag", f"{path!r} contains control characters")
    return "/".join(parts)


def department_tag(department: str) -> str:
    return normalise_tag(f"{DEPARTMENT}/{department}")


def departments_of(tags: Iterable[str]) -> list[str]:
    """The department names in a set of tags (``department/技术部`` → ``技术部``)."""
    prefix = DEPARTMENT + "/"
    return sorted({t[len(prefix) :] for t in tags if t.startswith(prefix)})


class TagDefinition(BaseModel):
    """Optional description of a tag; tags need no definition to be used."""

    path: str
    description: str = ""
    created_at: datetime | None = None


ByKind = Literal["rule", "manual", "directory"]
Action = Literal["add", "remove"]


class By(BaseModel):
    """Who or what changed a tag: a rule (name, version), a person, or the directory (version)."""

    model_config = ConfigDict(frozen=True)

    kind: ByKind
    rule: str | None = None
    version: int | None = None
    user: str | None = None

    def holder(self) -> str:
        """The key under which an automatic source holds tags (manual tags have none)."""
        return f"rule:{self.rule}" if self.kind == "rule" else self.kind


class TagEvent(BaseModel):
    tag: str
    action: Action
    by: By
    at: datetime


@dataclass
class TagState:
    """The fold of a message's tag events.

    holders: tag -> the automatic sources (``rule:NAME``, ``directory``) that currently assert it.
    manual: tag -> the last manual action on it. A manual removal overrides automatic sources (a
    rule does not put back a tag a person took off); a manual add keeps a tag whatever rules say.
    legacy: tags on the message that no event explains (set before tagging existed); kept.
    """

    holders: dict[str, set[str]] = field(default_factory=dict)
    manual: dict[str, str] = field(default_factory=dict)
    legacy: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> TagState:
        state = cls()
        for raw in doc.get("tag_events") or []:
            state.apply(TagEvent.model_validate(raw))
        explained = set(state.holders) | set(state.manual)
        state.legacy = {t for t in doc.get("tags") or [] if t not in explained}
        return state

    def apply(self, event: TagEvent) -> None:
        self.legacy.discard(event.tag)  # explained from now on
        if event.by.kind == "manual":
            self.manual[event.tag] = event.action
            return
        holders = self.holders.setdefault(event.tag, set())
        if event.action == "add":
            holders.add(event.by.holder())
        else:
            holders.discard(event.by.holder())

    def held_by(self, holder: str) -> set[str]:
        return {tag for tag, holders in self.holders.items() if holder in holders}

    def effective(self) -> set[str]:
        automatic = {t for t, h in self.holders.items() if h and self.manual.get(t) != "remove"}
        manual = {t for t, action in self.manual.items() if action == "add"}
        return automatic | manual | self.legacy


def tag_fields(state: TagState, events: Sequence[TagEvent], previous: Sequence[Any]) -> Document:
    """The document fields that change when events are appended to a message's history."""
    tags = sorted(state.effective())
    return {
        "tags": tags,
        "departments": departments_of(tags),
        "tag_events": [*previous, *(e.model_dump(mode="json") for e in events)],
    }
