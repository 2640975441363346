"""The audit log on the in-memory store: chaining, concurrent appends, sealing, fail-closed
writes, and verification naming every single tampering (hypothesis)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.audit.log import AuditFilter, AuditLog
from archiver.audit.records import GENESIS, AuditAction, AuditRecord, Outcome
from archiver.audit.verify import IssueKind
from archiver.errors import BackendUnavailable
from tests.support.audit_tamper import TAMPERS, MemoryBucket
from tests.support.fakes import InMemoryAuditStore

ACTIONS = [a for a in AuditAction if a is not AuditAction.AUDIT_SEAL]


def filled(count: int, *, seal_every: int = 4) -> tuple[InMemoryAuditStore, AuditLog]:
    store = InMemoryAuditStore()
    log = AuditLog(store, seal_every=seal_every)
    for n in range(count):
        log.record(
            ACTIONS[n % len(ACTIONS)],
            actor=f"user{n % 3}",
            actor_roles=("auditor",),
            target=f"target-{n}",
            details={"query": "合同 审批", "total": n},
            request_id=f"req-{n}",
        )
    return store, log


def test_records_chain_from_the_genesis_value_and_verify_clean() -> None:
    store, log = filled(10)
    records = list(log.records())
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    assert records[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(records):
        assert after.prev_hash == before.hash
        assert after.hash == after.computed_hash()
    report = log.verify()
    assert report.ok, report.issues
    assert report.segments == len(store.segment_data) > 0


def test_the_hash_covers_every_field() -> None:
    _, log = filled(1)
    record = next(log.records())
    for field, value in [
        ("actor", "mallory"),
        ("actor_roles", ("admin",)),
        ("client", "10.0.0.1"),
        ("action", AuditAction.EXPORT),
        ("target", "x"),
        ("details", {"query": "x"}),
        ("outcome", Outcome.DENIED),
        ("request_id", "r"),
        ("seq", 2),
        ("time", record.time + timedelta(seconds=1)),
        ("prev_hash", "1" * 64),
    ]:
        assert record.model_copy(update={field: value}).computed_hash() != record.hash, field


def test_every_seal_every_records_a_segment_under_retention_is_written() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    store = InMemoryAuditStore()
    log = AuditLog(store, seal_every=3, retention_days=180, clock=lambda: now)
    for _ in range(6):
        log.record(AuditAction.SEARCH, actor="a")
    # 3 records, then their seal (4); 5, 6, 7 and the seal 8
    assert sorted(store.segment_data) == [(1, 4), (5, 8)]
    assert set(store.retained_until.values()) == {now + timedelta(days=180)}
    assert log.seal() is None  # nothing new since the last seal
    log.record(AuditAction.SEARCH, actor="a")
    seal = log.seal()
    assert seal is not None and seal.details == {"first": 9}
    assert (9, 10) in store.segment_data
    assert log.verify().ok


def test_writers_that_lose_the_race_for_a_number_chain_onto_the_winner() -> None:
    # round robin: every writer's idea of the head is stale at each append (the threaded test
    # against the real S3 is in test_audit_s3.py)
    store = InMemoryAuditStore()
    logs = [AuditLog(store, seal_every=5) for _ in range(4)]
    for n in range(25):
        for who, log in enumerate(logs):
            log.record(AuditAction.VIEW, actor=f"w{who}", target=str(n))
    records = list(logs[0].records())
    views = [(r.actor, r.target) for r in records if r.action == AuditAction.VIEW]
    assert sorted(views) == sorted((f"w{w}", str(n)) for w in range(4) for n in range(25))
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    report = logs[0].verify()
    assert report.ok, report.issues


def test_a_record_that_cannot_be_written_fails_closed() -> None:
    store, log = filled(2)
    store.faults.fail_next(1, only={"put_record"})
    with pytest.raises(BackendUnavailable):
        log.record(AuditAction.VIEW, actor="a")
    assert len(store.records) == 2 + 0  # nothing half-written
    log.record(AuditAction.VIEW, actor="a")  # and the next one chains on
    assert log.verify().ok


def test_a_seal_whose_segment_could_not_be_written_is_completed_by_the_next_seal() -> None:
    store = InMemoryAuditStore()
    log = AuditLog(store, seal_every=3)
    store.faults.fail_next(1, only={"put_segment"})
    for _ in range(3):
        log.record(AuditAction.SEARCH, actor="a")  # the third one's seal fails: not raised
    assert store.records.keys() == {1, 2, 3, 4} and not store.segment_data
    assert log.verify().kinds() == {IssueKind.SEGMENT_MISSING}
    assert log.seal() is None  # nothing new, but the missing segment is written
    assert sorted(store.segment_data) == [(1, 4)]
    assert log.verify().ok


def test_records_filter_by_actor_action_and_time() -> None:
    times = iter(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(100))
    store = InMemoryAuditStore()
    log = AuditLog(store, seal_every=0, clock=lambda: next(times))
    for n in range(10):
        log.record(AuditAction.SEARCH if n % 2 else AuditAction.VIEW, actor=f"u{n % 2}")
    since = datetime(2026, 1, 1, 4, tzinfo=UTC)
    found = list(log.records(AuditFilter(actions=[AuditAction.SEARCH], since=since)))
    assert [r.seq for r in found] == [6, 8, 10]
    assert all(r.actor == "u1" for r in found)


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_each_tampering_is_detected_and_named(name: str) -> None:
    store, log = filled(12)
    assert log.verify().ok
    kind, seq = TAMPERS[name](MemoryBucket(store), 6)
    report = log.verify()
    assert any(i.kind == kind and seq in i.seqs for i in report.issues), report.issues


@settings(max_examples=150, deadline=None)
@given(
    count=st.integers(min_value=3, max_value=20),
    seal_every=st.integers(min_value=1, max_value=6),
    name=st.sampled_from(sorted(TAMPERS)),
    where=st.integers(min_value=1, max_value=40),
)
def test_any_single_tampering_of_any_log_is_reported(
    count: int, seal_every: int, name: str, where: int
) -> None:
    store, log = filled(count, seal_every=seal_every)
    log.seal()
    assert log.verify().ok
    seq = min(where, max(store.records))
    kind, named = TAMPERS[name](MemoryBucket(store), seq)
    report = log.verify()
    assert not report.ok
    assert any(i.kind == kind and named in i.seqs for i in report.issues), (kind, report.issues)


def test_a_record_round_trips_through_its_stored_form() -> None:
    _, log = filled(1)
    record = next(log.records())
    assert AuditRecord.model_validate_json(record.encode()) == record
    assert record.time.tzinfo is not None and record.time.utcoffset() == timedelta(0)
