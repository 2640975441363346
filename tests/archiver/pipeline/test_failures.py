"""The failure log round-trips through the JsonStore port (here in memory)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from archiver.models import SpoolSegment, TaskFailure
from archiver.pipeline.failures import FailureLog
from tests.support.fakes import InMemoryJsonStore

WHEN = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def failure(sha256: str = "a" * 64, minutes: int = 0, error: str = "boom") -> TaskFailure:
    return TaskFailure(
        sha256=sha256,
        task="index",
        error=error,
        attempts=3,
        failed_at=WHEN + timedelta(minutes=minutes),
    )


def test_failures_round_trip_oldest_first_and_the_latest_per_message_wins() -> None:
    log = FailureLog(InMemoryJsonStore())
    segment = TaskFailure(
        segment=SpoolSegment(key="spool/2024-x.mvs", version="v1"),
        task="file_segment",
        error="corrupt",
        failed_at=WHEN,
    )
    log.record(failure(minutes=5))
    log.record(failure("b" * 64, minutes=1))
    log.record(failure(minutes=9, error="boom again"))
    log.record(segment)

    found = log.all()

    assert [(f.sha256, f.error) for f in found] == [
        ("", "corrupt"),
        ("b" * 64, "boom"),
        ("a" * 64, "boom again"),
    ]
    assert found[0] == segment and found[0].segment is not None
    assert found[0].segment.version == "v1"


def test_open_keeps_unresolved_failures_and_clears_resolved_ones() -> None:
    log = FailureLog(InMemoryJsonStore())
    log.record(failure("a" * 64))
    log.record(failure("b" * 64, minutes=1))

    still = log.open(lambda f: f.sha256 == "b" * 64)

    assert [f.sha256 for f in still] == ["b" * 64]
    assert [f.sha256 for f in log.all()] == ["b" * 64]
    log.clear(still[0])
    assert log.all() == []


def test_recording_safely_with_the_store_down_loses_only_the_record() -> None:
    store = InMemoryJsonStore()
    log = FailureLog(store)
    store.faults.unavailable = True

    log.record_safely(failure())  # logged instead; the raw store still holds the message

    store.faults.unavailable = False
    assert log.all() == []
