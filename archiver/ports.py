"""The small interfaces the domain needs from its backends. Adapters live in archiver/adapters/."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from archiver.access.identity import Identity
from archiver.models import (
    DiskFigures,
    IndexStorage,
    LockState,
    MessageInfo,
    Source,
    SourceRecord,
    SpoolSegment,
    Tombstone,
)

if TYPE_CHECKING:  # archiver.access imports the tagging model, which imports this module
    from archiver.access.model import Principal
    from archiver.access.sessions import SessionRecord

Document = dict[str, Any]
# the key under which get_many and scan give a document's version, for a conditional update_many
VERSION_TOKEN = "_version_token"


class RawStore(Protocol):
    """Byte-exact message storage keyed by SHA-256. The bytes are evidence: never altered."""

    def ensure_ready(self) -> None: ...

    def put(
        self, raw: bytes, source: Source | None = None, *, retain_until: datetime | None = None
    ) -> tuple[str, bool]:
        """Durably store raw bytes and how they arrived; return (sha256, created).

        Storing existing bytes again stores nothing but the new source. A message created now
        is under Object Lock retention until `retain_until` (rounded up to the second, in the
        storage's lock mode) from its first write; existing bytes keep the lock they have."""
        ...

    def get(self, sha256: str) -> bytes:
        """Return the bytes, verified against sha256 (IntegrityError otherwise)."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def put_record(self, record: SourceRecord) -> None:
        """Durably note how a stored message arrived (idempotent per source key)."""
        ...

    def records(self, sha256: str) -> list[SourceRecord]: ...

    def iter_ids(self) -> Iterator[str]: ...

    def write_spool(self, data: bytes) -> SpoolSegment:
        """Durably write a spool segment (archiver/pipeline/spool.py) under a new unique key."""
        ...

    def read_spool(self, segment: SpoolSegment) -> bytes:
        """The segment's bytes; SpoolSegmentNotFound once it has been dropped."""
        ...

    def spooled(self) -> Iterator[SpoolSegment]:
        """Every segment not yet dropped (filed), oldest first."""
        ...

    def drop_spool(self, segments: Sequence[SpoolSegment]) -> None:
        """Remove exactly these segments (already-removed ones are no error)."""
        ...

    def health(self) -> dict[str, Any]: ...


class RetentionStorage(Protocol):
    """What retention and legal holds need from the raw store (S3 Object Lock): retention that
    the storage itself enforces and only ever extends, the legal hold flag, the purge of a
    message whose time has come, and the tombstones it leaves.

    Object Lock applies per object version; every method covers every version of the raw
    message, so no older copy escapes a lock or survives a purge."""

    def extend_retention(self, sha256: str, until: datetime) -> datetime:
        """Object Lock retention of the raw message until at least `until`. Never shortens: when
        a later date is in force, that one stays. Returns the date in force afterwards.
        MessageNotFound when the message is not stored."""
        ...

    def set_legal_hold(self, sha256: str, on: bool) -> None:
        """Set or clear the S3 legal hold flag on every version of the raw message."""
        ...

    def lock_state(self, sha256: str) -> LockState:
        """MessageNotFound when the message is not stored."""
        ...

    def purge(self, sha256: str) -> tuple[int, int]:
        """Delete every version (and delete marker) of the raw message, then of its source
        records; return (message versions, record versions) deleted. StorageLocked when the
        storage refuses (retention not over, a legal hold): then the message's records stay
        too. A message already gone is (0, records deleted), not an error: a purge repeats."""
        ...

    def put_tombstone(self, tombstone: Tombstone, retain_until: datetime) -> bool:
        """Write the tombstone once (False if one exists for this message and run), under
        Object Lock retention until `retain_until`."""
        ...

    def tombstones(self, sha256: str | None = None) -> Iterator[Tombstone]:
        """Every tombstone (of one message, when given), oldest first."""
        ...


class SearchIndex(Protocol):
    """Full-text index of parsed messages; the document id is the raw bytes' SHA-256."""

    def ensure_ready(self) -> None: ...

    def create_many(self, docs: Sequence[Document]) -> dict[str, str | None]:
        """Create documents that do not exist yet (each doc carries its "id").

        Returns id -> None when created, "exists" when already indexed, or an error text.
        """
        ...

    def get_many(self, ids: Iterable[str], fields: Sequence[str]) -> dict[str, Document]:
        """The named fields of the documents that exist, each with "_version_token" for
        update_many's optimistic concurrency check."""
        ...

    def update_many(self, updates: Mapping[str, Document]) -> dict[str, str | None]:
        """Partial updates. A doc holding "_version_token" is only updated if unchanged since;
        returns id -> None, "conflict" or an error text."""
        ...

    def delete_many(self, ids: Sequence[str]) -> dict[str, str | None]:
        """Remove documents (disposition only); id -> None when removed or already absent, or
        an error text."""
        ...

    def ids_by_message_id(self, message_ids: Iterable[str]) -> dict[str, list[str]]: ...

    def get(self, doc_id: str) -> Document | None: ...

    def search(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """Elasticsearch search keyword arguments; with "pit", searches that point in time."""
        ...

    def open_pit(self, keep_alive: str = "5m") -> str: ...

    def close_pit(self, pit: str) -> None: ...

    def scan(
        self, query: Mapping[str, Any], fields: Sequence[str], batch_size: int = 1000
    ) -> Iterator[list[Document]]:
        """Every document matching an Elasticsearch query, in batches, from one point in time;
        each carries "id" and "_version_token"."""
        ...

    def refresh(self) -> None: ...

    def pause_refresh(self) -> None:
        """Stop periodic refreshes during a large import (writes stay durable, they become
        searchable at resume_refresh); ensure_ready() undoes a pause a crash left behind."""
        ...

    def resume_refresh(self) -> None:
        """Periodic refresh back on, and one refresh now."""
        ...

    def health(self) -> dict[str, Any]: ...


class IndexGenerations(Protocol):
    """Rebuilding the search index while it answers: a new index is filled beside the one
    searches use, then takes its place in one step."""

    def layout(self) -> int:
        """The layout version the index searches use was built with."""
        ...

    def new_generation(self) -> SearchIndex:
        """An empty index with the current layout (or the one an interrupted rebuild left),
        not yet searched."""
        ...

    def promote(self, generation: Any) -> SearchIndex | None:  # Any: the adapter's own type
        """Searches and writes go to `generation` (one from new_generation) from now on; the
        index they went to is returned, still readable, until `retire` drops it."""
        ...

    def retire(self, previous: Any) -> None:
        """Drop an index `promote` returned (None: nothing to drop)."""
        ...


class IndexStatistics(Protocol):
    """The search index's size and room (the Status page and /metrics)."""

    def storage(self) -> IndexStorage: ...


class Broker(Protocol):
    """The task broker (Redis): whether it answers and how much work waits in a queue."""

    def health(self) -> dict[str, Any]:
        """{"status": "ok"} or {"status": "unavailable", "error": ...}; never raises."""
        ...

    def queue_length(self, queue: str) -> int:
        """Tasks waiting in the queue (every priority), not the ones being worked on."""
        ...

    def memory_bytes(self) -> int:
        """Memory the broker uses (Redis keeps everything in memory: its disk, in effect)."""
        ...


class LocalDisks(Protocol):
    """Local file systems (a data directory on this host), by a path on each."""

    def usage(self, path: str) -> DiskFigures: ...


class JsonStore(Protocol):
    """Small JSON documents kept in the archive's own backends (S3): saved searches, rules,
    checkpoints. Keys are slash-separated paths such as "saved-searches/alice/weekly"."""

    def put_json(self, key: str, value: Mapping[str, Any]) -> None: ...

    def get_json(self, key: str) -> dict[str, Any] | None: ...

    def get_json_versioned(self, key: str) -> tuple[dict[str, Any], str] | None:
        """The value and its version (the object's ETag), for put_json_if; None when absent."""
        ...

    def put_json_if(self, key: str, value: Mapping[str, Any], *, etag: str | None) -> str:
        """Compare-and-swap: write only if the stored version is still `etag` (None: only if
        there is no value yet). Returns the new version; ConcurrentEdit when the condition
        fails, so two writers that read the same version can never both win."""
        ...

    def list_keys(self, prefix: str) -> list[str]: ...

    def delete(self, key: str) -> None: ...


class PackageWriter(Protocol):
    """One object being written as a stream (an S3 multipart upload): it exists only once
    closed; abort() leaves nothing behind."""

    def write(self, data: bytes) -> int: ...

    def tell(self) -> int: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class PackageStore(Protocol):
    """The exports bucket: export packages (zip parts) and the build's work files. Objects are
    written as streams and read as streams: a package never sits in memory."""

    def ensure_ready(self) -> None: ...

    def writer(self, key: str) -> PackageWriter: ...

    def put(self, key: str, data: bytes) -> None: ...

    def read(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The object's bytes, chunk by chunk; NotFound when it is absent."""
        ...

    def size(self, key: str) -> int | None:
        """The object's size; None when it is absent."""
        ...

    def keys(self, prefix: str) -> list[str]: ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under the prefix, and abort unfinished uploads under it (a
        crashed build's); the number of objects deleted."""
        ...


class SignInLimits(Protocol):
    """Short-lived counts of failed sign-ins and blocks (Redis), keyed by what is limited, such
    as "account:alice" or "address:192.0.2.7". Times are the caller's clock, so the domain
    decides what "now" is; the backend only expires what no longer matters."""

    def add_failure(self, key: str, now: datetime, window: timedelta) -> int:
        """Note a failure at `now`; the failures within `window` up to now, this one included."""
        ...

    def block(self, key: str, until: datetime, now: datetime) -> None:
        """Block the key until `until` and forget its failures (a fresh count afterwards)."""
        ...

    def blocked_until(self, key: str, now: datetime) -> datetime | None:
        """When the key's block ends, if it is blocked at `now`."""
        ...

    def clear(self, key: str) -> None:
        """Forget the key's failures and lift its block."""
        ...


class Mailbox(Protocol):
    """One logged-in IMAP session. Folder names are decoded (Unicode), never modified UTF-7.

    Methods raise ImapConnectionLost when the connection fails, ImapError when the server
    refuses a command."""

    def folders(self) -> list[str]:
        """Every selectable folder."""
        ...

    def select(self, folder: str, *, readonly: bool) -> int:
        """Open the folder; returns its UIDVALIDITY."""
        ...

    def uids_after(self, uid: int) -> list[int]:
        """UIDs greater than uid, ascending."""
        ...

    def fetch_info(self, uids: Sequence[int]) -> list[MessageInfo]:
        """Flags, INTERNALDATE and size of those UIDs that still exist."""
        ...

    def fetch_bodies(self, uids: Sequence[int]) -> dict[int, bytes]:
        """BODY.PEEK[] of each UID (PEEK: \\Seen is never set)."""
        ...

    def delete(self, uids: Sequence[int]) -> None:
        """Flag \\Deleted and expunge exactly these UIDs (UID EXPUNGE)."""
        ...

    def move(self, uids: Sequence[int], folder: str) -> None: ...

    def ensure_removable(self, journal_folder: str | None) -> None:
        """Raise ImapError unless exactly chosen UIDs can be removed: deleted (UID EXPUNGE),
        or moved to journal_folder when one is given."""
        ...

    def ensure_folder(self, folder: str) -> None: ...


class AuditStore(Protocol):
    """Where the audit log lives (the archive bucket): one object per record, named by its
    sequence number, and sealed segments under Object Lock retention."""

    def put_record(self, seq: int, data: bytes) -> bool:
        """Write record `seq` unless it exists (If-None-Match: *); False when it does."""
        ...

    def get_record(self, seq: int) -> bytes | None: ...

    def record_seqs(self, after: int = 0) -> Iterator[int]:
        """The sequence numbers stored, ascending, greater than `after`."""
        ...

    def get_head(self) -> dict[str, Any] | None:
        """The last head written: a hint for appending, and what verify checks truncation by."""
        ...

    def put_head(self, value: Mapping[str, Any]) -> None: ...

    def put_segment(self, first: int, last: int, data: bytes, retain_until: datetime) -> bool:
        """Write a sealed segment once, under retention until `retain_until`; False if it exists."""
        ...

    def segments(self) -> Iterator[tuple[int, int]]:
        """(first, last) of every sealed segment, ascending."""
        ...

    def get_segment(self, first: int, last: int) -> bytes | None: ...

    def has_segment(self, first: int, last: int) -> bool: ...


class AuditIndex(Protocol):
    """The searchable copy of the audit log (Elasticsearch), rebuildable from the AuditStore."""

    def ensure_ready(self) -> None: ...

    def index_records(self, docs: Sequence[Document]) -> None:
        """Index (or re-index) records; each document's "seq" is its id."""
        ...

    def search(self, body: Mapping[str, Any]) -> Mapping[str, Any]: ...

    def refresh(self) -> None: ...


class IdentityProvider(Protocol):
    """A directory that checks a person's credentials (LDAP / Active Directory; OIDC later, see
    archiver/access/identity.py).

    ``authenticate`` raises SignInFailed for wrong credentials or an unknown user (alike),
    BackendUnavailable when the directory cannot be reached in time, BackendFailed when it is
    misconfigured (e.g. the search account's own credentials are refused); nothing else."""

    @property
    def name(self) -> str: ...

    def authenticate(self, username: str, password: str) -> Identity: ...


class SessionStore(Protocol):
    """Short-lived browser sessions (Redis), each under the SHA-256 of its id (`key`) and
    indexed by user. Every write sets the entry's TTL: the backstop of the domain's expiry."""

    def create(self, key: str, record: SessionRecord, ttl_seconds: int) -> None: ...

    def get(self, key: str) -> SessionRecord | None: ...

    def touch(self, key: str, last_seen: datetime, ttl_seconds: int) -> bool:
        """Note a use; False (and nothing written) when the session is gone meanwhile."""
        ...

    def delete(self, key: str) -> None: ...

    def delete_user(self, username: str) -> int:
        """Remove every session of the user at once; how many there were."""
        ...


class Authenticator(Protocol):
    """Checks a username and password (local users, LDAP) and says who signed in."""

    def authenticate(self, username: str, password: str, client_address: str) -> Principal:
        """The principal with the roles in force now. SignInFailed for a wrong name or password
        (the same for every provider), AccountDisabled only after the right password of a
        disabled account, AccountLocked / AddressBlocked (SignInThrottled) while locked out,
        BackendUnavailable when a directory cannot answer; the API edge decides what of this
        it tells the client. client_address is for rate limits and audit."""
        ...


class PrincipalSource(Protocol):
    """Who a username is now (roles, departments), for each request made with a session or an
    API token: role changes apply at once, not at the next sign-in."""

    def principal(self, username: str) -> Principal | None:
        """None for a user that no longer exists or is disabled."""
        ...
