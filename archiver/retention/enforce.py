"""Deciding a batch of messages and making the storage enforce it.

The same steps serve new mail (the pipeline), the recompute after a change, and a disposition
run's last look before it deletes: search the batch with every policy and hold as a named clause,
decide each message (archiver/retention/decision.py), extend its Object Lock retention when the
decision asks for more than is in force, set or clear its legal hold flag, and store the
decision with the message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from archiver.errors import MessageNotFound
from archiver.ports import Document, RetentionStorage, SearchIndex
from archiver.retention.decision import (
    DECISION_FIELDS,
    LOCK_FIELDS,
    MESSAGE_FIELDS,
    Decision,
    changed,
    instant,
)
from archiver.retention.evaluate import (
    CriteriaQueries,
    decide_hit,
    hit_document,
    matches_of,
    with_named,
)
from archiver.retention.state import RetentionState

log = logging.getLogger(__name__)
READS = (*MESSAGE_FIELDS, *DECISION_FIELDS, *LOCK_FIELDS)
PENDING = -1  # retention_generation of a message indexed before its decision was made


@dataclass
class Tally:
    """What deciding a batch did, for the reports of the jobs that call it."""

    decided: int = 0
    changed: int = 0
    locks_extended: int = 0
    holds_set: int = 0
    holds_cleared: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def fail(self, doc_id: str, error: str) -> None:
        self.failed += 1
        if len(self.errors) < 20:
            self.errors.append(f"{doc_id}: {error}")
        log.warning("retention not enforced", extra={"id": doc_id, "error": error})


@dataclass(frozen=True)
class Decided:
    doc: Document
    decision: Decision


def search_decided(
    index: SearchIndex,
    queries: CriteriaQueries,
    state: RetentionState,
    ids: Sequence[str],
) -> list[Decided]:
    """Decide these messages under `state` with one search (they must be refreshed)."""
    if not ids:
        return []
    body = {
        "query": with_named({"ids": {"values": list(ids)}}, queries.named(state)),
        "size": len(ids),
        "source_includes": list(READS),
        "track_total_hits": False,
    }
    return decided_hits(state, index.search(body)["hits"]["hits"])


def decided_hits(state: RetentionState, hits: Sequence[Mapping[str, Any]]) -> list[Decided]:
    """Each hit (its named clauses matched) decided under `state`."""
    return [Decided(hit_document(h), decide_hit(state, h["_source"], matches_of(h))) for h in hits]


class Enforcer:
    def __init__(
        self,
        index: SearchIndex,
        storage: RetentionStorage,
        horizon: timedelta,
        clock: Callable[[], datetime],
        threads: int = 16,
    ) -> None:
        self.index = index
        self.storage = storage
        self.horizon = horizon
        self.clock = clock
        # each message's lock is a round trip or two to S3, independent of the others: one
        # after another they bound a recompute (bench/retention.py), side by side they overlap
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="retention")

    def locks(
        self, items: Sequence[tuple[Document, Decision]], now: datetime
    ) -> list[Document | MessageNotFound]:
        """lock_fields of each message, side by side; a message missing from the raw store
        gives its MessageNotFound in its place, any other error is raised."""

        def one(item: tuple[Document, Decision]) -> Document | MessageNotFound:
            try:
                return self.lock_fields(item[0], item[1], now)
            except MessageNotFound as exc:
                return exc

        return list(self._pool.map(one, items))

    def lock_fields(self, doc: Document, decision: Decision, now: datetime) -> Document:
        """Extend the storage lock and set the legal hold flag as the decision needs; the
        fields that record what the storage now enforces (empty when nothing changed)."""
        sha256 = str(doc["id"])
        out: Document = {}
        target = decision.lock_until(now, self.horizon)
        stored = instant(doc.get("lock_until"))
        # forever rolls: renewed once less than half the horizon is left, not on every look
        renew = stored is None or (
            stored < now + self.horizon / 2
            if decision.forever
            else target is not None and target > stored
        )
        if target is not None and renew:
            out["lock_until"] = self.storage.extend_retention(sha256, target).isoformat()
        held = bool(decision.holds)
        if held != bool(doc.get("legal_hold")):
            self.storage.set_legal_hold(sha256, held)
            out["legal_hold"] = held
        return out

    def apply(
        self, decided: Sequence[Decided], generation: int, tally: Tally, *, always: bool = False
    ) -> None:
        """Enforce and store each decision; only changed ones are written unless `always`."""
        now = self.clock()
        updates: dict[str, Document] = {}
        found = self.locks([(i.doc, i.decision) for i in decided], now)
        for item, locks in zip(decided, found, strict=True):
            doc_id = str(item.doc["id"])
            tally.decided += 1
            if isinstance(locks, MessageNotFound):
                tally.fail(doc_id, "indexed, but not in the raw store")
                continue
            self._count(tally, item.doc, locks)
            differs = changed(item.decision, item.doc)
            if differs or locks or always or item.doc.get("retention_generation") is None:
                tally.changed += differs
                updates[doc_id] = {**item.decision.fields(generation, now), **locks}
        for doc_id, error in self.index.update_many(updates).items():
            if error is not None:
                tally.fail(doc_id, error)

    @staticmethod
    def _count(tally: Tally, doc: Document, locks: dict[str, Any]) -> None:
        tally.locks_extended += "lock_until" in locks
        if "legal_hold" in locks:
            if locks["legal_hold"]:
                tally.holds_set += 1
            elif doc.get("legal_hold"):
                tally.holds_cleared += 1
