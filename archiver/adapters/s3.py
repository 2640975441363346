"""RawStore on S3-compatible object storage (SeaweedFS in tests and the demo), via minio."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import mimetypes
import secrets
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn, cast

import urllib3
from minio import Minio
from minio.datatypes import Object, Part
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.retention import Retention

from archiver.errors import (
    BackendFailed,
    BackendUnavailable,
    ConcurrentEdit,
    IntegrityError,
    MailvaultError,
    MessageNotFound,
    NotFound,
    SpoolSegmentNotFound,
    StorageLocked,
)
from archiver.models import LockState, Source, SourceRecord, SpoolSegment, Tombstone
from archiver.pipeline.spool import SPOOL_PREFIX
from archiver.retention.decision import whole_second
from archiver.settings import Settings

RAW_PREFIX = "raw/"
RECORD_PREFIX = "records/"
_MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchVersion"}
_RECORD_META = "source-record"
_MAX_META_RECORD = 1800
_PROBE_PREFIX = "probes/"  # outside meta/, raw/, records/ and spool/: no listing sees it


LockMode = Literal["GOVERNANCE", "COMPLIANCE"]


def _encode_record(record: SourceRecord) -> str:
    return base64.b64encode(record.model_dump_json().encode()).decode("ascii")


def _decode_record(encoded: str) -> SourceRecord:
    return SourceRecord.model_validate_json(base64.b64decode(encoded))


def raw_key(sha256: str) -> str:
    return f"{RAW_PREFIX}{sha256[:2]}/{sha256[2:4]}/{sha256}.eml"


def record_prefix(sha256: str) -> str:
    return f"{RECORD_PREFIX}{sha256[:2]}/{sha256}/"


# S3 error codes that pass by themselves; any other error document is a refusal that a retry
# would meet again (AccessDenied, InvalidAccessKeyId, NoSuchBucket, InvalidBucketName, ...).
_TRANSIENT_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"}


def _transient(exc: Exception) -> bool:
    """Only the network, timeouts and the server's own trouble (5xx, throttling) may pass."""
    if isinstance(exc, S3Error):
        status = exc.response.status if exc.response is not None else 0
        return status >= 500 or status == 429 or exc.code in _TRANSIENT_CODES
    if isinstance(exc, ServerError):  # a 5xx without an S3 error document
        return True
    if isinstance(exc, InvalidResponseError):  # e.g. a proxy's HTML page
        return int(getattr(exc, "_code", 0) or 0) >= 500
    if isinstance(exc, urllib3.exceptions.LocationValueError):  # an invalid endpoint
        return False
    # connection refused or reset, timeouts, urllib3 giving up its retries of a 5xx
    return isinstance(exc, urllib3.exceptions.HTTPError | OSError)


def _failed(exc: Exception) -> NoReturn:
    detail = f"{type(exc).__name__}: {exc}"
    if _transient(exc):
        raise BackendUnavailable("s3", detail) from exc
    raise BackendFailed("s3", detail) from exc


@contextmanager
def _s3_errors(missing: NotFound | None = None) -> Iterator[None]:
    """Client errors as the typed errors of archiver/errors.py; `missing` is raised for an
    absent object (version) when given."""
    try:
        yield
    except MailvaultError:
        raise
    except S3Error as exc:
        if missing is not None and exc.code in _MISSING:
            raise missing from exc
        _failed(exc)
    except Exception as exc:  # whatever the client raises (a ValueError for a bad bucket name)
        _failed(exc)


class CountingPoolManager(urllib3.PoolManager):
    """A PoolManager that counts the HTTP requests sent through it (benchmarks, and tests that
    hold an adapter to the number of requests it was designed for). urllib3's own retries of a
    request happen below urlopen and are not counted; a redirect it follows is."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests = 0
        self._count_lock = threading.Lock()  # the archiver stores from a thread pool

    # PoolManager.urlopen's own signature, which urllib3 declares with the same ignore
    def urlopen(  # type: ignore[override]
        self, method: str, url: str, redirect: bool = True, **kw: Any
    ) -> urllib3.BaseHTTPResponse:
        with self._count_lock:
            self.requests += 1
        return super().urlopen(method, url, redirect=redirect, **kw)


class S3RawStore:
    def __init__(self, settings: Settings, *, retries: int = 2) -> None:
        self.bucket = settings.s3_bucket
        self.lock_mode: LockMode = settings.retention_lock_mode
        self._http = CountingPoolManager(
            timeout=urllib3.Timeout(connect=3.0, read=30.0),
            maxsize=max(settings.store_threads, 10),
            retries=urllib3.Retry(
                total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
            ),
        )
        with _s3_errors():  # an endpoint minio cannot parse
            self.client = Minio(
                settings.s3_endpoint,
                access_key=settings.s3_access_key,
                secret_key=settings.s3_secret_key,
                secure=settings.s3_secure,
                region=settings.s3_region,
                http_client=self._http,
            )

    @property
    def requests(self) -> int:
        """HTTP requests this store's client has sent so far."""
        return self._http.requests

    def ensure_ready(self) -> None:
        """Create the archive bucket with Object Lock, so retention and legal holds can apply,
        and make sure the server honours conditional writes."""
        with _s3_errors():
            try:
                if not self.client.bucket_exists(self.bucket):
                    self.client.make_bucket(self.bucket, object_lock=True)
            except S3Error as exc:
                if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise
        self.check_object_lock()
        self.check_conditional_writes()

    def check_object_lock(self) -> None:
        """Object Lock can only be turned on when a bucket is created: a bucket made without it
        (by hand, or by a server that creates buckets on first PUT) can never hold evidence
        under retention, so it is refused rather than used."""
        with _s3_errors():
            try:
                self.client.get_object_lock_config(self.bucket)
            except S3Error as exc:
                if exc.code != "ObjectLockConfigurationNotFoundError":
                    raise
                raise BackendFailed(
                    "s3",
                    f"bucket {self.bucket} has no Object Lock; the archive bucket must be created"
                    " with Object Lock enabled (mailvault init does so for a new bucket)",
                ) from exc

    def check_conditional_writes(self) -> None:
        """Write a probe object twice with If-None-Match: *; the second write must be refused.
        On a server that ignores the condition, a second delivery of a message would write a
        second version of it (with its own source in the metadata) instead of a source record,
        and put() could not tell a new message from a known one."""
        key = f"{_PROBE_PREFIX}if-none-match-{secrets.token_hex(8)}"
        try:
            first = self._put_if_absent(key, b"probe", {})
            second = self._put_if_absent(key, b"probe", {})
        finally:
            self._remove_versions_of(key)
        if not first or second:
            raise BackendFailed(
                "s3",
                f"the server does not honour If-None-Match: * (a second conditional PUT of {key}"
                " was accepted); the archive needs an S3 server with conditional writes",
            )

    def put(
        self, raw: bytes, source: Source | None = None, *, retain_until: datetime | None = None
    ) -> tuple[str, bool]:
        sha256 = hashlib.sha256(raw).hexdigest()
        record = SourceRecord(sha256=sha256, source=source) if source else None
        meta = {"x-amz-meta-sha256": sha256}
        if retain_until is not None:
            # the lock rides on the PUT: a list of versions and a retention PUT after it would
            # triple the requests of every new message
            meta |= _lock_headers(self.lock_mode, whole_second(retain_until), raw)
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

    def _put_if_absent(
        self,
        key: str,
        data: bytes,
        meta: dict[str, str],
        content_type: str = "message/rfc822",
    ) -> bool:
        """PUT with If-None-Match: one request where a HEAD and a PUT took two, and no second
        version of existing bytes (with another source in its metadata) can appear."""
        headers = {**meta, "Content-Type": content_type, "If-None-Match": "*"}
        return self._put_conditional(key, data, headers) is not None

    def _put_conditional(self, key: str, data: bytes, headers: dict[str, str]) -> str | None:
        """PUT with an If-None-Match or If-Match header; the new ETag, or None when the server
        refused the precondition."""
        with _s3_errors():
            try:
                # minio's public put_object turns unknown headers into metadata; the private
                # one is pinned (pyproject.toml) and its signature checked by tests/archiver/
                # adapters/test_s3.py
                result = self.client._put_object(self.bucket, key, data, cast(Any, headers))
            except S3Error as exc:
                # If-Match on a key that is gone answers NoSuchKey; AWS answers 409
                # ConditionalRequestConflict to the loser of two simultaneous conditional PUTs
                if exc.code in {"PreconditionFailed", "ConditionalRequestConflict", *_MISSING}:
                    return None
                raise
        return str(result.etag)

    def get(self, sha256: str) -> bytes:
        data = self._get_bytes(raw_key(sha256), MessageNotFound(sha256))
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise IntegrityError(sha256, actual)
        return data

    def exists(self, sha256: str) -> bool:
        try:
            with _s3_errors(MessageNotFound(sha256)):
                self.client.stat_object(self.bucket, raw_key(sha256))
        except MessageNotFound:
            return False
        return True

    def put_record(self, record: SourceRecord) -> None:
        key_hash = hashlib.sha256(record.source.key().encode()).hexdigest()[:32]
        key = f"{record_prefix(record.sha256)}{key_hash}.json"
        self._put_bytes(key, record.model_dump_json().encode(), "application/json", {})

    def records(self, sha256: str) -> list[SourceRecord]:
        found: list[SourceRecord] = []
        with _s3_errors(MessageNotFound(sha256)):
            stat = self.client.stat_object(self.bucket, raw_key(sha256))
            meta = {k.lower(): v for k, v in (stat.metadata or {}).items()}
            encoded = meta.get(f"x-amz-meta-{_RECORD_META}")
            if encoded:
                found.append(_decode_record(encoded))
            for obj in self.client.list_objects(self.bucket, prefix=record_prefix(sha256)):
                body = self._get_bytes(obj.object_name, MessageNotFound(sha256))
                found.append(SourceRecord.model_validate(json.loads(body)))
        # The first source rides in the metadata; offering the same source again (a retry after
        # a crash) also writes it as a record object: one source, one record.
        unique = {r.source.key(): r for r in reversed(found)}
        return sorted(unique.values(), key=lambda r: r.source.received_at)

    def iter_ids(self) -> Iterator[str]:
        with _s3_errors():
            for obj in self.client.list_objects(self.bucket, prefix=RAW_PREFIX, recursive=True):
                name: str = obj.object_name
                yield name.rsplit("/", 1)[-1].removesuffix(".eml")

    # The spool (archiver/pipeline/spool.py): segments are written once under unique keys and
    # removed by version, so dropping one never leaves a version behind in the versioned bucket.

    def write_spool(self, data: bytes) -> SpoolSegment:
        now = datetime.now(UTC)
        key = f"{SPOOL_PREFIX}{now:%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}.mvs"
        with _s3_errors():
            result = self.client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), "application/octet-stream"
            )
        return SpoolSegment(key=key, version=result.version_id, written_at=now)

    def read_spool(self, segment: SpoolSegment) -> bytes:
        return self._get_bytes(
            segment.key, SpoolSegmentNotFound(segment.key), version=segment.version
        )

    def spooled(self) -> Iterator[SpoolSegment]:
        with _s3_errors():
            for obj in self.client.list_objects(
                self.bucket, prefix=SPOOL_PREFIX, include_version=True
            ):
                if obj.is_delete_marker or obj.object_name.endswith("/"):
                    continue
                yield SpoolSegment(
                    key=obj.object_name, version=obj.version_id, written_at=obj.last_modified
                )

    def drop_spool(self, segments: Sequence[SpoolSegment]) -> None:
        self._remove([DeleteObject(s.key, s.version) for s in segments])

    def _remove_versions_of(self, key: str) -> None:
        with _s3_errors():
            versions = [
                DeleteObject(o.object_name, o.version_id)
                for o in self.client.list_objects(self.bucket, prefix=key, include_version=True)
                if o.object_name == key
            ]
        self._remove(versions)

    def _remove(self, targets: list[DeleteObject]) -> None:
        # one multi-object delete per 1000 objects (minio batches them)
        with _s3_errors():
            errors = [
                e
                for e in self.client.remove_objects(self.bucket, targets)
                if e.code not in _MISSING
            ]
        if errors:
            _failed(RuntimeError(f"{len(errors)} objects not removed, e.g. {errors[0]}"))

    def health(self) -> dict[str, Any]:
        try:
            ok = self.client.bucket_exists(self.bucket)
        except Exception as exc:
            return {"status": "unavailable", "error": f"{type(exc).__name__}: {exc}"}
        return {"status": "ok" if ok else "no bucket", "bucket": self.bucket}

    def _put_bytes(self, key: str, data: bytes, content_type: str, meta: dict[str, str]) -> None:
        with _s3_errors():
            self.client.put_object(
                self.bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type=content_type,
                metadata=cast(dict[str, str | list[str] | tuple[str]], meta) or None,
            )

    def _get_bytes(self, key: str, missing: NotFound, *, version: str | None = None) -> bytes:
        """The object's bytes; `missing` is raised when there is no such object (version)."""
        return self._get_with_etag(key, missing, version=version)[0]

    def _get_with_etag(
        self, key: str, missing: NotFound, *, version: str | None = None
    ) -> tuple[bytes, str]:
        """The object's bytes and ETag (unquoted, as minio reports a PUT's)."""
        with _s3_errors(missing):
            response = self.client.get_object(self.bucket, key, version_id=version)
            try:
                return bytes(response.read()), response.headers.get("ETag", "").strip('"')
            finally:
                response.close()
                response.release_conn()


def _json_bytes(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, default=str).encode()


class S3JsonStore:
    """JsonStore in the archive bucket under "meta/". Objects there carry no retention, so they
    can be replaced and deleted (the bucket keeps old versions)."""

    PREFIX = "meta/"

    def __init__(self, raw_store: S3RawStore) -> None:
        self._store = raw_store

    def put_json(self, key: str, value: Mapping[str, Any]) -> None:
        self._store._put_bytes(self.PREFIX + key, _json_bytes(value), "application/json", {})

    def get_json(self, key: str) -> dict[str, Any] | None:
        found = self.get_json_versioned(key)
        return found[0] if found is not None else None

    def get_json_versioned(self, key: str) -> tuple[dict[str, Any], str] | None:
        try:
            data, etag = self._store._get_with_etag(self.PREFIX + key, NotFound(key))
        except NotFound:
            return None
        value: dict[str, Any] = json.loads(data)
        return value, etag

    def put_json_if(self, key: str, value: Mapping[str, Any], *, etag: str | None) -> str:
        condition = {"If-None-Match": "*"} if etag is None else {"If-Match": f'"{etag}"'}
        headers = {"Content-Type": "application/json", **condition}
        written = self._store._put_conditional(self.PREFIX + key, _json_bytes(value), headers)
        if written is None:
            raise ConcurrentEdit(key)
        return written

    def list_keys(self, prefix: str) -> list[str]:
        client, bucket = self._store.client, self._store.bucket
        with _s3_errors():
            return sorted(
                obj.object_name.removeprefix(self.PREFIX)
                for obj in client.list_objects(bucket, prefix=self.PREFIX + prefix, recursive=True)
            )

    def delete(self, key: str) -> None:
        with _s3_errors():
            self._store.client.remove_object(self._store.bucket, self.PREFIX + key)


def _lock_headers(mode: str, retain_until: datetime, data: bytes) -> dict[str, str]:
    """The headers that put an object under Object Lock retention on its own PUT."""
    return {
        "x-amz-object-lock-mode": mode,
        "x-amz-object-lock-retain-until-date": retain_until.astimezone(UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"
        ),
        # S3 requires an integrity header on a PUT that sets Object Lock
        "Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode(),
    }


AUDIT_PREFIX = "audit/"
_SEQ_DIGITS = 12  # zero-padded, so S3's lexical listing order is the numeric order


class S3AuditStore:
    """AuditStore in the archive bucket: one object per record, written once with
    If-None-Match: * under its sequence number (two writers cannot both take a number), and
    sealed segments written under Object Lock retention."""

    def __init__(
        self,
        raw_store: S3RawStore,
        *,
        retention_mode: str = "GOVERNANCE",
        prefix: str = AUDIT_PREFIX,
    ) -> None:
        self._store = raw_store
        self.retention_mode = retention_mode
        self.records_prefix = f"{prefix}records/"
        self.segments_prefix = f"{prefix}segments/"
        self.head_key = f"{prefix}head.json"

    def record_key(self, seq: int) -> str:
        return f"{self.records_prefix}{seq:0{_SEQ_DIGITS}d}.json"

    def segment_key(self, first: int, last: int) -> str:
        return f"{self.segments_prefix}{first:0{_SEQ_DIGITS}d}-{last:0{_SEQ_DIGITS}d}.jsonl"

    def put_record(self, seq: int, data: bytes) -> bool:
        return self._store._put_if_absent(self.record_key(seq), data, {}, "application/json")

    def get_record(self, seq: int) -> bytes | None:
        return self._get_or_none(self.record_key(seq))

    def record_seqs(self, after: int = 0) -> Iterator[int]:
        start = self.record_key(after) if after else None
        with _s3_errors():
            for obj in self._store.client.list_objects(
                self._store.bucket, prefix=self.records_prefix, start_after=start
            ):
                name = obj.object_name.removeprefix(self.records_prefix).removesuffix(".json")
                if name.isdigit():
                    yield int(name)

    def get_head(self) -> dict[str, Any] | None:
        data = self._get_or_none(self.head_key)
        return None if data is None else cast(dict[str, Any], json.loads(data))

    def put_head(self, value: Mapping[str, Any]) -> None:
        self._store._put_bytes(self.head_key, json.dumps(value).encode(), "application/json", {})

    def put_segment(self, first: int, last: int, data: bytes, retain_until: datetime) -> bool:
        """Written once (If-None-Match: *), under retention from its first byte: the Object Lock
        headers ride on the PUT itself, so no moment exists where the segment is unprotected."""
        headers = _lock_headers(self.retention_mode, retain_until, data)
        return self._store._put_if_absent(
            self.segment_key(first, last), data, headers, "application/x-ndjson"
        )

    def segments(self) -> Iterator[tuple[int, int]]:
        with _s3_errors():
            for obj in self._store.client.list_objects(
                self._store.bucket, prefix=self.segments_prefix
            ):
                name = obj.object_name.removeprefix(self.segments_prefix).removesuffix(".jsonl")
                first, _, last = name.partition("-")
                if first.isdigit() and last.isdigit():
                    yield int(first), int(last)

    def get_segment(self, first: int, last: int) -> bytes | None:
        return self._get_or_none(self.segment_key(first, last))

    def has_segment(self, first: int, last: int) -> bool:
        key = self.segment_key(first, last)
        try:
            with _s3_errors(NotFound(key)):
                self._store.client.stat_object(self._store.bucket, key)
        except NotFound:
            return False
        return True

    def _get_or_none(self, key: str) -> bytes | None:
        try:
            return self._store._get_bytes(key, NotFound(key))
        except NotFound:
            return None


TOMBSTONE_PREFIX = "tombstones/"
# What S3 answers a version that carries no retention / no legal hold: the codes of AWS (which
# minio turns into None / False itself) and of SeaweedFS (which it does not).
_NO_RETENTION = {"NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError"}
_NO_LEGAL_HOLD = {"NoSuchObjectLockConfiguration", "NoSuchObjectLegalHold"}
# S3's answer to a delete of a version under retention or legal hold, and to a retention that
# would end sooner than the one in force (or change its mode)
_REFUSED = "AccessDenied"


def tombstone_key(sha256: str, run_id: str) -> str:
    return f"{TOMBSTONE_PREFIX}{sha256[:2]}/{sha256}/{run_id}.json"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class S3RetentionStorage:
    """RetentionStorage on the archive bucket's S3 Object Lock, applied to every version of a
    raw message. Retention is only ever sent without the governance bypass header, so S3
    itself refuses anything that would shorten it, in either mode; the adapter never deletes
    without a version id (that only adds a delete marker) and never bypasses a lock."""

    def __init__(
        self,
        raw_store: S3RawStore,
        *,
        mode: LockMode = "GOVERNANCE",
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._store = raw_store
        self.mode: LockMode = mode
        self._clock = clock

    def extend_retention(self, sha256: str, until: datetime) -> datetime:
        # One PUT per version in the common case (a version without retention, or with an
        # earlier one): the GET of the current retention is only sent when S3 refused the PUT.
        until = whole_second(until)
        key = raw_key(sha256)
        return max(self._extend(sha256, key, v, until) for v in self._stored_versions(sha256))

    def _extend(self, sha256: str, key: str, version: str, until: datetime) -> datetime:
        client, bucket = self._store.client, self._store.bucket
        with _s3_errors(MessageNotFound(sha256)):
            try:
                client.set_object_retention(bucket, key, Retention(self.mode, until), version)
                return until
            except S3Error as exc:
                if exc.code != _REFUSED:
                    raise
                current = self._retention(key, version)
                if current is None or current.retain_until_date is None:
                    raise  # refused for another reason than a retention in force
            if current.retain_until_date >= until:
                return current.retain_until_date
            # An earlier retention in the other mode: S3 lets no PUT change the mode while it
            # runs, so it is extended in its own mode.
            client.set_object_retention(bucket, key, Retention(current.mode, until), version)
            return until

    def set_legal_hold(self, sha256: str, on: bool) -> None:
        client, bucket, key = self._store.client, self._store.bucket, raw_key(sha256)
        for version in self._stored_versions(sha256):
            with _s3_errors(MessageNotFound(sha256)):
                if on:
                    client.enable_object_legal_hold(bucket, key, version)
                else:
                    client.disable_object_legal_hold(bucket, key, version)

    def lock_state(self, sha256: str) -> LockState:
        key, now = raw_key(sha256), self._clock()
        in_force: list[tuple[datetime, LockMode]] = []
        held = False
        for version in self._stored_versions(sha256):
            with _s3_errors(MessageNotFound(sha256)):
                retention = self._retention(key, version)
                held = self._legal_hold(key, version) or held
            until = retention.retain_until_date if retention else None
            if retention and until and until > now:  # a retention that ran out locks nothing
                in_force.append((until, cast(LockMode, retention.mode)))
        if not in_force:
            return LockState(legal_hold=held)
        until, mode = max(in_force)
        return LockState(retain_until=until, mode=mode, legal_hold=held)

    def purge(self, sha256: str) -> tuple[int, int]:
        key = raw_key(sha256)
        listed = self._versions(key)
        deleted = 0
        for obj in (o for o in listed if not o.is_delete_marker):
            if not self._remove_version(key, obj.version_id):
                state = self.lock_state(sha256)
                if state.retain_until is None and not state.legal_hold:
                    # AccessDenied with no lock in force: the credentials may not delete
                    _failed(RuntimeError(f"S3 refused to delete {key} with no lock in force"))
                raise StorageLocked(sha256, state.retain_until, state.legal_hold)
            deleted += 1
        # Delete markers last: removing one while a locked version stayed would bring that
        # version back as the current one.
        for obj in (o for o in listed if o.is_delete_marker):
            self._remove_version(key, obj.version_id)
        records = 0
        with _s3_errors():
            found = list(
                self._store.client.list_objects(
                    self._store.bucket,
                    prefix=record_prefix(sha256),
                    recursive=True,
                    include_version=True,
                )
            )
        for obj in found:
            if not self._remove_version(obj.object_name, obj.version_id):
                _failed(RuntimeError(f"S3 refused to delete {obj.object_name}, a source record"))
            records += 0 if obj.is_delete_marker else 1
        return deleted, records

    def put_tombstone(self, tombstone: Tombstone, retain_until: datetime) -> bool:
        data = tombstone.model_dump_json().encode()
        # the lock rides on the PUT itself, as for sealed audit segments: never unprotected
        headers = _lock_headers(self.mode, retain_until, data)
        key = tombstone_key(tombstone.sha256, tombstone.run_id)
        return self._store._put_if_absent(key, data, headers, "application/json")

    def tombstones(self, sha256: str | None = None) -> Iterator[Tombstone]:
        prefix = f"{TOMBSTONE_PREFIX}{sha256[:2]}/{sha256}/" if sha256 else TOMBSTONE_PREFIX
        with _s3_errors():
            listed = list(
                self._store.client.list_objects(self._store.bucket, prefix=prefix, recursive=True)
            )
        # oldest first by the time each was written (once), without reading them all first
        listed.sort(key=lambda o: o.last_modified or datetime.min.replace(tzinfo=UTC))
        for obj in listed:
            data = self._store._get_bytes(obj.object_name, NotFound(obj.object_name))
            yield Tombstone.model_validate_json(data)

    def _versions(self, key: str) -> list[Object]:
        """Every version and delete marker of exactly this key (the prefix could match more)."""
        with _s3_errors():
            return [
                o
                for o in self._store.client.list_objects(
                    self._store.bucket, prefix=key, include_version=True
                )
                if o.object_name == key
            ]

    def _stored_versions(self, sha256: str) -> list[str]:
        """The version ids of the raw message's bytes; MessageNotFound when there are none."""
        versions = [
            o.version_id
            for o in self._versions(raw_key(sha256))
            if not o.is_delete_marker and o.version_id
        ]
        if not versions:
            raise MessageNotFound(sha256)
        return versions

    def _retention(self, key: str, version: str) -> Retention | None:
        try:
            return self._store.client.get_object_retention(self._store.bucket, key, version)
        except S3Error as exc:
            if exc.code in _NO_RETENTION:
                return None
            raise

    def _legal_hold(self, key: str, version: str) -> bool:
        try:
            return self._store.client.is_object_legal_hold_enabled(self._store.bucket, key, version)
        except S3Error as exc:
            if exc.code in _NO_LEGAL_HOLD:
                return False
            raise

    def _remove_version(self, key: str, version: str | None) -> bool:
        """Delete one version (or delete marker); False when S3 refuses (a lock), True also
        when it was already gone (a purge repeats)."""
        if not version:  # a delete without one only adds a delete marker: never sent
            _failed(RuntimeError(f"{key} was listed without a version id"))
        with _s3_errors():
            try:
                self._store.client.remove_object(self._store.bucket, key, version_id=version)
            except S3Error as exc:
                if exc.code == _REFUSED:
                    return False
                if exc.code not in _MISSING:
                    raise
        return True


# S3 refuses parts below 5 MiB except the last; 16 MiB parts reach S3's 10,000-part limit only
# at 160 GiB, far above a package part (2 GiB by default), and bound a writer's memory.
PACKAGE_CHUNK = 16 << 20
_MIN_PART = 5 << 20


def _content_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


class S3PackageWriter:
    """PackageWriter as an S3 multipart upload: bytes are buffered up to one chunk and sent as a
    part; close() completes the upload (the object appears only then), abort() drops it. A
    writer that never filled a chunk is written with one PUT on close, an empty one too."""

    def __init__(self, client: Minio, bucket: str, key: str, chunk_size: int) -> None:
        if chunk_size < _MIN_PART:
            raise ValueError(f"chunk_size must be at least {_MIN_PART} (S3's smallest part)")
        self._client, self._bucket, self.key = client, bucket, key
        self._chunk = chunk_size
        self._buffer = bytearray()
        self._position = 0
        self._upload_id: str | None = None
        self._parts: list[Part] = []
        self._state: Literal["open", "closed", "aborted"] = "open"

    def write(self, data: bytes) -> int:
        if self._state != "open":
            raise ValueError(f"write to a {self._state} package writer ({self.key})")
        self._buffer += data
        self._position += len(data)
        while len(self._buffer) >= self._chunk:
            self._send(bytes(self._buffer[: self._chunk]))
            del self._buffer[: self._chunk]
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        """Nothing to do: a part shorter than 5 MiB cannot be sent before the last one, and
        the object exists only once closed anyway (zipfile calls this at its end)."""

    def close(self) -> None:
        if self._state == "closed":
            return
        if self._state == "aborted":
            raise ValueError(f"close of an aborted package writer ({self.key})")
        with _s3_errors():
            if self._upload_id is None:
                data = bytes(self._buffer)
                self._client.put_object(
                    self._bucket, self.key, io.BytesIO(data), len(data), _content_type(self.key)
                )
            else:
                if self._buffer:
                    self._send(bytes(self._buffer))
                self._client._complete_multipart_upload(
                    self._bucket, self.key, self._upload_id, self._parts
                )
        self._buffer.clear()
        self._state = "closed"

    def abort(self) -> None:
        """Drop what was written; nothing remains under the key (a closed writer's object
        stays: it is finished)."""
        if self._state != "open":
            return
        self._state = "aborted"
        self._buffer.clear()
        if self._upload_id is not None:
            with _s3_errors():
                try:
                    self._client._abort_multipart_upload(self._bucket, self.key, self._upload_id)
                except S3Error as exc:
                    if exc.code != "NoSuchUpload":  # aborted already (delete_prefix)
                        raise

    def __enter__(self) -> S3PackageWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _send(self, data: bytes) -> None:
        # minio's private multipart calls (the public put_object wants the whole stream as a
        # file to read from, where the zip writer pushes bytes); pinned like _put_object, and
        # their signatures checked by tests/archiver/adapters/test_s3_packages.py
        with _s3_errors():
            if self._upload_id is None:
                self._upload_id = self._client._create_multipart_upload(
                    self._bucket, self.key, {"Content-Type": _content_type(self.key)}
                )
            number = len(self._parts) + 1
            etag = self._client._upload_part(
                self._bucket, self.key, data, None, self._upload_id, number
            )
        self._parts.append(Part(number, etag))


class S3PackageStore:
    """PackageStore on the exports bucket: a plain bucket beside the archive's (no Object Lock,
    no versioning), since packages expire and are deleted for good."""

    def __init__(
        self, raw_store: S3RawStore, bucket: str, *, chunk_size: int = PACKAGE_CHUNK
    ) -> None:
        self.client = raw_store.client
        self.bucket = bucket
        self.chunk_size = chunk_size

    def ensure_ready(self) -> None:
        with _s3_errors():
            try:
                if not self.client.bucket_exists(self.bucket):
                    self.client.make_bucket(self.bucket)
            except S3Error as exc:
                if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise

    def writer(self, key: str) -> S3PackageWriter:
        return S3PackageWriter(self.client, self.bucket, key, self.chunk_size)

    def put(self, key: str, data: bytes) -> None:
        with _s3_errors():
            self.client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), _content_type(key)
            )

    def read(self, key: str, chunk_size: int = 1 << 20) -> Generator[bytes, None, None]:
        """The object's bytes, chunk by chunk; NotFound (on the first next()) when absent. The
        request is only sent once iterated, so a reader that never starts holds no connection,
        and one that stops early releases it when the iterator is closed or collected."""
        with _s3_errors(NotFound(f"no package object {key}")):
            response = self.client.get_object(self.bucket, key)
            try:
                yield from response.stream(chunk_size)
            finally:
                response.close()
                response.release_conn()

    def size(self, key: str) -> int | None:
        try:
            with _s3_errors(NotFound(key)):
                stat = self.client.stat_object(self.bucket, key)
        except NotFound:
            return None
        return int(stat.size or 0)

    def keys(self, prefix: str) -> list[str]:
        with _s3_errors():
            return sorted(
                str(o.object_name)
                for o in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
            )

    def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            # no caller means the whole bucket: every export of every person
            raise ValueError("delete_prefix needs a prefix")
        keys = self.keys(prefix)
        with _s3_errors():
            errors = [
                e
                for e in self.client.remove_objects(self.bucket, [DeleteObject(k) for k in keys])
                if e.code not in _MISSING
            ]
        if errors:
            _failed(RuntimeError(f"{len(errors)} objects not removed, e.g. {errors[0]}"))
        self._abort_uploads(prefix)
        return len(keys)

    def pending_uploads(self, prefix: str) -> list[tuple[str, str]]:
        """(key, upload id) of the unfinished multipart uploads under the prefix, one listing
        page (up to 1000): what a crashed build left behind."""
        with _s3_errors():
            listed = self.client._list_multipart_uploads(
                self.bucket, prefix=prefix, max_uploads=1000
            )
        return [(str(u.object_name), str(u.upload_id)) for u in listed.uploads if u.upload_id]

    def _abort_uploads(self, prefix: str) -> None:
        # Listed again after each page of aborts rather than paged with markers (minio 7.2
        # drops NextUploadIdMarker): aborted uploads leave the listing, so it shrinks to empty.
        aborted: set[str] = set()
        while pending := [p for p in self.pending_uploads(prefix) if p[1] not in aborted]:
            for key, upload_id in pending:
                with _s3_errors():
                    try:
                        self.client._abort_multipart_upload(self.bucket, key, upload_id)
                    except S3Error as exc:
                        if exc.code != "NoSuchUpload":  # its writer aborted it meanwhile
                            raise
                aborted.add(upload_id)
