"""Precedence, as documented in archiver/retention/decision.py: an active hold beats everything,
keep forever beats any finite period, the longest retention wins, the default decides only mail
no policy matches, and a message is deletable only when nothing keeps it. Cases first, then the
same rules as properties over generated verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archiver.retention.decision import Decision, Verdict, decide, sent_and_arrival, verdict
from archiver.retention.policy import Period, Policy, PolicyVersion

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SENT = datetime(2020, 2, 29, 12, 0, tzinfo=UTC)
KEEP = Verdict("default@v0", "keep", None)


def finite(name: str, years: int) -> Verdict:
    return Verdict(name, "delete", SENT + timedelta(days=365 * years))


def forever(name: str) -> Verdict:
    return Verdict(name, "keep", None)


CASES = {
    "no policy matches: the default decides": ([], KEEP, [], KEEP),
    "one policy beats the default": ([finite("a@v1", 1)], KEEP, [], finite("a@v1", 1)),
    "the longest of overlapping policies wins": (
        [finite("short@v1", 1), finite("long@v2", 10), finite("mid@v1", 5)],
        KEEP,
        [],
        finite("long@v2", 10),
    ),
    "keep forever beats any finite period": (
        [finite("long@v1", 100), forever("legal@v3")],
        finite("default@v1", 1),
        [],
        forever("legal@v3"),
    ),
    "a matching shorter policy beats a longer default": (
        [finite("news@v1", 1)],
        finite("default@v2", 7),
        [],
        finite("news@v1", 1),
    ),
    "equal periods: the first policy by name, every time": (
        [finite("b@v1", 3), finite("a@v1", 3)],
        KEEP,
        [],
        finite("a@v1", 3),
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_precedence(case: str) -> None:
    matched, default, holds, winner = CASES[case]
    decision = decide(matched, default, holds)
    assert decision.winner == winner
    assert decision.retain_until == winner.until


def test_a_hold_keeps_an_expired_message_and_names_itself() -> None:
    expired = finite("news@v1", 1)
    assert decide([expired], KEEP, []).deletable(NOW)
    held = decide([expired], KEEP, ["hold-2", "hold-1"])
    assert not held.deletable(NOW)
    assert held.holds == ("hold-1", "hold-2")
    assert held.retain_until == expired.until  # kept for the hold, the policy's date unchanged


def test_only_ended_retention_is_deletable() -> None:
    assert not decide([], KEEP, []).deletable(NOW)
    future = Verdict("p@v1", "delete", NOW + timedelta(seconds=1))
    assert not decide([future], KEEP, []).deletable(NOW)
    assert decide([Verdict("p@v1", "delete", NOW)], KEEP, []).deletable(NOW)


def test_the_storage_lock_follows_the_decision() -> None:
    horizon = timedelta(days=30)
    assert decide([], KEEP, []).lock_until(NOW, horizon) == NOW + horizon  # forever rolls
    later = Verdict("p@v1", "delete", NOW + timedelta(days=400))
    assert decide([later], KEEP, []).lock_until(NOW, horizon) == later.until  # to the end
    assert decide([finite("p@v1", 1)], KEEP, []).lock_until(NOW, horizon) is None  # ended


def test_periods_count_calendar_months_and_years_from_the_chosen_basis() -> None:
    arrival = datetime(2021, 1, 31, tzinfo=UTC)
    yearly = Policy(name="y", period=Period(amount=1, unit="years"), action="delete")
    monthly = Policy(
        name="m", period=Period(amount=1, unit="months"), basis="arrival", action="delete"
    )
    assert yearly.expires(SENT, arrival) == datetime(2021, 2, 28, 12, 0, tzinfo=UTC)
    assert monthly.expires(SENT, arrival) == datetime(2021, 2, 28, tzinfo=UTC)
    keep = Policy(name="k", period=Period(amount=1, unit="days"), action="keep")
    assert keep.expires(SENT, arrival) is None  # kept at least a day, and then forever


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"name": "x", "action": "delete"}, "needs a period"),
        ({"name": "default", "action": "keep", "criteria": {"query": "合同"}}, "no criteria"),
        ({"name": "bad name!", "action": "keep"}, "pattern"),
        ({"name": "x", "action": "keep", "surprise": 1}, "Extra inputs"),
    ],
)
def test_invalid_policies_are_refused_with_the_reason(
    data: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        Policy.model_validate(data)


def test_a_message_without_a_date_counts_from_its_arrival() -> None:
    arrival = "2024-05-01T08:00:00+00:00"
    sent, came = sent_and_arrival({"id": "x", "arrived_at": arrival})
    assert sent == came == datetime.fromisoformat(arrival)
    version = PolicyVersion(
        name="p",
        version=2,
        policy=Policy(name="p", period=Period(amount=2, unit="days"), action="delete"),
    )
    assert verdict(version, sent, came) == Verdict("p@v2", "delete", sent + timedelta(days=2))


# -- the same rules over generated verdicts ------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
verdicts = st.builds(
    Verdict,
    policy=st.sampled_from([f"{n}@v{v}" for n in "abcde" for v in (1, 2)]),
    action=st.sampled_from(["delete", "keep"]),
    until=st.none() | instants,
)
hold_ids = st.lists(st.sampled_from(["hold-1", "hold-2", "hold-3"]), unique=True)


@given(matched=st.lists(verdicts, max_size=6), default=verdicts, holds=hold_ids, now=instants)
def test_precedence_properties(
    matched: list[Verdict], default: Verdict, holds: list[str], now: datetime
) -> None:
    decision: Decision = decide(matched, default, holds)
    candidates = matched or [default]
    assert decision.winner in candidates  # the default only when nothing matched
    if any(v.forever for v in candidates):
        assert decision.forever
    else:
        assert decision.retain_until == max(v.until for v in candidates if v.until)
    if holds:
        assert not decision.deletable(now)
    if decision.deletable(now):
        assert all(v.until is not None and v.until <= now for v in candidates)
    assert decide(list(reversed(matched)), default, list(reversed(holds))) == decision
