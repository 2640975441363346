"""Which policies and holds match which messages: asked of the search index itself.

Policy and hold criteria are written in the search query language, so they are translated by
the search's own translator (archiver/search/query/to_es.py) and matched by Elasticsearch, never
re-implemented here: ``合同`` in a policy covers exactly the mail a search for 合同 finds. Every
policy and hold becomes a named clause of one request, and each hit says which of them it
matched (``matched_queries``): one search decides a whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from archiver.holds.model import Hold, HoldCriteria
from archiver.ports import Document
from archiver.retention.decision import Decision, decide, sent_and_arrival, verdict
from archiver.retention.policy import Criteria
from archiver.retention.state import RetentionState
from archiver.search.query.parser import read_query
from archiver.search.query.to_es import Translator

Query = dict[str, Any]
POLICY = "policy:"
HOLD = "hold:"
# a custodian is anyone who sent or received the message, Bcc and envelope recipients included
CUSTODIAN_FIELDS = ("participants", "envelope_from")


@dataclass(frozen=True)
class Matches:
    policies: frozenset[str] = frozenset()  # names
    holds: frozenset[str] = frozenset()  # ids


def _path(field: str, values: Sequence[str]) -> Query:
    """A tag or department or anything below it, as the query language's tag: does."""
    clauses: list[Query] = []
    for value in values:
        path = value.strip("/")
        clauses += [{"term": {field: path}}, {"prefix": {field: path + "/"}}]
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


class CriteriaQueries:
    """Policy and hold criteria as Elasticsearch queries."""

    def __init__(
        self,
        translator: Translator,
        timezone: str,
        addresses_of: Callable[[str], Sequence[str]] = lambda user: (),
    ) -> None:
        self.translator = translator
        self.tz = ZoneInfo(timezone)
        self.addresses_of = addresses_of  # an archive user's email addresses

    def query_text(self, text: str) -> Query | None:
        """The query language's query; InvalidQuery (with its position) when it is not valid."""
        if not text.strip():
            return None
        return self.translator.translate(read_query(text).tree).query

    def policy(self, criteria: Criteria) -> Query:
        must: list[Query] = []
        if (query := self.query_text(criteria.query)) is not None:
            must.append(query)
        if criteria.tags:
            must.append(_path("tags", criteria.tags))
        if criteria.departments:
            must.append(_path("departments", criteria.departments))
        if criteria.sources:
            must.append({"terms": {"source_kinds": list(criteria.sources)}})
        return {"bool": {"filter": must}} if must else {"match_all": {}}

    def hold(self, hold: HoldCriteria) -> Query:
        must: list[Query] = []
        custodians = self._custodians(hold)
        if custodians is not None:
            must.append(custodians)
        if (query := self.query_text(hold.query)) is not None:
            must.append(query)
        if hold.sent_after or hold.sent_before:
            must.append({"range": {"date": self._days(hold.sent_after, hold.sent_before)}})
        return {"bool": {"filter": must}}

    def _custodians(self, hold: HoldCriteria) -> Query | None:
        people = hold.custodians
        if people.empty:
            return None
        addresses = self.custodian_addresses(hold)
        should: list[Query] = [
            {"terms": {f: sorted(addresses)}} for f in CUSTODIAN_FIELDS if addresses
        ]
        if people.departments:
            should.append(_path("departments", people.departments))
        # a user with no address yet covers nothing rather than everything
        return {"bool": {"should": should or [{"match_none": {}}], "minimum_should_match": 1}}

    def custodian_addresses(self, hold: HoldCriteria) -> set[str]:
        """The hold's custodian addresses, its archive users' email addresses included."""
        addresses = set(hold.custodians.addresses)
        for user in hold.custodians.users:
            addresses |= {a.lower() for a in self.addresses_of(user) if a}
        return addresses

    def _days(self, first: date | None, last: date | None) -> dict[str, str]:
        bounds: dict[str, str] = {}
        if first:
            bounds["gte"] = datetime.combine(first, time(), self.tz).isoformat()
        if last:
            bounds["lt"] = datetime.combine(last + timedelta(days=1), time(), self.tz).isoformat()
        return bounds

    def named(self, state: RetentionState, holds: Sequence[Hold] | None = None) -> list[Query]:
        """One named clause per policy in force and per active hold (or the holds given)."""
        clauses = [
            _named(f"{POLICY}{v.name}", self.policy(v.policy.criteria))
            for v in state.in_force()
            if v.policy is not None
        ]
        for hold in state.active_holds() if holds is None else holds:
            clauses.append(_named(f"{HOLD}{hold.id}", self.hold(hold)))
        return clauses


def _named(name: str, query: Query) -> Query:
    # constant_score: matching decides, scoring would only cost
    return {"constant_score": {"filter": query, "_name": name}}


def with_named(base: Query, named: Sequence[Query]) -> Query:
    """base, with the named clauses as optional should clauses (they only report)."""
    if not named:
        return base
    return {"bool": {"filter": [base], "should": list(named), "minimum_should_match": 0}}


def matches_of(hit: Mapping[str, Any]) -> Matches:
    names = hit.get("matched_queries") or []
    if isinstance(names, Mapping):  # include_named_queries_score answers a mapping
        names = list(names)
    return Matches(
        policies=frozenset(n.removeprefix(POLICY) for n in names if n.startswith(POLICY)),
        holds=frozenset(n.removeprefix(HOLD) for n in names if n.startswith(HOLD)),
    )


def hit_document(hit: Mapping[str, Any]) -> Document:
    return {**hit.get("_source", {}), "id": hit["_id"]}


def decide_hit(state: RetentionState, doc: Mapping[str, Any], matches: Matches) -> Decision:
    """The decision for one message, from the policies and holds it matched under `state`."""
    sent, arrival = sent_and_arrival(doc)
    versions = {v.name: v for v in state.in_force()}
    matched = [verdict(versions[n], sent, arrival) for n in matches.policies if n in versions]
    active = {h.id for h in state.active_holds()}
    return decide(matched, verdict(state.default(), sent, arrival), sorted(matches.holds & active))
