"""Precedence: how the matching policies and holds decide one message's retention.

1. An active hold beats everything: a held message is never deleted, whatever its date.
2. Among the policies that match, "keep forever" beats any finite period, and otherwise the
   longest retention wins (ties go to the policy first by name, so a decision is repeatable).
3. The default policy decides only mail no policy matches.
4. A message is deleted only when no hold covers it and its retention has ended.

Pure functions over plain values: the unit tests of precedence need no backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from archiver.ports import Document
from archiver.retention.policy import Action, PolicyVersion

# the index fields a decision is stored in (archiver/adapters/index_templates/messages.json)
DECISION_FIELDS = (
    "retain_until",
    "retention_forever",
    "retention_winner",
    "retention_policies",
    "holds",
    "retention_generation",
    "retention_decided_at",
)
LOCK_FIELDS = ("lock_until", "legal_hold")
# what deciding reads of a message, besides the fields above
MESSAGE_FIELDS = ("date", "arrived_at", "ingested_at", "subject", "departments", "size")


@dataclass(frozen=True)
class Verdict:
    """One policy's say on one message."""

    policy: str  # "name@v3"
    action: Action
    until: datetime | None  # None: kept forever

    @property
    def forever(self) -> bool:
        return self.until is None


def verdict(version: PolicyVersion, sent: datetime, arrival: datetime) -> Verdict:
    assert version.policy is not None
    policy = version.policy
    return Verdict(version.ref, policy.action, policy.expires(sent, arrival))


@dataclass(frozen=True)
class Decision:
    winner: Verdict
    matched: tuple[Verdict, ...]  # the policies that matched (none: the default decided)
    holds: tuple[str, ...]  # active holds covering the message

    @property
    def retain_until(self) -> datetime | None:
        return self.winner.until

    @property
    def forever(self) -> bool:
        return self.winner.forever

    def deletable(self, now: datetime) -> bool:
        return not self.holds and self.retain_until is not None and self.retain_until <= now

    def lock_until(self, now: datetime, horizon: timedelta) -> datetime | None:
        """How long the storage must refuse deletion: to the end of a finite retention, or a
        rolling horizon for "forever" (renewed by each run: a lock that could never end would
        make a later, shorter policy impossible to apply). None once retention has ended."""
        if self.forever:
            return now + horizon
        assert self.retain_until is not None
        return self.retain_until if self.retain_until > now else None

    def fields(self, generation: int, now: datetime) -> Document:
        return {
            "retain_until": self.retain_until.isoformat() if self.retain_until else None,
            "retention_forever": self.forever,
            "retention_winner": self.winner.policy,
            "retention_policies": [v.policy for v in self.matched],
            "holds": list(self.holds),
            "retention_generation": generation,
            "retention_decided_at": now.isoformat(),
        }


def _order(v: Verdict) -> tuple[str, str, datetime]:
    return v.policy, v.action, v.until or datetime.max.replace(tzinfo=UTC)


def decide(matched: Sequence[Verdict], default: Verdict, holds: Sequence[str]) -> Decision:
    candidates = sorted(matched, key=_order) or [default]
    forever = [v for v in candidates if v.forever]
    if forever:
        winner = forever[0]
    else:
        latest = max(v.until for v in candidates if v.until is not None)
        winner = next(v for v in candidates if v.until == latest)
    return Decision(winner, tuple(candidates if matched else ()), tuple(sorted(holds)))


def changed(decision: Decision, doc: Mapping[str, Any]) -> bool:
    """Whether the stored decision differs from this one (the generation aside)."""
    stored_until = doc.get("retain_until")
    until = decision.retain_until
    return (
        instant(stored_until) != until
        or bool(doc.get("retention_forever")) != decision.forever
        or doc.get("retention_winner") != decision.winner.policy
        or sorted(doc.get("retention_policies") or []) != [v.policy for v in decision.matched]
        or sorted(doc.get("holds") or []) != list(decision.holds)
    )


def whole_second(when: datetime) -> datetime:
    """S3 keeps retention dates to the second: rounded up, so the date in force is never
    earlier than asked for and reads back equal to what was asked."""
    when = when.astimezone(UTC)
    return when.replace(microsecond=0) + timedelta(seconds=1 if when.microsecond else 0)


def instant(value: Any) -> datetime | None:
    if not value:
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def sent_and_arrival(doc: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """The date sent (the parser falls back to the arrival when a message has none) and the
    arrival time of a stored document."""
    arrival = instant(doc.get("arrived_at")) or instant(doc.get("ingested_at"))
    sent = instant(doc.get("date")) or arrival
    assert sent is not None, f"document {doc.get('id')} has neither a date nor an arrival"
    return sent, arrival or sent


def count_breakdown(
    by_department: dict[str, int], by_month: dict[str, int], doc: Mapping[str, Any]
) -> None:
    """Count a message under each of its departments and under its month sent: the two
    breakdowns a dry run and a disposition run show."""
    for department in doc.get("departments") or ["(none)"]:
        by_department[department] = by_department.get(department, 0) + 1
    month = f"{sent_and_arrival(doc)[0]:%Y-%m}"
    by_month[month] = by_month.get(month, 0) + 1
