"""Retention use cases: policies (versioned), their dry run, one message's explanation, and the
decision of new mail as it is indexed.

Recomputing the archive after a change is archiver/retention/recompute.py; deleting what has
expired is archiver/retention/disposition.py; matters and holds are archiver/holds/.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from archiver.errors import InvalidRetention, MailvaultError, MessageNotFound, NotFound
from archiver.models import LockState
from archiver.ports import Document, RetentionStorage, SearchIndex
from archiver.retention.decision import (
    DECISION_FIELDS,
    LOCK_FIELDS,
    Decision,
    count_breakdown,
    decide,
    instant,
    sent_and_arrival,
    verdict,
    whole_second,
)
from archiver.retention.enforce import PENDING, READS, Enforcer, Tally, search_decided
from archiver.retention.evaluate import CriteriaQueries, decide_hit, matches_of
from archiver.retention.policy import DEFAULT_POLICY, Policy, PolicyVersion, validated
from archiver.retention.state import RetentionState, StateStore
from archiver.search.walk import walk_hits

log = logging.getLogger(__name__)
SAMPLES = 10
DRAFT = "draft:"


@dataclass(frozen=True)
class RetentionOptions:
    # "keep forever" is locked this far ahead and renewed as it shortens (decision.py)
    lock_horizon: timedelta = timedelta(days=30)
    # a disposition run deleting more messages than this waits for a second person
    approval_limit: int = 1000
    batch_size: int = 500
    # tombstones stay under Object Lock this long after the message they stand for is gone
    tombstone_days: int = 3650


def utc_now() -> datetime:
    return datetime.now(UTC)


class PolicyChange(BaseModel):
    """A message whose decision a draft policy would change."""

    id: str
    subject: str
    before: datetime | None
    after: datetime | None
    before_policy: str
    after_policy: str


class PolicyPreview(BaseModel):
    """What saving a draft policy would change, before it is saved."""

    policy: str
    scanned: int = 0
    matched: int = 0  # messages the draft's criteria match
    changed: int = 0  # messages whose retain_until or deciding policy would change
    longer: int = 0
    shorter: int = 0
    deletable_now: int = 0  # would be due for disposition at once (no hold)
    by_department: dict[str, int] = Field(default_factory=dict)  # of the changed
    by_month: dict[str, int] = Field(default_factory=dict)  # month sent, of the changed
    samples: list[PolicyChange] = Field(default_factory=list)


class PolicyVerdict(BaseModel):
    policy: str
    action: str
    until: datetime | None
    won: bool


class HoldCover(BaseModel):
    id: str
    matter: str
    name: str


class Explanation(BaseModel):
    """Why one message is kept as long as it is."""

    id: str
    generation: int
    matched: list[PolicyVerdict]
    default_applies: bool
    default: PolicyVerdict
    holds: list[HoldCover]
    winner: str
    retain_until: datetime | None
    forever: bool
    deletable: bool
    reason: str
    storage: LockState
    stored: dict[str, Any]  # the decision stored with the message (the index)
    stored_up_to_date: bool


class RetentionService:
    def __init__(
        self,
        index: SearchIndex,
        storage: RetentionStorage,
        state: StateStore,
        queries: CriteriaQueries,
        options: RetentionOptions | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.index = index
        self.storage = storage
        self.state = state
        self.queries = queries
        self.options = options or RetentionOptions()
        self.clock = clock
        self.enforcer = Enforcer(index, storage, self.options.lock_horizon, clock)

    # -- policies ----------------------------------------------------------------------------

    def policies(self) -> list[PolicyVersion]:
        state = self.state.load()
        return [state.default(), *state.in_force()]

    def policy(self, name: str, version: int | None = None) -> PolicyVersion:
        state = self.state.load()
        found = (
            state.latest(name)
            if version is None
            else next((v for v in state.history(name) if v.version == version), None)
        )
        if found is None or (version is None and found.policy is None):
            raise NotFound(
                f"no retention policy {name!r}" + (f" version {version}" if version else "")
            )
        return found

    def history(self, name: str) -> list[PolicyVersion]:
        history = self.state.load().history(name)
        if not history:
            raise NotFound(f"no retention policy {name!r}")
        return history

    def parse_policy(self, data: Mapping[str, Any]) -> Policy:
        """A valid policy, its query checked by the search's own parser, or InvalidRetention
        (InvalidQuery, with the position, for the query)."""
        policy = validated(Policy, data, "retention policy", "policy")
        self.queries.policy(policy.criteria)
        return policy

    def save_policy(self, data: Mapping[str, Any], actor: str) -> PolicyVersion:
        policy = self.parse_policy(data)
        return self._save(policy.name, policy, actor)

    def delete_policy(self, name: str, actor: str) -> PolicyVersion:
        if name == DEFAULT_POLICY:
            raise InvalidRetention(
                "retention policy", "the default policy can be changed, not deleted"
            )
        self.policy(name)  # NotFound for one that is not in force
        return self._save(name, None, actor)

    def _save(self, name: str, policy: Policy | None, actor: str) -> PolicyVersion:
        def edit(state: RetentionState) -> PolicyVersion:
            history = state.policies.setdefault(name, [])
            previous = history[-1].version if history else 0
            saved = PolicyVersion(
                name=name,
                version=previous + 1,
                policy=policy,
                saved_by=actor,
                saved_at=self.clock(),
            )
            history.append(saved)
            return saved

        saved, state = self.state.change(edit)
        log.info(
            "retention policy saved", extra={"policy": saved.ref, "generation": state.generation}
        )
        return saved

    # -- dry run -----------------------------------------------------------------------------

    def preview(self, data: Mapping[str, Any]) -> PolicyPreview:
        """Every message the draft would decide differently if saved as it is, counted by
        department and month sent, with samples. Nothing is written."""
        draft = self.parse_policy(data)
        state = self.state.load()
        after = state.model_copy(deep=True)
        after.policies.setdefault(draft.name, []).append(
            PolicyVersion(name=draft.name, version=len(after.history(draft.name)) + 1, policy=draft)
        )
        named = [
            *self.queries.named(state),
            {
                "constant_score": {
                    "filter": self.queries.policy(draft.criteria),
                    "_name": f"{DRAFT}{draft.name}",
                }
            },
        ]
        report = PolicyPreview(policy=draft.name)
        now = self.clock()
        for hits in walk_hits(self.index, READS, self.options.batch_size, named=named):
            for hit in hits:
                self._preview_one(report, state, after, draft.name, hit, now)
        return report

    def _preview_one(
        self,
        report: PolicyPreview,
        state: RetentionState,
        after_state: RetentionState,
        name: str,
        hit: Mapping[str, Any],
        now: datetime,
    ) -> None:
        doc = hit["_source"]
        report.scanned += 1
        current = matches_of(hit)
        hits_draft = f"{DRAFT}{name}" in (hit.get("matched_queries") or [])
        report.matched += hits_draft
        policies = (current.policies - {name}) | ({name} if hits_draft else set())
        before = decide_hit(state, doc, current)
        after = decide_hit(after_state, doc, type(current)(frozenset(policies), current.holds))
        if (before.retain_until, before.winner.policy.split("@")[0]) == (
            after.retain_until,
            after.winner.policy.split("@")[0],
        ):
            return
        report.changed += 1
        report.longer += _longer(after, before)
        report.shorter += _longer(before, after)
        report.deletable_now += after.deletable(now)
        count_breakdown(report.by_department, report.by_month, doc)
        if len(report.samples) < SAMPLES:
            report.samples.append(
                PolicyChange(
                    id=hit["_id"],
                    subject=str(doc.get("subject") or ""),
                    before=before.retain_until,
                    after=after.retain_until,
                    before_policy=before.winner.policy,
                    after_policy=after.winner.policy,
                )
            )

    # -- one message -------------------------------------------------------------------------

    def explain(self, doc_id: str, visible: SearchIndex) -> Explanation:
        """The matching policies, holds, the winner and the date, for a message `visible` (the
        person's scoped index) shows; MessageNotFound otherwise, as for a missing one."""
        if visible.get(doc_id) is None:
            raise MessageNotFound(doc_id)
        state = self.state.load()
        self.index.refresh()
        found = search_decided(self.index, self.queries, state, [doc_id])
        if not found:
            raise MessageNotFound(doc_id)
        doc, decision = found[0].doc, found[0].decision
        return self._explanation(state, doc, decision)

    def _explanation(self, state: RetentionState, doc: Document, decision: Decision) -> Explanation:
        now = self.clock()
        sent, arrival = sent_and_arrival(doc)
        default = verdict(state.default(), sent, arrival)
        storage = self.storage.lock_state(str(doc["id"]))
        holds = [state.hold(h) for h in decision.holds]
        stored = {k: doc.get(k) for k in (*DECISION_FIELDS, *LOCK_FIELDS)}

        def said(v: Any) -> PolicyVerdict:
            return PolicyVerdict(
                policy=v.policy, action=v.action, until=v.until, won=v == decision.winner
            )

        return Explanation(
            id=str(doc["id"]),
            generation=state.generation,
            matched=[said(v) for v in decision.matched],
            default_applies=not decision.matched,
            default=said(default),
            holds=[HoldCover(id=h.id, matter=h.matter, name=h.name) for h in holds if h],
            winner=decision.winner.policy,
            retain_until=decision.retain_until,
            forever=decision.forever,
            deletable=decision.deletable(now),
            reason=_reason(decision, storage, now),
            storage=storage,
            stored=stored,
            stored_up_to_date=instant(doc.get("retain_until")) == decision.retain_until
            and sorted(doc.get("holds") or []) == list(decision.holds)
            and doc.get("retention_winner") == decision.winner.policy,
        )

    # -- new mail ----------------------------------------------------------------------------

    def prepare(self, docs: list[Document]) -> list[Document]:
        """Before new documents are indexed: with no policy and no hold in force the default
        decides, so the decision (and the storage lock) is made here and indexed with the
        document; otherwise the document is marked pending, and `settle` decides it once it is
        searchable. Whatever cannot be decided now stays pending (the sweep decides it later);
        indexing never fails for it."""
        try:
            state = self.state.load()
        except MailvaultError as exc:
            log.warning("retention left pending", extra={"error": str(exc)})
            return [{**d, "retention_generation": PENDING} for d in docs]
        if self.queries.named(state):
            return [{**d, "retention_generation": PENDING} for d in docs]
        now = self.clock()
        decided = [(doc, self._default_decision(state, doc)) for doc in docs]
        try:
            found: list[Document | MessageNotFound] = self.enforcer.locks(
                [({**d, **x.fields(state.generation, now)}, x) for d, x in decided], now
            )
        except MailvaultError as exc:
            log.warning("retention left pending", extra={"messages": len(docs), "error": str(exc)})
            return [{**d, "retention_generation": PENDING} for d in docs]
        out: list[Document] = []
        for (doc, decision), locks in zip(decided, found, strict=True):
            if isinstance(locks, MessageNotFound):
                out.append({**doc, "retention_generation": PENDING})
            else:
                out.append({**doc, **decision.fields(state.generation, now), **locks})
        return out

    def store_locks(self) -> Callable[[Document], datetime | None] | None:
        """How long a new message's first PUT locks it, from its analysed document, when the
        default decides new mail alone (no policy or hold in force): then `prepare` finds the
        lock in force and sends S3 nothing more. None when it cannot be known before indexing
        (prepare and settle lock the mail then)."""
        try:
            state = self.state.load()
        except MailvaultError:
            return None
        if self.queries.named(state):
            return None
        now, horizon = self.clock(), self.options.lock_horizon

        def until(doc: Document) -> datetime | None:
            lock = self._default_decision(state, doc).lock_until(now, horizon)
            return whole_second(lock) if lock is not None else None

        return until

    @staticmethod
    def _default_decision(state: RetentionState, doc: Document) -> Decision:
        sent, arrival = sent_and_arrival(doc)
        return decide([], verdict(state.default(), sent, arrival), [])

    def settle(self, ids: Sequence[str]) -> Tally:
        """After new documents are indexed: decide those `prepare` left pending."""
        return self._decide(ids, pending_only=True)

    def redecide(self, ids: Sequence[str]) -> Tally:
        """Decide these messages again now (their tags changed by hand). Backend trouble is
        logged, not raised: the daily recompute decides them then."""
        try:
            return self._decide(ids, pending_only=False)
        except MailvaultError as exc:
            tally = Tally()
            for doc_id in ids:
                tally.fail(doc_id, str(exc))
            return tally

    def _decide(self, ids: Sequence[str], *, pending_only: bool) -> Tally:
        tally = Tally()
        state = self.state.load()
        if not ids or (pending_only and not self.queries.named(state)):
            return tally
        self.index.refresh()
        decided = search_decided(self.index, self.queries, state, ids)
        if pending_only:
            decided = [d for d in decided if d.doc.get("retention_generation") == PENDING]
        self.enforcer.apply(decided, state.generation, tally, always=pending_only)
        return tally


def _longer(a: Decision, b: Decision) -> bool:
    if a.retain_until == b.retain_until:
        return False
    if a.retain_until is None:
        return True
    return b.retain_until is not None and a.retain_until > b.retain_until


def _reason(decision: Decision, storage: LockState, now: datetime) -> str:
    if decision.holds:
        return f"held by {', '.join(decision.holds)}: kept whatever the policies say"
    if decision.forever:
        return f"kept forever by {decision.winner.policy}"
    assert decision.retain_until is not None
    when = decision.retain_until.isoformat()
    if decision.retain_until > now:
        return f"kept until {when} by {decision.winner.policy}"
    if storage.retain_until and storage.retain_until > now:
        return (
            f"retention ended {when} ({decision.winner.policy}), but the storage lock runs until"
            f" {storage.retain_until.isoformat()} (Object Lock is only ever extended): deleted then"
        )
    return f"retention ended {when} ({decision.winner.policy}): due for disposition"
