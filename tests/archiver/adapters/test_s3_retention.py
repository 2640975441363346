"""S3RetentionStorage against the real SeaweedFS, in both Object Lock modes: what the storage
itself refuses (deleting a locked version, shortening a retention), what a purge removes (every
version, every record, no delete marker left), tombstones written once under retention, and the
number of requests the adapter was designed to send."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from minio.error import S3Error

from archiver.adapters.s3 import (
    LockMode,
    S3RawStore,
    S3RetentionStorage,
    raw_key,
    record_prefix,
    tombstone_key,
)
from archiver.errors import MessageNotFound, StorageLocked
from archiver.models import LockState, Source, SourceRecord, Tombstone
from archiver.settings import Settings
from bench.cleanup import drop_bucket, throwaway_settings

pytestmark = pytest.mark.services

MODES: list[LockMode] = ["GOVERNANCE", "COMPLIANCE"]


def whole_seconds(when: datetime) -> datetime:
    return when.replace(microsecond=0)


# Retentions far enough ahead that no test run outlives them (none of these tests needs a lock
# to run out: "expired" is tested on messages never locked).
LATER = whole_seconds(datetime.now(UTC) + timedelta(days=2))
SOONER = whole_seconds(datetime.now(UTC) + timedelta(days=1))


@pytest.fixture(scope="module")
def raw(settings: Settings, services: None) -> Iterator[S3RawStore]:
    """A bucket of this module's own: no S3 request can empty a bucket holding COMPLIANCE
    locks, so drop_bucket removes it below S3 (on the filer), and the test checks it did."""
    store = S3RawStore(throwaway_settings(settings, f"{settings.s3_bucket}-lock"))
    store.ensure_ready()
    yield store
    drop_bucket(store.client, store.bucket)
    assert not store.client.bucket_exists(store.bucket), f"{store.bucket} was left behind"


@pytest.fixture(params=MODES)
def storage(request: pytest.FixtureRequest, raw: S3RawStore) -> S3RetentionStorage:
    return S3RetentionStorage(raw, mode=request.param)


def source(detail: str) -> Source:
    return Source(kind="import", detail=detail, received_at=datetime.now(UTC))


def message(raw: S3RawStore, *, sources: int = 2) -> tuple[str, bytes]:
    """A new message with `sources` sources: the first in the raw object's metadata, the others
    as record objects under record_prefix."""
    body = f"Message-ID: <{uuid.uuid4().hex}@example.com>\r\nSubject: lock\r\n\r\nbody\r\n"
    data = body.encode()
    sha256, created = raw.put(data, source("first.eml"))
    assert created
    for n in range(1, sources):
        raw.put(data, source(f"again-{n}.eml"))
    return sha256, data


def versions(raw: S3RawStore, prefix: str) -> list[tuple[str, bool]]:
    """(key, is a delete marker) of every version under the prefix."""
    return [
        (o.object_name, bool(o.is_delete_marker))
        for o in raw.client.list_objects(
            raw.bucket, prefix=prefix, recursive=True, include_version=True
        )
    ]


def delete_directly(raw: S3RawStore, key: str) -> S3Error:
    """Delete every version of the key with minio itself, past the adapter; the first error."""
    for obj in raw.client.list_objects(raw.bucket, prefix=key, include_version=True):
        try:
            raw.client.remove_object(raw.bucket, key, version_id=obj.version_id)
        except S3Error as exc:
            return exc
    raise AssertionError(f"every version of {key} was deleted")


def test_a_locked_version_cannot_be_deleted_and_its_bytes_stay_readable(
    storage: S3RetentionStorage, raw: S3RawStore
) -> None:
    sha256, data = message(raw)
    assert storage.extend_retention(sha256, LATER) == LATER

    refused = delete_directly(raw, raw_key(sha256))

    assert refused.code == "AccessDenied"
    assert raw.get(sha256) == data
    assert versions(raw, raw_key(sha256)) == [(raw_key(sha256), False)]


def test_purge_of_a_message_under_retention_raises_and_leaves_bytes_and_records(
    storage: S3RetentionStorage, raw: S3RawStore
) -> None:
    sha256, data = message(raw, sources=3)
    storage.extend_retention(sha256, LATER)

    with pytest.raises(StorageLocked) as locked:
        storage.purge(sha256)

    assert (locked.value.sha256, locked.value.until, locked.value.legal_hold) == (
        sha256,
        LATER,
        False,
    )
    assert raw.get(sha256) == data
    assert [r.source.detail for r in raw.records(sha256)] == [
        "first.eml",
        "again-1.eml",
        "again-2.eml",
    ]
    assert len(versions(raw, record_prefix(sha256))) == 2


def test_retention_is_extended_and_never_shortened(
    storage: S3RetentionStorage, raw: S3RawStore
) -> None:
    sha256, _ = message(raw)

    assert storage.extend_retention(sha256, SOONER) == SOONER
    assert storage.extend_retention(sha256, LATER) == LATER
    assert storage.extend_retention(sha256, SOONER) == LATER  # the later date stays in force

    state = storage.lock_state(sha256)
    assert state == LockState(retain_until=LATER, mode=storage.mode, legal_hold=False)
    retention = raw.client.get_object_retention(raw.bucket, raw_key(sha256))
    assert retention is not None
    assert retention.retain_until_date == LATER


def test_a_retention_in_the_other_mode_is_extended_in_its_own_mode(raw: S3RawStore) -> None:
    """S3 refuses a PUT that changes the mode of a running retention: the storage reads the
    one in force and extends it as it is, never leaving the message with the earlier date."""
    governance = S3RetentionStorage(raw, mode="GOVERNANCE")
    compliance = S3RetentionStorage(raw, mode="COMPLIANCE")
    sha256, _ = message(raw, sources=1)
    governance.extend_retention(sha256, SOONER)

    assert compliance.extend_retention(sha256, LATER) == LATER
    assert compliance.extend_retention(sha256, SOONER) == LATER
    assert compliance.lock_state(sha256) == LockState(retain_until=LATER, mode="GOVERNANCE")


def test_a_date_within_a_second_is_rounded_up_so_the_date_in_force_reads_back_equal(
    storage: S3RetentionStorage, raw: S3RawStore
) -> None:
    sha256, _ = message(raw)
    asked = SOONER + timedelta(microseconds=250_000)

    in_force = storage.extend_retention(sha256, asked)

    assert in_force == SOONER + timedelta(seconds=1)
    assert storage.lock_state(sha256).retain_until == in_force


def test_a_legal_hold_blocks_purge_until_cleared_then_every_version_goes(
    storage: S3RetentionStorage, raw: S3RawStore
) -> None:
    sha256, data = message(raw, sources=2)
    key = raw_key(sha256)
    # a second version of the raw bytes (a plain PUT, as a client without If-None-Match would
    # write) and a second version of the record: purge must find them all
    raw.client.put_object(raw.bucket, key, io.BytesIO(data), len(data))
    (record,) = [r for r in raw.records(sha256) if r.source.detail == "again-1.eml"]
    raw.put_record(SourceRecord(sha256=sha256, source=record.source))
    assert len(versions(raw, key)) == 2
    assert len(versions(raw, record_prefix(sha256))) == 2

    storage.set_legal_hold(sha256, True)
    assert storage.lock_state(sha256) == LockState(legal_hold=True)
    with pytest.raises(StorageLocked) as locked:
        storage.purge(sha256)
    assert (locked.value.until, locked.value.legal_hold) == (None, True)
    assert raw.get(sha256) == data
    assert len(versions(raw, record_prefix(sha256))) == 2
    # a delete without a version id only adds a delete marker: purge must remove that too
    raw.client.remove_object(raw.bucket, key)
    assert (key, True) in versions(raw, key)

    storage.set_legal_hold(sha256, False)
    assert storage.lock_state(sha256) == LockState()
    assert storage.purge(sha256) == (2, 2)

    assert versions(raw, key) == []
    assert versions(raw, record_prefix(sha256)) == []
    assert not raw.exists(sha256)
    assert storage.purge(sha256) == (0, 0)  # a purge repeats


def test_a_message_never_locked_is_purged_at_once(
    storage: S3RetentionStorage, raw: S3RawStore
) -> None:
    sha256, _ = message(raw, sources=1)
    assert storage.lock_state(sha256) == LockState()

    assert storage.purge(sha256) == (1, 0)

    assert versions(raw, raw_key(sha256)) == []
    with pytest.raises(MessageNotFound):
        storage.lock_state(sha256)


def test_lock_state_reports_retention_and_hold_over_every_version(
    storage: S3RetentionStorage, raw: S3RawStore
) -> None:
    sha256, data = message(raw, sources=1)
    storage.extend_retention(sha256, SOONER)
    # a later version written after: the hold and the extension reach it too
    raw.client.put_object(raw.bucket, raw_key(sha256), io.BytesIO(data), len(data))

    storage.set_legal_hold(sha256, True)
    assert storage.extend_retention(sha256, LATER) == LATER

    assert storage.lock_state(sha256) == LockState(
        retain_until=LATER, mode=storage.mode, legal_hold=True
    )
    for obj in raw.client.list_objects(raw.bucket, prefix=raw_key(sha256), include_version=True):
        assert raw.client.is_object_legal_hold_enabled(raw.bucket, obj.object_name, obj.version_id)
        retention = raw.client.get_object_retention(raw.bucket, obj.object_name, obj.version_id)
        assert retention is not None
        assert (retention.mode, retention.retain_until_date) == (storage.mode, LATER)
    storage.set_legal_hold(sha256, False)
    assert storage.lock_state(sha256).legal_hold is False


def test_a_message_not_stored_is_not_found(storage: S3RetentionStorage) -> None:
    absent = uuid.uuid4().hex * 2
    with pytest.raises(MessageNotFound):
        storage.extend_retention(absent, LATER)
    with pytest.raises(MessageNotFound):
        storage.lock_state(absent)
    with pytest.raises(MessageNotFound):
        storage.set_legal_hold(absent, True)
    assert storage.purge(absent) == (0, 0)


def tombstone(sha256: str, run_id: str) -> Tombstone:
    return Tombstone(
        sha256=sha256,
        run_id=run_id,
        policy="mail-7y@v3",
        retain_until=SOONER,
        disposed_at=datetime.now(UTC),
        message_id="<gone@example.com>",
        size=123,
        versions_deleted=1,
        records_deleted=2,
    )


def test_a_tombstone_is_written_once_under_retention_and_listed(
    storage: S3RetentionStorage, raw: S3RawStore
) -> None:
    sha256 = uuid.uuid4().hex * 2
    first, second = tombstone(sha256, "run-1"), tombstone(sha256, "run-2")

    assert storage.put_tombstone(first, LATER) is True
    assert storage.put_tombstone(first.model_copy(update={"policy": "other@v1"}), LATER) is False
    assert storage.put_tombstone(second, LATER) is True

    key = tombstone_key(sha256, "run-1")
    retention = raw.client.get_object_retention(raw.bucket, key)
    assert retention is not None
    assert (retention.mode, retention.retain_until_date) == (storage.mode, LATER)
    assert delete_directly(raw, key).code == "AccessDenied"
    assert list(storage.tombstones(sha256)) == [first, second]  # oldest first, unchanged
    assert first in list(storage.tombstones())


def test_the_request_counter_counts_what_the_client_sends(
    storage: S3RetentionStorage, raw: S3RawStore
) -> None:
    before = raw.requests
    sha256, _ = message(raw, sources=1)
    assert raw.requests - before == 1  # one conditional PUT, the source in its metadata

    before = raw.requests
    storage.extend_retention(sha256, SOONER)
    # designed for: one listing of the versions, one PUT of the retention per version
    assert raw.requests - before == 2

    before = raw.requests
    assert storage.extend_retention(sha256, SOONER - timedelta(hours=1)) == SOONER
    # a later date in force: the PUT is refused and the date in force read back
    assert raw.requests - before == 3


def test_a_new_message_is_locked_by_its_own_put_in_one_request(
    storage: S3RetentionStorage, raw: S3RawStore, settings: Settings
) -> None:
    """The import path: a message whose retention is known before it is stored carries the
    lock on its PUT, in the raw store's configured mode, rounded up to the second."""
    locking = S3RawStore(
        settings.model_copy(update={"s3_bucket": raw.bucket, "retention_lock_mode": storage.mode})
    )
    data = f"Message-ID: <{uuid.uuid4().hex}@example.com>\r\n\r\nlocked on arrival\r\n".encode()
    asked = LATER + timedelta(microseconds=250_000)

    before = locking.requests
    sha256, created = locking.put(data, source("new.eml"), retain_until=asked)
    assert created and locking.requests - before == 1

    assert storage.lock_state(sha256) == LockState(
        retain_until=LATER + timedelta(seconds=1), mode=storage.mode
    )
    assert delete_directly(raw, raw_key(sha256)).code == "AccessDenied"
    assert locking.get(sha256) == data


def test_stored_bytes_keep_their_lock_when_offered_again_with_another(
    storage: S3RetentionStorage, raw: S3RawStore
) -> None:
    sha256, data = message(raw, sources=1)  # stored without a lock
    assert raw.put(data, source("again.eml"), retain_until=LATER) == (sha256, False)
    assert storage.lock_state(sha256) == LockState()
    assert [r.source.detail for r in raw.records(sha256)] == ["first.eml", "again.eml"]
