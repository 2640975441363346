"""InMemoryRetentionStorage keeps S3RetentionStorage's rules (tests/archiver/adapters/
test_s3_retention.py proves them on SeaweedFS), so domain tests can move its clock instead of
waiting for a retention to run out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from archiver.errors import MessageNotFound, StorageLocked
from archiver.models import LockState, Source, Tombstone
from tests.support.fakes import InMemoryRawStore, InMemoryRetentionStorage

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
RAW = b"Message-ID: <fake-lock@example.com>\r\n\r\nbody\r\n"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def stored(sources: int = 1) -> tuple[InMemoryRawStore, str]:
    raw = InMemoryRawStore()
    sha256 = ""
    for n in range(sources):
        sha256, _ = raw.put(RAW, Source(kind="import", detail=f"{n}.eml", received_at=T0))
    return raw, sha256


def test_retention_only_grows_and_keeps_its_mode() -> None:
    raw, sha256 = stored()
    storage = InMemoryRetentionStorage(raw, mode="COMPLIANCE", clock=Clock())

    assert storage.extend_retention(sha256, T0 + timedelta(days=2)) == T0 + timedelta(days=2)
    assert storage.extend_retention(sha256, T0 + timedelta(days=1)) == T0 + timedelta(days=2)
    storage.mode = "GOVERNANCE"
    assert storage.extend_retention(sha256, T0 + timedelta(days=3, microseconds=1)) == T0 + (
        timedelta(days=3, seconds=1)  # rounded up to the second, as S3 keeps it
    )
    assert storage.lock_state(sha256) == LockState(
        retain_until=T0 + timedelta(days=3, seconds=1), mode="COMPLIANCE"
    )


def test_purge_is_refused_while_locked_or_held_and_then_removes_everything() -> None:
    raw, sha256 = stored(sources=3)
    clock = Clock()
    storage = InMemoryRetentionStorage(raw, clock=clock)
    storage.extend_retention(sha256, T0 + timedelta(days=1))
    storage.set_legal_hold(sha256, True)

    with pytest.raises(StorageLocked) as locked:
        storage.purge(sha256)
    assert (locked.value.until, locked.value.legal_hold) == (T0 + timedelta(days=1), True)
    clock.now = T0 + timedelta(days=1, seconds=1)  # the retention ran out, the hold has not
    with pytest.raises(StorageLocked) as held:
        storage.purge(sha256)
    assert (held.value.until, held.value.legal_hold) == (None, True)
    assert raw.get(sha256) == RAW
    assert len(raw.records(sha256)) == 3

    storage.set_legal_hold(sha256, False)
    assert storage.purge(sha256) == (1, 2)  # the first source rode in the raw object
    assert not raw.exists(sha256)
    assert storage.purge(sha256) == (0, 0)
    with pytest.raises(MessageNotFound):
        storage.lock_state(sha256)
    with pytest.raises(MessageNotFound):
        storage.extend_retention(sha256, T0 + timedelta(days=9))


def test_a_tombstone_is_written_once_and_listed_oldest_first() -> None:
    storage = InMemoryRetentionStorage(InMemoryRawStore())
    first = Tombstone(
        sha256="a" * 64, run_id="r1", policy="p@v1", retain_until=None, disposed_at=T0
    )
    second = first.model_copy(update={"run_id": "r2"})
    other = first.model_copy(update={"sha256": "b" * 64})

    assert storage.put_tombstone(first, T0 + timedelta(days=1))
    assert not storage.put_tombstone(first.model_copy(update={"policy": "x@v2"}), T0)
    assert storage.put_tombstone(second, T0) and storage.put_tombstone(other, T0)

    assert list(storage.tombstones("a" * 64)) == [first, second]
    assert list(storage.tombstones()) == [first, second, other]
    assert storage.tombstone_until["a" * 64, "r1"] == (T0 + timedelta(days=1), "GOVERNANCE")
