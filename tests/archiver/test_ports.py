"""The in-memory fakes (tests/support/fakes.py) keep to the ports and to their real adapters'
semantics, so the fast unit tests built on them test the domain, not the fakes."""

from __future__ import annotations

import hashlib
import inspect
from datetime import UTC, datetime, timedelta

import pytest

from archiver.adapters.s3 import (
    S3AuditStore,
    S3PackageStore,
    S3PackageWriter,
    S3RetentionStorage,
)
from archiver.errors import (
    BackendUnavailable,
    ConcurrentEdit,
    ImapConnectionLost,
    ImapError,
    IntegrityError,
    MessageNotFound,
    NotFound,
    SpoolSegmentNotFound,
)
from archiver.models import Source, SourceRecord
from archiver.ports import (
    AuditStore,
    IdentityProvider,
    JsonStore,
    Mailbox,
    PackageStore,
    PackageWriter,
    RawStore,
    RetentionStorage,
    SearchIndex,
    SignInLimits,
)
from tests.support.fakes import (
    InMemoryAuditStore,
    InMemoryIdentityProvider,
    InMemoryJsonStore,
    InMemoryMailbox,
    InMemoryPackageStore,
    InMemoryPackageWriter,
    InMemoryRawStore,
    InMemoryRetentionStorage,
    InMemorySearchIndex,
    InMemorySignInLimits,
    imap_account,
)

WHEN = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
ACCOUNT = imap_account()


def source(detail: str, minutes: int = 0) -> Source:
    return Source(kind="import", detail=detail, received_at=WHEN + timedelta(minutes=minutes))


PORTS: list[tuple[type, type]] = [
    (RawStore, InMemoryRawStore),
    (JsonStore, InMemoryJsonStore),
    (SearchIndex, InMemorySearchIndex),
    (Mailbox, InMemoryMailbox),
    (AuditStore, InMemoryAuditStore),
    (AuditStore, S3AuditStore),
    (RetentionStorage, InMemoryRetentionStorage),
    (RetentionStorage, S3RetentionStorage),
    (IdentityProvider, InMemoryIdentityProvider),
    (SignInLimits, InMemorySignInLimits),
    (PackageStore, InMemoryPackageStore),
    (PackageStore, S3PackageStore),
    (PackageWriter, InMemoryPackageWriter),
    (PackageWriter, S3PackageWriter),
]


@pytest.mark.parametrize(("port", "fake"), PORTS, ids=lambda p: p.__name__)
def test_each_fake_has_every_method_of_its_port_with_the_same_parameters(
    port: type, fake: type
) -> None:
    members = {name for name in vars(port) if not name.startswith("_")}
    assert members, f"{port.__name__} lists no members: has the Protocol moved?"
    assert members - set(dir(fake)) == set(), f"{fake.__name__} misses a {port.__name__} method"
    for name in sorted(members):
        if isinstance(vars(port)[name], property):
            continue  # an attribute: being there is enough
        wanted = inspect.signature(getattr(port, name)).parameters
        have = inspect.signature(getattr(fake, name)).parameters
        assert [(p.name, p.kind, p.default) for p in have.values()] == [
            (p.name, p.kind, p.default) for p in wanted.values()
        ], f"{fake.__name__}.{name} differs from {port.__name__}.{name}"


# -- RawStore ------------------------------------------------------------------------------------


def test_raw_store_keeps_bytes_exactly_once_with_every_source_in_arrival_order() -> None:
    store = InMemoryRawStore()
    raw = b"Subject: x\r\n\r\n\xff\x00 exact\r\n"

    sha256, created = store.put(raw, source("second", minutes=5))
    again, created_again = store.put(raw, source("first"))
    store.put(raw, source("first", minutes=9))  # the same source offered again (a retry)

    assert (sha256, created, created_again) == (hashlib.sha256(raw).hexdigest(), True, False)
    assert again == sha256 and store.get(sha256) == raw and store.exists(sha256)
    assert [r.source.detail for r in store.records(sha256)] == ["first", "second"]
    assert list(store.iter_ids()) == [sha256]


def test_raw_store_reports_missing_and_corrupt_objects_with_typed_errors() -> None:
    store = InMemoryRawStore()
    sha256, _ = store.put(b"original")
    store.corrupt(sha256, b"tampered")

    with pytest.raises(IntegrityError) as corrupt:
        store.get(sha256)
    assert corrupt.value.actual == hashlib.sha256(b"tampered").hexdigest()
    with pytest.raises(MessageNotFound):
        store.get("0" * 64)
    with pytest.raises(MessageNotFound):
        store.records("0" * 64)
    assert not store.exists("0" * 64)


def test_a_record_for_stored_bytes_can_be_added_on_its_own() -> None:
    store = InMemoryRawStore()
    sha256, _ = store.put(b"bytes")
    store.put_record(SourceRecord(sha256=sha256, source=source("later")))
    assert [r.source.detail for r in store.records(sha256)] == ["later"]


def test_spool_segments_list_oldest_first_and_drop_by_version() -> None:
    store = InMemoryRawStore()
    first, second, third = (store.write_spool(f"segment {i}".encode()) for i in range(3))

    assert [s.key for s in store.spooled()] == [first.key, second.key, third.key]
    assert len({first.key, second.key, third.key}) == 3
    assert store.read_spool(second) == b"segment 1"

    store.drop_spool([second, second.model_copy(update={"key": "spool/never-written"})])
    store.drop_spool([second])  # already removed: no error

    assert [s.key for s in store.spooled()] == [first.key, third.key]
    with pytest.raises(SpoolSegmentNotFound):
        store.read_spool(second)


def test_an_unavailable_store_raises_backend_unavailable_and_says_so_in_health() -> None:
    store = InMemoryRawStore()
    store.faults.unavailable = True
    with pytest.raises(BackendUnavailable):
        store.put(b"x")
    assert store.health()["status"] == "unavailable"
    store.faults.unavailable = False
    assert store.health()["status"] == "ok"
    assert list(store.iter_ids()) == []


def test_fail_next_fails_only_the_named_operations_that_many_times() -> None:
    store = InMemoryRawStore()
    store.faults.fail_next(2, only={"put"})
    assert not store.exists("0" * 64)
    for _ in range(2):
        with pytest.raises(BackendUnavailable):
            store.put(b"x")
    assert store.put(b"x")[1] is True


# -- JsonStore -----------------------------------------------------------------------------------


def test_json_store_round_trips_through_json_and_lists_by_prefix() -> None:
    store = InMemoryJsonStore()
    value = {"retry": {7: 1}, "when": WHEN, "name": "归档"}
    store.put_json("a/one", value)
    store.put_json("a/two", {"n": 2})
    store.put_json("b/one", {"n": 3})

    got = store.get_json("a/one")
    assert got == {"retry": {"7": 1}, "when": str(WHEN), "name": "归档"}  # as JSON keeps it
    assert got is not None
    got["name"] = "changed"
    assert store.get_json("a/one") == {"retry": {"7": 1}, "when": str(WHEN), "name": "归档"}
    assert store.list_keys("a/") == ["a/one", "a/two"]
    store.delete("a/one")
    store.delete("a/one")
    assert store.get_json("a/one") is None and store.list_keys("a/") == ["a/two"]


def test_json_store_conditional_writes_refuse_a_stale_version_and_a_second_create() -> None:
    store = InMemoryJsonStore()
    first = store.put_json_if("k", {"n": 1}, etag=None)
    with pytest.raises(ConcurrentEdit):
        store.put_json_if("k", {"n": 0}, etag=None)
    assert store.get_json_versioned("k") == ({"n": 1}, first)
    second = store.put_json_if("k", {"n": 2}, etag=first)
    with pytest.raises(ConcurrentEdit):
        store.put_json_if("k", {"n": 3}, etag=first)
    store.put_json("k", {"n": 4})  # an unconditional write is a new version too
    with pytest.raises(ConcurrentEdit):
        store.put_json_if("k", {"n": 5}, etag=second)
    store.delete("k")
    assert store.get_json_versioned("k") is None
    store.put_json_if("k", {"n": 6}, etag=None)
    assert store.get_json("k") == {"n": 6}


# -- SearchIndex ---------------------------------------------------------------------------------


def test_index_creates_once_and_updates_only_with_a_current_version_token() -> None:
    index = InMemorySearchIndex()
    assert index.create_many([{"id": "a", "sources": [1], "meta": {"x": 1}}]) == {"a": None}
    assert index.create_many([{"id": "a", "sources": []}]) == {"a": "exists"}

    token = index.get_many(["a", "missing"], ["sources"])["a"].pop("_version_token")
    assert index.get_many(["a"], ["sources"])["a"]["sources"] == [1]
    assert index.update_many({"a": {"sources": [1, 2], "_version_token": token}}) == {"a": None}
    assert index.update_many({"a": {"sources": [9], "_version_token": token}}) == {"a": "conflict"}
    assert index.update_many({"a": {"meta": {"y": 2}}}) == {"a": None}

    assert index.get("a") == {"id": "a", "sources": [1, 2], "meta": {"x": 1, "y": 2}}
    assert index.update_many({"gone": {"sources": []}})["gone"] is not None
    assert index.get("gone") is None


def test_index_finds_ids_by_message_id_and_refuses_elasticsearch_queries() -> None:
    index = InMemorySearchIndex()
    index.create_many([{"id": "a", "message_id": "m1"}, {"id": "b", "message_id": "m1"}])
    assert index.ids_by_message_id(["m1", "m2"]) == {"m1": ["a", "b"]}
    with pytest.raises(NotImplementedError, match="real"):
        index.search({"query": {"match_all": {}}})
    with pytest.raises(NotImplementedError, match="real"):
        next(iter(index.scan({}, ["id"])))


# -- Mailbox -------------------------------------------------------------------------------------


def test_mailbox_lists_uids_ascending_and_fetches_without_touching_flags() -> None:
    server = InMemoryMailbox()
    uids = [server.append("INBOX", f"m{i}".encode(), flags=("\\Seen",)) for i in range(3)]
    with server.connect(ACCOUNT) as box:
        validity = box.select("INBOX", readonly=True)
        assert validity == server.uidvalidity("INBOX")
        assert box.uids_after(uids[0]) == uids[1:]
        infos = box.fetch_info([uids[2], 999, uids[1]])
        assert [(i.uid, i.size, i.flags) for i in infos] == [
            (uids[1], 2, ("\\Seen",)),
            (uids[2], 2, ("\\Seen",)),
        ]
        assert box.fetch_bodies(uids) == {u: f"m{i}".encode() for i, u in enumerate(uids)}
        with pytest.raises(ImapError, match="read-only"):
            box.delete(uids)
    assert server.flags("INBOX") == {u: ("\\Seen",) for u in uids}


def test_mailbox_deletes_and_moves_exactly_the_given_uids() -> None:
    server = InMemoryMailbox()
    uids = [server.append("INBOX", f"m{i}".encode()) for i in range(4)]
    with server.connect(ACCOUNT) as box:
        box.ensure_folder("Done")
        box.select("INBOX", readonly=False)
        box.delete([uids[0]])
        box.move([uids[2]], "Done")
    assert server.contents("INBOX") == {uids[1]: b"m1", uids[3]: b"m3"}
    assert list(server.contents("Done").values()) == [b"m2"]


def test_a_dropped_connection_stays_dropped_until_the_next_connect() -> None:
    server = InMemoryMailbox()
    server.append("INBOX", b"m")
    server.drop_connection(after=1, on={"fetch_bodies"})
    with server.connect(ACCOUNT) as box:
        box.select("INBOX", readonly=True)
        assert box.fetch_bodies([1]) == {1: b"m"}
        with pytest.raises(ImapConnectionLost):
            box.fetch_bodies([1])
        with pytest.raises(ImapConnectionLost):
            box.uids_after(0)
    with server.connect(ACCOUNT) as box:
        box.select("INBOX", readonly=True)
        assert box.fetch_bodies([1]) == {1: b"m"}
    assert server.connections == 2


def test_renumbering_gives_a_new_uidvalidity_and_new_uids() -> None:
    server = InMemoryMailbox()
    for i in range(3):
        server.append("INBOX", f"m{i}".encode())
    with server.connect(ACCOUNT) as box:
        box.select("INBOX", readonly=False)
        box.delete([1])
    old = server.uidvalidity("INBOX")
    assert server.renumber("INBOX") != old
    assert server.contents("INBOX") == {1: b"m1", 2: b"m2"}


# -- PackageStore --------------------------------------------------------------------------------


def test_a_package_object_exists_once_closed_and_abort_leaves_nothing() -> None:
    store = InMemoryPackageStore()
    writer = store.writer("exp-1/part001.zip")
    assert writer.write(b"PK\x03\x04") == 4 and writer.tell() == 4
    assert store.size("exp-1/part001.zip") is None and store.pending == ["exp-1/part001.zip"]
    writer.close()
    assert b"".join(store.read("exp-1/part001.zip", chunk_size=1)) == b"PK\x03\x04"
    assert store.size("exp-1/part001.zip") == 4 and store.pending == []

    dropped = store.writer("exp-1/part002.zip")
    dropped.write(b"partial")
    dropped.abort()
    assert store.keys("exp-1/") == ["exp-1/part001.zip"] and store.pending == []
    with pytest.raises(NotFound):
        next(store.read("exp-1/part002.zip"))


def test_delete_prefix_removes_objects_and_unfinished_writers_under_it() -> None:
    store = InMemoryPackageStore()
    store.put("exp-1/work/items.jsonl", b"{}")
    store.put("exp-2/part001.zip", b"PK")
    crashed = store.writer("exp-1/part001.zip")
    crashed.write(b"PK")
    assert store.delete_prefix("exp-1/") == 1
    assert store.keys("") == ["exp-2/part001.zip"] and store.pending == []
    with pytest.raises(ValueError, match="needs a prefix"):
        store.delete_prefix("")
