"""In-memory fakes of the ports (archiver/ports.py), for fast unit tests of domain logic.

Each fake copies the semantics of its real adapter (archiver/adapters/) closely enough that the
domain cannot tell them apart in the behaviour tested here; the tests against the real services
stay the proof that the adapters behave so. Fault injection lets a test show what happens when a
backend or the IMAP connection fails at a chosen moment.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from archiver.access.identity import Identity
from archiver.access.model import Principal
from archiver.access.sessions import SessionRecord, same_secret
from archiver.errors import (
    BackendUnavailable,
    ConcurrentEdit,
    ImapAuthError,
    ImapConnectionLost,
    ImapError,
    IntegrityError,
    MessageNotFound,
    NotFound,
    SignInFailed,
    SpoolSegmentNotFound,
    StorageLocked,
)
from archiver.imap.accounts import ImapAccount
from archiver.models import (
    LockState,
    MessageInfo,
    Source,
    SourceRecord,
    SpoolSegment,
    Tombstone,
)
from archiver.pipeline.archiver import Archiver
from archiver.pipeline.spool import SPOOL_PREFIX
from archiver.ports import VERSION_TOKEN, Document

_ES_ONLY = "needs real Elasticsearch queries: test it against the real index (services marker)"


def _as_stored_json(value: Mapping[str, Any]) -> dict[str, Any]:
    # The real backends keep JSON, not Python objects: int keys come back as strings, datetimes
    # as text, and a caller mutating what it passed in or got back must not change the store.
    stored: dict[str, Any] = json.loads(json.dumps(value, ensure_ascii=False, default=str))
    return stored


class Faults:
    """Injected backend failures, shared by the storage fakes.

    ``unavailable = True`` makes every operation raise BackendUnavailable (the backend is down);
    ``fail_next(n)`` fails just the next n operations (a blip), optionally only those named."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.unavailable = False
        self._pending: list[tuple[frozenset[str] | None, Exception]] = []
        self._lock = threading.Lock()
        self.calls: list[str] = []

    def fail_next(
        self, n: int = 1, exc: Exception | None = None, *, only: Iterable[str] | None = None
    ) -> None:
        ops = frozenset(only) if only is not None else None
        error = exc or BackendUnavailable(self.backend, "injected fault")
        with self._lock:
            self._pending += [(ops, error)] * n

    def check(self, op: str) -> None:
        """Raise the injected failure due for this operation, if any."""
        with self._lock:
            self.calls.append(op)
            if self.unavailable:
                raise BackendUnavailable(self.backend, f"{op}: injected outage")
            for position, (ops, error) in enumerate(self._pending):
                if ops is None or op in ops:
                    del self._pending[position]
                    raise error


def _raw_key(sha256: str) -> str:
    return f"raw/{sha256[:2]}/{sha256[2:4]}/{sha256}.eml"


class InMemoryRawStore:
    """RawStore (S3RawStore's semantics) in a dict. Thread-safe: the Archiver stores from a pool."""

    def __init__(self) -> None:
        self.faults = Faults("s3")
        self.ready = False
        self._objects: dict[str, bytes] = {}
        self._records: dict[str, dict[str, SourceRecord]] = {}
        self._spool: dict[tuple[str, str], tuple[bytes, datetime]] = {}
        self._lock = threading.RLock()
        # the retention each message's first PUT carried, and the InMemoryRetentionStorage
        # that enforces it (S3 keeps both on the object)
        self.puts_locked: dict[str, datetime | None] = {}
        self.lock_keeper: InMemoryRetentionStorage | None = None

    def ensure_ready(self) -> None:
        self.faults.check("ensure_ready")
        self.ready = True

    def put(
        self, raw: bytes, source: Source | None = None, *, retain_until: datetime | None = None
    ) -> tuple[str, bool]:
        self.faults.check("put")
        sha256 = hashlib.sha256(raw).hexdigest()
        with self._lock:
            created = sha256 not in self._objects
            if created:
                self._objects[sha256] = bytes(raw)
                self.puts_locked[sha256] = retain_until
                if retain_until is not None and self.lock_keeper is not None:
                    self.lock_keeper.lock_at_put(sha256, retain_until)
            if source is not None:
                self._add_record(SourceRecord(sha256=sha256, source=source))
        return sha256, created

    def get(self, sha256: str) -> bytes:
        self.faults.check("get")
        with self._lock:
            if sha256 not in self._objects:
                raise MessageNotFound(sha256)
            data = self._objects[sha256]
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise IntegrityError(sha256, actual)
        return data

    def exists(self, sha256: str) -> bool:
        self.faults.check("exists")
        with self._lock:
            return sha256 in self._objects

    def put_record(self, record: SourceRecord) -> None:
        self.faults.check("put_record")
        with self._lock:
            self._add_record(record)

    def _add_record(self, record: SourceRecord) -> None:
        # The first record of a source wins, as in S3RawStore.records (the one in the metadata).
        found = self._records.setdefault(record.sha256, {})
        found.setdefault(record.source.key(), record.model_copy(deep=True))

    def records(self, sha256: str) -> list[SourceRecord]:
        self.faults.check("records")
        with self._lock:
            if sha256 not in self._objects:
                raise MessageNotFound(sha256)
            found = list(self._records.get(sha256, {}).values())
        return sorted(found, key=lambda r: r.source.received_at)

    def iter_ids(self) -> Iterator[str]:
        self.faults.check("iter_ids")
        with self._lock:
            ids = sorted(self._objects, key=_raw_key)  # S3 lists in key order
        yield from ids

    def write_spool(self, data: bytes) -> SpoolSegment:
        self.faults.check("write_spool")
        now = datetime.now(UTC)
        key = f"{SPOOL_PREFIX}{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.mvs"
        version = uuid.uuid4().hex
        with self._lock:
            self._spool[key, version] = (bytes(data), now)
        return SpoolSegment(key=key, version=version, written_at=now)

    def read_spool(self, segment: SpoolSegment) -> bytes:
        self.faults.check("read_spool")
        with self._lock:
            for (key, version), (data, _) in self._spool.items():
                if key == segment.key and segment.version in (None, version):
                    return data
        raise SpoolSegmentNotFound(segment.key)

    def spooled(self) -> Iterator[SpoolSegment]:
        self.faults.check("spooled")
        with self._lock:
            listed = [
                SpoolSegment(key=key, version=version, written_at=when)
                for (key, version), (_, when) in self._spool.items()
            ]
        yield from listed  # insertion order: oldest first

    def drop_spool(self, segments: Sequence[SpoolSegment]) -> None:
        self.faults.check("drop_spool")
        with self._lock:
            for segment in segments:
                for key, version in list(self._spool):
                    if key == segment.key and segment.version in (None, version):
                        del self._spool[key, version]

    def health(self) -> dict[str, Any]:
        try:
            self.faults.check("health")
        except Exception as exc:
            return {"status": "unavailable", "error": f"{type(exc).__name__}: {exc}"}
        return {"status": "ok", "bucket": "in-memory"}

    # -- for tests -------------------------------------------------------------------------

    def corrupt(self, sha256: str, data: bytes) -> None:
        """Replace stored bytes behind the store's back (bit rot, tampering)."""
        with self._lock:
            self._objects[sha256] = data


class InMemoryJsonStore:
    """JsonStore (S3JsonStore's semantics): values go through JSON; missing keys read as None."""

    def __init__(self) -> None:
        self.faults = Faults("s3")
        self._values: dict[str, dict[str, Any]] = {}
        self._etags: dict[str, str] = {}
        self._lock = threading.Lock()

    def put_json(self, key: str, value: Mapping[str, Any]) -> None:
        self.faults.check("put_json")
        stored = _as_stored_json(value)
        with self._lock:
            self._values[key] = stored
            self._etags[key] = uuid.uuid4().hex

    def get_json(self, key: str) -> dict[str, Any] | None:
        self.faults.check("get_json")
        found = self._versioned(key)
        return found[0] if found is not None else None

    def get_json_versioned(self, key: str) -> tuple[dict[str, Any], str] | None:
        self.faults.check("get_json_versioned")
        return self._versioned(key)

    def _versioned(self, key: str) -> tuple[dict[str, Any], str] | None:
        with self._lock:
            value = self._values.get(key)
            if value is None:
                return None
            return copy.deepcopy(value), self._etags[key]

    def put_json_if(self, key: str, value: Mapping[str, Any], *, etag: str | None) -> str:
        self.faults.check("put_json_if")
        stored = _as_stored_json(value)
        with self._lock:
            if self._etags.get(key) != etag:
                raise ConcurrentEdit(key)
            self._values[key] = stored
            self._etags[key] = new = uuid.uuid4().hex
        return new

    def list_keys(self, prefix: str) -> list[str]:
        self.faults.check("list_keys")
        with self._lock:
            return sorted(k for k in self._values if k.startswith(prefix))

    def delete(self, key: str) -> None:
        self.faults.check("delete")
        with self._lock:
            self._values.pop(key, None)  # S3 deletes of missing keys succeed
            self._etags.pop(key, None)


class InMemoryPackageWriter:
    """PackageWriter (S3PackageWriter's semantics): the object appears only on close(), an
    abort() leaves nothing; until then it is a pending upload of its store."""

    def __init__(self, store: InMemoryPackageStore, key: str) -> None:
        self._store = store
        self.key = key
        self._buffer = bytearray()
        self._state: Literal["open", "closed", "aborted"] = "open"

    def write(self, data: bytes) -> int:
        self._store.faults.check("write")
        if self._state != "open":
            raise ValueError(f"write to a {self._state} package writer ({self.key})")
        self._buffer += data
        return len(data)

    def tell(self) -> int:
        return len(self._buffer)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self._state == "closed":
            return
        if self._state == "aborted":
            raise ValueError(f"close of an aborted package writer ({self.key})")
        self._store.faults.check("close")
        with self._store._lock:
            self._store._objects[self.key] = bytes(self._buffer)
            self._store._pending.pop(id(self), None)
        self._state = "closed"

    def abort(self) -> None:
        if self._state != "open":
            return
        self._state = "aborted"
        self._buffer.clear()
        with self._store._lock:
            self._store._pending.pop(id(self), None)


class InMemoryPackageStore:
    """PackageStore (S3PackageStore's semantics) in a dict; `pending` lists the writers neither
    closed nor aborted (a crashed build's unfinished uploads)."""

    def __init__(self) -> None:
        self.faults = Faults("s3")
        self.ready = False
        self._objects: dict[str, bytes] = {}
        self._pending: dict[int, InMemoryPackageWriter] = {}
        self._lock = threading.RLock()

    def ensure_ready(self) -> None:
        self.faults.check("ensure_ready")
        self.ready = True

    def writer(self, key: str) -> InMemoryPackageWriter:
        self.faults.check("writer")
        writer = InMemoryPackageWriter(self, key)
        with self._lock:
            self._pending[id(writer)] = writer
        return writer

    def put(self, key: str, data: bytes) -> None:
        self.faults.check("put")
        with self._lock:
            self._objects[key] = bytes(data)

    def read(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        # a generator, like the adapter's: NotFound on the first next()
        self.faults.check("read")
        with self._lock:
            if key not in self._objects:
                raise NotFound(f"no package object {key}")
            data = self._objects[key]
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    def size(self, key: str) -> int | None:
        self.faults.check("size")
        with self._lock:
            data = self._objects.get(key)
        return None if data is None else len(data)

    def keys(self, prefix: str) -> list[str]:
        self.faults.check("keys")
        with self._lock:
            return sorted(k for k in self._objects if k.startswith(prefix))

    def delete_prefix(self, prefix: str) -> int:
        self.faults.check("delete_prefix")
        if not prefix:
            raise ValueError("delete_prefix needs a prefix")
        with self._lock:
            doomed = [k for k in self._objects if k.startswith(prefix)]
            for key in doomed:
                del self._objects[key]
            for writer in [w for w in self._pending.values() if w.key.startswith(prefix)]:
                writer.abort()
        return len(doomed)

    @property
    def pending(self) -> list[str]:
        with self._lock:
            return sorted(w.key for w in self._pending.values())


class InMemorySignInLimits:
    """SignInLimits (RedisSignInLimits' semantics): a sliding window of failure times per key."""

    def __init__(self) -> None:
        self.faults = Faults("redis")
        self._failures: dict[str, list[datetime]] = {}
        self._blocks: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def add_failure(self, key: str, now: datetime, window: timedelta) -> int:
        self.faults.check("add_failure")
        with self._lock:
            kept = [t for t in self._failures.get(key, []) if t > now - window] + [now]
            self._failures[key] = kept
            return len(kept)

    def block(self, key: str, until: datetime, now: datetime) -> None:
        self.faults.check("block")
        with self._lock:
            self._blocks[key] = until
            self._failures.pop(key, None)

    def blocked_until(self, key: str, now: datetime) -> datetime | None:
        self.faults.check("blocked_until")
        with self._lock:
            until = self._blocks.get(key)
        return until if until is not None and until > now else None

    def clear(self, key: str) -> None:
        self.faults.check("clear")
        with self._lock:
            self._failures.pop(key, None)
            self._blocks.pop(key, None)


class InMemoryIdentityProvider:
    """IdentityProvider (LdapProvider's semantics): names match as a directory matches uid
    (case and runs of spaces ignored); an empty password, an unknown name and a wrong password
    are all SignInFailed; ``faults`` plays an unreachable directory."""

    def __init__(self, name: str = "ldap") -> None:
        self._name = name
        self.faults = Faults("LDAP")
        self._accounts: dict[str, tuple[str, Identity]] = {}

    @property
    def name(self) -> str:
        return self._name

    def add(self, identity: Identity, password: str, *, typed: str | None = None) -> None:
        """`typed`: the name that finds the entry, when not its username (as a directory may
        match a mail address or an alias and answer the account's own name)."""
        self._accounts[_directory_match(typed or identity.username)] = (password, identity)

    def authenticate(self, username: str, password: str) -> Identity:
        if not password:
            raise SignInFailed(username, "empty password (LDAP would take it as anonymous)")
        self.faults.check("authenticate")
        found = self._accounts.get(_directory_match(username))
        if found is None or found[0] != password:
            raise SignInFailed(username)
        return found[1]


def _directory_match(name: str) -> str:
    return " ".join(name.split()).casefold()


class InMemorySearchIndex:
    """The part of SearchIndex the Archiver uses, with ElasticIndex's statuses and optimistic
    concurrency (a version token changes on every write). Queries are Elasticsearch's own: the
    query methods refuse rather than imitate them badly."""

    def __init__(self, alias: str = "in-memory") -> None:
        self.alias = alias
        self.faults = Faults("elasticsearch")
        self.ready = False
        # Documents that Elasticsearch would reject (a mapping conflict): doc -> error text.
        self.rejects: Callable[[Document], str | None] = lambda doc: None
        self._docs: dict[str, tuple[Document, int]] = {}
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self.refresh_paused = False

    def ensure_ready(self) -> None:
        self.faults.check("ensure_ready")
        self.ready = True
        self.refresh_paused = False  # as ElasticIndex: a pause a crashed import left is undone

    def create_many(self, docs: Sequence[Document]) -> dict[str, str | None]:
        self.faults.check("create_many")
        statuses: dict[str, str | None] = {}
        with self._lock:
            for doc in docs:
                doc_id = str(doc["id"])
                if doc_id in self._docs:
                    statuses[doc_id] = "exists"
                elif (error := self.rejects(doc)) is not None:
                    statuses[doc_id] = error
                else:
                    self._docs[doc_id] = (_as_stored_json(doc), next(self._seq))
                    statuses[doc_id] = None
        return statuses

    def get_many(self, ids: Iterable[str], fields: Sequence[str]) -> dict[str, Document]:
        self.faults.check("get_many")
        found: dict[str, Document] = {}
        with self._lock:
            for doc_id in dict.fromkeys(ids):
                if doc_id in self._docs:
                    doc, seq = self._docs[doc_id]
                    # top-level fields only: all the domain asks for
                    picked = {k: copy.deepcopy(v) for k, v in doc.items() if k in fields}
                    found[doc_id] = {**picked, VERSION_TOKEN: f"{seq}:1"}
        return found

    def update_many(self, updates: Mapping[str, Document]) -> dict[str, str | None]:
        self.faults.check("update_many")
        statuses: dict[str, str | None] = {}
        with self._lock:
            for doc_id, partial in updates.items():
                body = dict(partial)
                token = body.pop(VERSION_TOKEN, None)
                if doc_id not in self._docs:
                    statuses[doc_id] = f"document_missing_exception: [{doc_id}]: document missing"
                    continue
                doc, seq = self._docs[doc_id]
                if token and str(token) != f"{seq}:1":
                    statuses[doc_id] = "conflict"
                    continue
                self._docs[doc_id] = (_merged(doc, _as_stored_json(body)), next(self._seq))
                statuses[doc_id] = None
        return statuses

    def delete_many(self, ids: Sequence[str]) -> dict[str, str | None]:
        self.faults.check("delete_many")
        with self._lock:
            for doc_id in ids:
                self._docs.pop(doc_id, None)
        return dict.fromkeys(ids)

    def ids_by_message_id(self, message_ids: Iterable[str]) -> dict[str, list[str]]:
        self.faults.check("ids_by_message_id")
        wanted = set(message_ids)
        found: dict[str, list[str]] = {}
        with self._lock:
            for doc_id, (doc, _) in self._docs.items():
                if doc.get("message_id") in wanted:
                    found.setdefault(doc["message_id"], []).append(doc_id)
        return found

    def get(self, doc_id: str) -> Document | None:
        self.faults.check("get")
        with self._lock:
            entry = self._docs.get(doc_id)
        return copy.deepcopy(entry[0]) if entry is not None else None

    def search(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        raise NotImplementedError(f"InMemorySearchIndex.search {_ES_ONLY}")

    def open_pit(self, keep_alive: str = "5m") -> str:
        raise NotImplementedError(f"InMemorySearchIndex.open_pit {_ES_ONLY}")

    def close_pit(self, pit: str) -> None:
        raise NotImplementedError(f"InMemorySearchIndex.close_pit {_ES_ONLY}")

    def scan(
        self, query: Mapping[str, Any], fields: Sequence[str], batch_size: int = 1000
    ) -> Iterator[list[Document]]:
        raise NotImplementedError(f"InMemorySearchIndex.scan {_ES_ONLY}")

    def refresh(self) -> None:
        self.faults.check("refresh")

    # periodic refresh: only whether it is paused (nothing here is ever unsearchable)
    def pause_refresh(self) -> None:
        self.faults.check("pause_refresh")
        self.refresh_paused = True

    def resume_refresh(self) -> None:
        self.faults.check("resume_refresh")
        self.refresh_paused = False

    def health(self) -> dict[str, Any]:
        try:
            self.faults.check("health")
        except Exception as exc:
            return {"status": "unavailable", "error": f"{type(exc).__name__}: {exc}"}
        return {"status": "green", "version": "in-memory", "alias": self.alias}

    def ids(self) -> list[str]:
        """Every indexed document's id, in the order they were created."""
        with self._lock:
            return list(self._docs)


def _merged(doc: Document, partial: Document) -> Document:
    """Elasticsearch's partial update: objects merge recursively, everything else is replaced."""
    merged = copy.deepcopy(doc)
    for key, value in partial.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


# -- sessions and users ----------------------------------------------------------------------


class InMemorySessionStore:
    """SessionStore (RedisSessionStore's semantics); TTLs are recorded, not enforced: expiry is
    the domain's job, tested with its injected clock."""

    def __init__(self) -> None:
        self.faults = Faults("redis")
        self.sessions: dict[str, SessionRecord] = {}
        self.ttls: dict[str, int] = {}
        self._lock = threading.Lock()

    def create(self, key: str, record: SessionRecord, ttl_seconds: int) -> None:
        self.faults.check("create")
        with self._lock:
            self.sessions[key], self.ttls[key] = record, ttl_seconds

    def get(self, key: str) -> SessionRecord | None:
        self.faults.check("get")
        with self._lock:
            return self.sessions.get(key)

    def touch(self, key: str, last_seen: datetime, ttl_seconds: int) -> bool:
        self.faults.check("touch")
        with self._lock:
            if key not in self.sessions:
                return False
            self.sessions[key] = self.sessions[key].model_copy(update={"last_seen": last_seen})
            self.ttls[key] = ttl_seconds
            return True

    def delete(self, key: str) -> None:
        self.faults.check("delete")
        with self._lock:
            self.sessions.pop(key, None)
            self.ttls.pop(key, None)

    def delete_user(self, username: str) -> int:
        self.faults.check("delete_user")
        with self._lock:
            keys = [k for k, r in self.sessions.items() if r.username == username]
            for key in keys:
                del self.sessions[key]
                self.ttls.pop(key, None)
            return len(keys)


class InMemoryUsers:
    """Authenticator and PrincipalSource over a fixed set of users and passwords, until the
    real user store (local users, LDAP) exists. Removing a user (or `disabled`) refuses both."""

    def __init__(self, users: Iterable[tuple[Principal, str]] = ()) -> None:
        self._users = {p.username: (p, password) for p, password in users}
        self.disabled: set[str] = set()
        self.attempts: list[tuple[str, str]] = []  # (username, client address)

    def add(self, principal: Principal, password: str) -> None:
        self._users[principal.username] = (principal, password)

    def authenticate(self, username: str, password: str, client_address: str) -> Principal:
        self.attempts.append((username, client_address))
        found = self._users.get(username)
        if found is None or username in self.disabled or not same_secret(password, found[1]):
            raise SignInFailed(username)
        return found[0]

    def principal(self, username: str) -> Principal | None:
        found = self._users.get(username)
        return found[0] if found is not None and username not in self.disabled else None


# -- IMAP ------------------------------------------------------------------------------------

_EPOCH = datetime(2024, 1, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))


@dataclass
class FakeMessage:
    raw: bytes
    flags: tuple[str, ...] = ()
    internaldate: datetime = _EPOCH


@dataclass
class FakeFolder:
    uidvalidity: int
    next_uid: int = 1
    messages: dict[int, FakeMessage] = field(default_factory=dict)

    def add(self, message: FakeMessage) -> int:
        uid = self.next_uid
        self.messages[uid] = message
        self.next_uid += 1
        return uid


class InMemoryMailbox:
    """One IMAP account's server state and its session (the Mailbox port).

    ``connect`` (a Connect) opens a fresh session on it. ``drop_connection(after=n)`` lets the
    next n commands succeed and then loses the connection: that command and every later one on
    the session raise ImapConnectionLost, until the poller connects again."""

    def __init__(self, *, uidplus: bool = True, move: bool = True) -> None:
        self.uidplus = uidplus
        self.move_supported = move
        self._account = "fake"  # named in errors; set by connect
        self.reject_login = False
        self.connections = 0
        self.commands: list[str] = []  # every command the sessions sent, for assertions
        self._folders: dict[str, FakeFolder] = {}
        self._uidvalidities = itertools.count(1000)
        self._selected: str | None = None
        self._readonly = True
        self._alive = False
        self._drop_after: int | None = None
        self._drop_on: frozenset[str] | None = None
        self.add_folder("INBOX")

    # -- server side, for tests ------------------------------------------------------------

    def add_folder(self, name: str) -> None:
        if name not in self._folders:
            self._folders[name] = FakeFolder(uidvalidity=next(self._uidvalidities))

    def append(
        self,
        folder: str,
        raw: bytes,
        flags: Sequence[str] = (),
        internaldate: datetime | None = None,
    ) -> int:
        """APPEND: the new message's UID."""
        self.add_folder(folder)
        box = self._folders[folder]
        when = internaldate or _EPOCH + timedelta(minutes=box.next_uid)
        return box.add(FakeMessage(bytes(raw), tuple(flags), when))

    def renumber(self, folder: str) -> int:
        """Give the folder a new UIDVALIDITY and new UIDs (as after a server rebuild); returns
        the new UIDVALIDITY."""
        old = self._folders[folder]
        new = FakeFolder(uidvalidity=next(self._uidvalidities), next_uid=1)
        for uid in sorted(old.messages):
            new.add(old.messages[uid])
        self._folders[folder] = new
        return new.uidvalidity

    def contents(self, folder: str) -> dict[int, bytes]:
        return {uid: m.raw for uid, m in sorted(self._folders[folder].messages.items())}

    def flags(self, folder: str) -> dict[int, tuple[str, ...]]:
        return {uid: m.flags for uid, m in sorted(self._folders[folder].messages.items())}

    def uidvalidity(self, folder: str) -> int:
        return self._folders[folder].uidvalidity

    def drop_connection(self, after: int = 0, *, on: Iterable[str] | None = None) -> None:
        """Lose the connection at the (after+1)th command (of those named in `on`, if given)."""
        self._drop_after = after
        self._drop_on = frozenset(on) if on is not None else None

    def keep_connection(self) -> None:
        """Undo drop_connection."""
        self._drop_after = None

    @contextmanager
    def connect(self, account: ImapAccount) -> Iterator[InMemoryMailbox]:
        if self.reject_login:
            raise ImapAuthError(account.name, f"authentication as {account.username!r} failed")
        self.connections += 1
        self._account = account.name
        self._alive, self._selected = True, None
        try:
            yield self
        finally:
            self._alive, self._selected = False, None

    # -- the Mailbox port ------------------------------------------------------------------

    def _command(self, name: str) -> None:
        if not self._alive:
            raise ImapConnectionLost(self._account, f"{name}: not connected")
        if self._drop_after is not None and (self._drop_on is None or name in self._drop_on):
            if self._drop_after == 0:
                self._drop_after, self._alive = None, False
                raise ImapConnectionLost(self._account, f"{name}: connection reset by peer")
            self._drop_after -= 1
        self.commands.append(name)

    def _in_folder(self, name: str) -> FakeFolder:
        """A command on the selected folder."""
        self._command(name)
        if self._selected is None or self._selected not in self._folders:
            raise ImapError(self._account, f"{name}: no folder selected")
        return self._folders[self._selected]

    def folders(self) -> list[str]:
        self._command("folders")
        return list(self._folders)

    def select(self, folder: str, *, readonly: bool) -> int:
        self._command("select")
        if folder not in self._folders:
            raise ImapError(self._account, f"select {folder!r}: no such mailbox")
        self._selected, self._readonly = folder, readonly
        return self._folders[folder].uidvalidity

    def uids_after(self, uid: int) -> list[int]:
        box = self._in_folder("uids_after")
        return sorted(u for u in box.messages if u > uid)

    def fetch_info(self, uids: Sequence[int]) -> list[MessageInfo]:
        box = self._in_folder("fetch_info")
        return [
            MessageInfo(uid=u, flags=m.flags, internaldate=m.internaldate, size=len(m.raw))
            for u, m in sorted(box.messages.items())
            if u in set(uids)
        ]

    def fetch_bodies(self, uids: Sequence[int]) -> dict[int, bytes]:
        box = self._in_folder("fetch_bodies")
        return {u: box.messages[u].raw for u in uids if u in box.messages}  # PEEK: flags kept

    def delete(self, uids: Sequence[int]) -> None:
        box = self._writable("delete")
        if not self.uidplus:
            raise ImapError(self._account, "journal mode needs UIDPLUS (UID EXPUNGE)")
        for uid in uids:
            box.messages.pop(uid, None)

    def ensure_removable(self, journal_folder: str | None) -> None:
        self._command("ensure_removable")
        if self.uidplus or (journal_folder is not None and self.move_supported):
            return
        raise ImapError(self._account, "journal mode needs UIDPLUS (UID EXPUNGE) or MOVE")

    def move(self, uids: Sequence[int], folder: str) -> None:
        box = self._writable("move")
        if not self.move_supported and not self.uidplus:
            raise ImapError(self._account, "journal mode needs UIDPLUS (UID EXPUNGE) or MOVE")
        if folder not in self._folders:
            raise ImapError(self._account, f"move to {folder!r}: no such mailbox")
        target = self._folders[folder]
        for uid in sorted(uids):
            if uid in box.messages:
                target.add(box.messages.pop(uid))

    def _writable(self, name: str) -> FakeFolder:
        box = self._in_folder(name)
        if self._readonly:
            raise ImapError(self._account, f"{name}: the folder was selected read-only")
        return box

    def ensure_folder(self, folder: str) -> None:
        self._command("ensure_folder")
        self.add_folder(folder)


# -- assembled for tests -----------------------------------------------------------------------


@dataclass
class MemoryArchive:
    """An Archiver over the in-memory store and index, with the fakes at hand for faults."""

    store: InMemoryRawStore
    index: InMemorySearchIndex
    archiver: Archiver


@contextmanager
def memory_archive(
    index: InMemorySearchIndex | None = None, **options: Any
) -> Iterator[MemoryArchive]:
    """Options go to Archiver (without `analysers` it analyses in the calling thread)."""
    store, index = InMemoryRawStore(), index or InMemorySearchIndex()
    archiver = Archiver(store, index, **options)
    try:
        yield MemoryArchive(store, index, archiver)
    finally:
        archiver.close()


def imap_account(**changes: Any) -> ImapAccount:
    fields: dict[str, Any] = {
        "name": "acct",
        "host": "imap.test",
        "username": "u",
        "password": "pw",
    }
    return ImapAccount.model_validate(fields | changes)


if TYPE_CHECKING:  # mypy checks each fake against its Protocol
    from archiver.imap.sync import Connect
    from archiver.ports import (
        Authenticator,
        JsonStore,
        Mailbox,
        PrincipalSource,
        RawStore,
        SearchIndex,
        SessionStore,
        SignInLimits,
    )

    _raw: RawStore = InMemoryRawStore()
    _json: JsonStore = InMemoryJsonStore()
    _index: SearchIndex = InMemorySearchIndex()
    _limits: SignInLimits = InMemorySignInLimits()
    _mailbox: Mailbox = InMemoryMailbox()
    _connect: Connect = InMemoryMailbox().connect


class InMemoryAuditStore:
    """AuditStore in dicts: records written once per number, segments never replaced (as
    If-None-Match: * and Object Lock make them). Tests tamper through `records`/`segment_data`
    directly, as an attacker with write (and bypass) rights on the bucket would."""

    def __init__(self) -> None:
        self.records: dict[int, bytes] = {}
        self.segment_data: dict[tuple[int, int], bytes] = {}
        self.retained_until: dict[tuple[int, int], datetime] = {}
        self.head: dict[str, Any] | None = None
        self.faults = Faults("s3")
        self._lock = threading.Lock()

    def put_record(self, seq: int, data: bytes) -> bool:
        self.faults.check("put_record")
        with self._lock:
            if seq in self.records:
                return False
            self.records[seq] = bytes(data)
            return True

    def get_record(self, seq: int) -> bytes | None:
        self.faults.check("get_record")
        return self.records.get(seq)

    def record_seqs(self, after: int = 0) -> Iterator[int]:
        self.faults.check("record_seqs")
        yield from sorted(s for s in list(self.records) if s > after)

    def get_head(self) -> dict[str, Any] | None:
        self.faults.check("get_head")
        return copy.deepcopy(self.head)

    def put_head(self, value: Mapping[str, Any]) -> None:
        self.faults.check("put_head")
        self.head = _as_stored_json(value)

    def put_segment(self, first: int, last: int, data: bytes, retain_until: datetime) -> bool:
        self.faults.check("put_segment")
        with self._lock:
            if (first, last) in self.segment_data:
                return False
            self.segment_data[first, last] = bytes(data)
            self.retained_until[first, last] = retain_until
            return True

    def segments(self) -> Iterator[tuple[int, int]]:
        self.faults.check("segments")
        yield from sorted(self.segment_data)

    def get_segment(self, first: int, last: int) -> bytes | None:
        self.faults.check("get_segment")
        return self.segment_data.get((first, last))

    def has_segment(self, first: int, last: int) -> bool:
        self.faults.check("has_segment")
        return (first, last) in self.segment_data

    _sessions: SessionStore = InMemorySessionStore()
    _authenticator: Authenticator = InMemoryUsers()
    _principals: PrincipalSource = InMemoryUsers()


LockMode = Literal["GOVERNANCE", "COMPLIANCE"]


def _whole_second(when: datetime) -> datetime:
    # as S3RetentionStorage: S3 keeps retention to the second, rounded up
    when = when.astimezone(UTC)
    return when.replace(microsecond=0) + timedelta(seconds=1 if when.microsecond else 0)


class InMemoryRetentionStorage:
    """RetentionStorage (S3RetentionStorage's semantics) over an InMemoryRawStore: retention
    only grows, a purge is refused (StorageLocked, records kept) while a retention is in force
    or a legal hold is set, tombstones are written once. Time is the injected clock's, so a
    test moves past a retention date without waiting. One version per message, as
    InMemoryRawStore keeps."""

    def __init__(
        self,
        raw: InMemoryRawStore,
        *,
        mode: LockMode = "GOVERNANCE",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.raw = raw
        raw.lock_keeper = self
        self.mode: LockMode = mode
        self.clock = clock
        self.faults = Faults("s3")
        self.retention: dict[str, tuple[datetime, LockMode]] = {}
        self.held: set[str] = set()
        self.tombstone_data: dict[tuple[str, str], Tombstone] = {}
        self.tombstone_until: dict[tuple[str, str], tuple[datetime, LockMode]] = {}
        self._lock = threading.RLock()

    def _require(self, sha256: str) -> None:
        if not self.raw.exists(sha256):
            raise MessageNotFound(sha256)

    def lock_at_put(self, sha256: str, until: datetime) -> None:
        """The retention a new message's PUT carried (InMemoryRawStore.put)."""
        with self._lock:
            self.retention[sha256] = (_whole_second(until), self.mode)

    def extend_retention(self, sha256: str, until: datetime) -> datetime:
        self.faults.check("extend_retention")
        until = _whole_second(until)
        with self._lock:
            self._require(sha256)
            current = self.retention.get(sha256)
            if current is not None and current[0] >= until:
                return current[0]  # S3 refuses the shorter one: the later date stays
            # a running retention keeps its mode (S3 refuses a change), a new one takes ours
            mode = current[1] if current and current[0] > self.clock() else self.mode
            self.retention[sha256] = (until, mode)
            return until

    def set_legal_hold(self, sha256: str, on: bool) -> None:
        self.faults.check("set_legal_hold")
        with self._lock:
            self._require(sha256)
            if on:
                self.held.add(sha256)
            else:
                self.held.discard(sha256)

    def lock_state(self, sha256: str) -> LockState:
        self.faults.check("lock_state")
        with self._lock:
            self._require(sha256)
            return self._state(sha256)

    def _state(self, sha256: str) -> LockState:
        held = sha256 in self.held
        current = self.retention.get(sha256)
        if current is None or current[0] <= self.clock():  # ran out: locks nothing
            return LockState(legal_hold=held)
        return LockState(retain_until=current[0], mode=current[1], legal_hold=held)

    def purge(self, sha256: str) -> tuple[int, int]:
        self.faults.check("purge")
        with self._lock, self.raw._lock:
            deleted = 0
            if sha256 in self.raw._objects:
                state = self._state(sha256)
                if state.retain_until is not None or state.legal_hold:
                    raise StorageLocked(sha256, state.retain_until, state.legal_hold)
                del self.raw._objects[sha256]
                self.retention.pop(sha256, None)
                deleted = 1
            found = self.raw._records.pop(sha256, {})
            # the first source rides in the raw object's metadata in S3: not a record object
            return deleted, max(len(found) - deleted, 0)

    def put_tombstone(self, tombstone: Tombstone, retain_until: datetime) -> bool:
        self.faults.check("put_tombstone")
        key = (tombstone.sha256, tombstone.run_id)
        with self._lock:
            if key in self.tombstone_data:
                return False
            self.tombstone_data[key] = tombstone
            self.tombstone_until[key] = (retain_until, self.mode)
            return True

    def tombstones(self, sha256: str | None = None) -> Iterator[Tombstone]:
        self.faults.check("tombstones")
        with self._lock:
            found = [t for (sha, _), t in self.tombstone_data.items() if sha256 in (None, sha)]
        yield from found  # insertion order: oldest first
