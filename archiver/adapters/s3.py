"""RawStore on S3-compatible object storage (SeaweedFS in tests and the demo), via minio."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, cast

import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from archiver.errors import (
    BackendUnavailable,
    IntegrityError,
    MessageNotFound,
    NotFound,
    SpoolSegmentNotFound,
)
from archiver.models import Source, SourceRecord, SpoolSegment
from archiver.pipeline.spool import SPOOL_PREFIX
from archiver.settings import Settings

RAW_PREFIX = "raw/"
RECORD_PREFIX = "records/"
_MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchVersion"}
_RECORD_META = "source-record"
_MAX_META_RECORD = 1800


def _encode_record(record: SourceRecord) -> str:
    return base64.b64encode(record.model_dump_json().encode()).decode("ascii")


def _decode_record(encoded: str) -> SourceRecord:
    return SourceRecord.model_validate_json(base64.b64decode(encoded))


def raw_key(sha256: str) -> str:
    return f"{RAW_PREFIX}{sha256[:2]}/{sha256[2:4]}/{sha256}.eml"


def record_prefix(sha256: str) -> str:
    return f"{RECORD_PREFIX}{sha256[:2]}/{sha256}/"


def _unavailable(exc: Exception) -> NoReturn:
    raise BackendUnavailable("s3", f"{type(exc).__name__}: {exc}") from exc


class S3RawStore:
    def __init__(self, settings: Settings, *, retries: int = 2) -> None:
        self.bucket = settings.s3_bucket
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=3.0, read=30.0),
            maxsize=max(settings.store_threads, 10),
            retries=urllib3.Retry(
                total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
            ),
        )
        self.client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            secure=settings.s3_secure,
            region=settings.s3_region,
            http_client=http,
        )

    def ensure_ready(self) -> None:
        """Create the archive bucket with Object Lock, so retention and legal holds can apply."""
        try:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket, object_lock=True)
        except S3Error as exc:
            if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                _unavailable(exc)
        except Exception as exc:
            _unavailable(exc)

    def put(self, raw: bytes, source: Source | None = None) -> tuple[str, bool]:
        sha256 = hashlib.sha256(raw).hexdigest()
        record = SourceRecord(sha256=sha256, source=source) if source else None
        meta = {"x-amz-meta-sha256": sha256}
        encoded = _encode_record(record) if record else None
        # The first source rides in the object's metadata (one request instead of two);
        # one too large for S3's 2 KB metadata limit gets an object of its own.
        in_meta = encoded is not None and len(encoded) <= _MAX_META_RECORD
        if in_meta and encoded:
            meta[f"x-amz-meta-{_RECORD_META}"] = encoded
        elif record:
            self.put_record(record)
        if self._put_if_absent(raw_key(sha256), raw, meta):
            return sha256, True
        if record and in_meta:
            self.put_record(record)  # stored before: this delivery's source on its own
        return sha256, False

    def _put_if_absent(self, key: str, data: bytes, meta: dict[str, str]) -> bool:
        """PUT with If-None-Match: one request where a HEAD and a PUT took two, and no second
        version of existing bytes (with another source in its metadata) can appear."""
        headers = {**meta, "Content-Type": "message/rfc822", "If-None-Match": "*"}
        try:
            # minio's public put_object turns unknown headers into metadata
            self.client._put_object(self.bucket, key, data, cast(Any, headers))
        except S3Error as exc:
            if exc.code == "PreconditionFailed":
                return False
            _unavailable(exc)
        except Exception as exc:
            _unavailable(exc)
        return True

    def get(self, sha256: str) -> bytes:
        data = self._get_bytes(raw_key(sha256), MessageNotFound(sha256))
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise IntegrityError(sha256, actual)
        return data

    def exists(self, sha256: str) -> bool:
        try:
            self.client.stat_object(self.bucket, raw_key(sha256))
        except S3Error as exc:
            if exc.code in _MISSING:
                return False
            _unavailable(exc)
        except Exception as exc:
            _unavailable(exc)
        return True

    def put_record(self, record: SourceRecord) -> None:
        key_hash = hashlib.sha256(record.source.key().encode()).hexdigest()[:32]
        key = f"{record_prefix(record.sha256)}{key_hash}.json"
        self._put_bytes(key, record.model_dump_json().encode(), "application/json", {})

    def records(self, sha256: str) -> list[SourceRecord]:
        found: list[SourceRecord] = []
        try:
            stat = self.client.stat_object(self.bucket, raw_key(sha256))
            meta = {k.lower(): v for k, v in (stat.metadata or {}).items()}
            encoded = meta.get(f"x-amz-meta-{_RECORD_META}")
            if encoded:
                found.append(_decode_record(encoded))
            for obj in self.client.list_objects(self.bucket, prefix=record_prefix(sha256)):
                body = self._get_bytes(obj.object_name, MessageNotFound(sha256))
                found.append(SourceRecord.model_validate(json.loads(body)))
        except S3Error as exc:
            if exc.code in _MISSING:
                raise MessageNotFound(sha256) from exc
            _unavailable(exc)
        # The first source rides in the metadata; offering the same source again (a retry after
        # a crash) also writes it as a record object: one source, one record.
        unique = {r.source.key(): r for r in reversed(found)}
        return sorted(unique.values(), key=lambda r: r.source.received_at)

    def iter_ids(self) -> Iterator[str]:
        try:
            for obj in self.client.list_objects(self.bucket, prefix=RAW_PREFIX, recursive=True):
                name: str = obj.object_name
                yield name.rsplit("/", 1)[-1].removesuffix(".eml")
        except S3Error as exc:
            _unavailable(exc)

    # The spool (archiver/pipeline/spool.py): segments are written once under unique keys and
    # removed by version, so dropping one never leaves a version behind in the versioned bucket.

    def write_spool(self, data: bytes) -> SpoolSegment:
        now = datetime.now(UTC)
        key = f"{SPOOL_PREFIX}{now:%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}.mvs"
        try:
            result = self.client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), "application/octet-stream"
            )
        except Exception as exc:
            _unavailable(exc)
        return SpoolSegment(key=key, version=result.version_id, written_at=now)

    def read_spool(self, segment: SpoolSegment) -> bytes:
        return self._get_bytes(
            segment.key, SpoolSegmentNotFound(segment.key), version=segment.version
        )

    def spooled(self) -> Iterator[SpoolSegment]:
        try:
            for obj in self.client.list_objects(
                self.bucket, prefix=SPOOL_PREFIX, include_version=True
            ):
                if obj.is_delete_marker or obj.object_name.endswith("/"):
                    continue
                yield SpoolSegment(
                    key=obj.object_name, version=obj.version_id, written_at=obj.last_modified
                )
        except Exception as exc:
            _unavailable(exc)

    def drop_spool(self, segments: Sequence[SpoolSegment]) -> None:
        # one multi-object delete per 1000 segments (minio batches them)
        targets = [DeleteObject(s.key, s.version) for s in segments]
        try:
            errors = [
                e
                for e in self.client.remove_objects(self.bucket, targets)
                if e.code not in _MISSING
            ]
        except Exception as exc:
            _unavailable(exc)
        if errors:
            _unavailable(RuntimeError(f"{len(errors)} segments not removed, e.g. {errors[0]}"))

    def health(self) -> dict[str, Any]:
        try:
            ok = self.client.bucket_exists(self.bucket)
        except Exception as exc:
            return {"status": "unavailable", "error": f"{type(exc).__name__}: {exc}"}
        return {"status": "ok" if ok else "no bucket", "bucket": self.bucket}

    def _put_bytes(self, key: str, data: bytes, content_type: str, meta: dict[str, str]) -> None:
        try:
            self.client.put_object(
                self.bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type=content_type,
                metadata=cast(dict[str, str | list[str] | tuple[str]], meta) or None,
            )
        except Exception as exc:
            _unavailable(exc)

    def _get_bytes(self, key: str, missing: NotFound, *, version: str | None = None) -> bytes:
        """The object's bytes; `missing` is raised when there is no such object (version)."""
        try:
            response = self.client.get_object(self.bucket, key, version_id=version)
        except S3Error as exc:
            if exc.code in _MISSING:
                raise missing from exc
            _unavailable(exc)
        except Exception as exc:
            _unavailable(exc)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()


class S3JsonStore:
    """JsonStore in the archive bucket under "meta/". Objects there carry no retention, so they
    can be replaced and deleted (the bucket keeps old versions)."""

    PREFIX = "meta/"

    def __init__(self, raw_store: S3RawStore) -> None:
        self._store = raw_store

    def put_json(self, key: str, value: Mapping[str, Any]) -> None:
        data = json.dumps(value, ensure_ascii=False, default=str).encode()
        self._store._put_bytes(self.PREFIX + key, data, "application/json", {})

    def get_json(self, key: str) -> dict[str, Any] | None:
        try:
            data = self._store._get_bytes(self.PREFIX + key, MessageNotFound(key))
        except MessageNotFound:
            return None
        value: dict[str, Any] = json.loads(data)
        return value

    def list_keys(self, prefix: str) -> list[str]:
        client, bucket = self._store.client, self._store.bucket
        try:
            return sorted(
                obj.object_name.removeprefix(self.PREFIX)
                for obj in client.list_objects(bucket, prefix=self.PREFIX + prefix, recursive=True)
            )
        except Exception as exc:
            _unavailable(exc)

    def delete(self, key: str) -> None:
        try:
            self._store.client.remove_object(self._store.bucket, self.PREFIX + key)
        except Exception as exc:
            _unavailable(exc)
