"""Tampering with an audit log the way an attacker with write (and governance bypass) rights on
the bucket could: the same operations against the in-memory store and the real S3 bucket, so
the verification tests of both prove the same thing."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any, Protocol

from minio.deleteobjects import DeleteObject

from archiver.adapters.s3 import S3AuditStore
from archiver.audit.records import AuditRecord
from archiver.audit.verify import IssueKind
from tests.support.fakes import InMemoryAuditStore


class Bucket(Protocol):
    def read(self, seq: int) -> bytes: ...
    def write(self, seq: int, data: bytes) -> None: ...
    def delete(self, seq: int) -> None: ...
    def seqs(self) -> list[int]: ...
    def segments(self) -> list[tuple[int, int]]: ...
    def read_segment(self, first: int, last: int) -> bytes: ...
    def write_segment(self, first: int, last: int, data: bytes) -> None: ...
    def delete_segment(self, first: int, last: int) -> None: ...


class MemoryBucket:
    def __init__(self, store: InMemoryAuditStore) -> None:
        self.store = store

    def read(self, seq: int) -> bytes:
        return self.store.records[seq]

    def write(self, seq: int, data: bytes) -> None:
        self.store.records[seq] = data

    def delete(self, seq: int) -> None:
        del self.store.records[seq]

    def seqs(self) -> list[int]:
        return sorted(self.store.records)

    def segments(self) -> list[tuple[int, int]]:
        return sorted(self.store.segment_data)

    def read_segment(self, first: int, last: int) -> bytes:
        return self.store.segment_data[first, last]

    def write_segment(self, first: int, last: int, data: bytes) -> None:
        self.store.segment_data[first, last] = data

    def delete_segment(self, first: int, last: int) -> None:
        del self.store.segment_data[first, last]


class S3Bucket:
    """Through the minio client directly, past the adapter, as an attacker would."""

    def __init__(self, store: S3AuditStore) -> None:
        self.store = store
        self.client = store._store.client
        self.bucket = store._store.bucket

    def _read(self, key: str) -> bytes:
        response = self.client.get_object(self.bucket, key)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    def _write(self, key: str, data: bytes) -> None:
        self.client.put_object(self.bucket, key, io.BytesIO(data), len(data))

    def _delete(self, key: str) -> None:
        versions = [
            DeleteObject(o.object_name, o.version_id)
            for o in self.client.list_objects(self.bucket, prefix=key, include_version=True)
            if o.object_name == key
        ]
        errors = list(
            self.client.remove_objects(self.bucket, versions, bypass_governance_mode=True)
        )
        assert not errors, errors

    def read(self, seq: int) -> bytes:
        return self._read(self.store.record_key(seq))

    def write(self, seq: int, data: bytes) -> None:
        self._write(self.store.record_key(seq), data)

    def delete(self, seq: int) -> None:
        self._delete(self.store.record_key(seq))

    def seqs(self) -> list[int]:
        return list(self.store.record_seqs())

    def segments(self) -> list[tuple[int, int]]:
        return list(self.store.segments())

    def read_segment(self, first: int, last: int) -> bytes:
        return self._read(self.store.segment_key(first, last))

    def write_segment(self, first: int, last: int, data: bytes) -> None:
        self._write(self.store.segment_key(first, last), data)

    def delete_segment(self, first: int, last: int) -> None:
        self._delete(self.store.segment_key(first, last))


def _load(bucket: Bucket, seq: int) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(bucket.read(seq))
    return value


def _dump(value: dict[str, Any], *, rehash: bool = False) -> bytes:
    record = AuditRecord.model_validate(value)
    if rehash:
        record = record.model_copy(update={"hash": record.computed_hash()})
    return record.encode()


# Each operation tampers at `seq` (clamped to what it needs) and returns the issue kind that
# verify must report and the sequence number it must name.
Tamper = Callable[[Bucket, int], tuple[IssueKind, int]]


def change(bucket: Bucket, seq: int) -> tuple[IssueKind, int]:
    value = _load(bucket, seq)
    value["target"] = value["target"] + "-forged"
    bucket.write(seq, _dump(value))
    return IssueKind.CHANGED, seq


def replace(bucket: Bucket, seq: int) -> tuple[IssueKind, int]:
    """Changed, and its hash recomputed so it looks whole on its own."""
    seq = min(seq, bucket.seqs()[-1] - 1)
    value = _load(bucket, seq)
    value["actor"] = value["actor"] + "-forged"
    bucket.write(seq, _dump(value, rehash=True))
    return IssueKind.CHANGED, seq


def remove(bucket: Bucket, seq: int) -> tuple[IssueKind, int]:
    bucket.delete(seq)
    return IssueKind.REMOVED, seq


def reorder(bucket: Bucket, seq: int) -> tuple[IssueKind, int]:
    seq = min(seq, bucket.seqs()[-1] - 1)
    first, second = bucket.read(seq), bucket.read(seq + 1)
    bucket.write(seq, second)
    bucket.write(seq + 1, first)
    return IssueKind.REORDERED, seq


def insert(bucket: Bucket, seq: int) -> tuple[IssueKind, int]:
    """A forged record at `seq`, chained onto its predecessor; the rest moved up one number."""
    seqs = bucket.seqs()
    seq = min(max(seq, 2), seqs[-1])
    for s in reversed([s for s in seqs if s >= seq]):
        bucket.write(s + 1, bucket.read(s))
    forged = _load(bucket, seq + 1)
    forged.update(target="forged", prev_hash=_load(bucket, seq - 1)["hash"])
    bucket.write(seq, _dump(forged, rehash=True))
    return IssueKind.INSERTED, seq


def drop_segment(bucket: Bucket, seq: int) -> tuple[IssueKind, int]:
    first, last = _segment_of(bucket, seq)
    bucket.delete_segment(first, last)
    return IssueKind.SEGMENT_MISSING, first


def alter_segment(bucket: Bucket, seq: int) -> tuple[IssueKind, int]:
    first, last = _segment_of(bucket, seq)
    lines = bucket.read_segment(first, last).splitlines()
    value = json.loads(lines[0])
    value["target"] = value["target"] + "-forged"
    lines[0] = _dump(value, rehash=True)
    bucket.write_segment(first, last, b"\n".join(lines) + b"\n")
    return IssueKind.SEGMENT_DIFFERS, first


def _segment_of(bucket: Bucket, seq: int) -> tuple[int, int]:
    segments = bucket.segments()
    return next((s for s in segments if s[0] <= seq <= s[1]), segments[-1])


TAMPERS: dict[str, Tamper] = {
    "change": change,
    "replace": replace,
    "remove": remove,
    "reorder": reorder,
    "insert": insert,
    "drop_segment": drop_segment,
    "alter_segment": alter_segment,
}
