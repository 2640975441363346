"""The IMAP poller's decisions, on in-memory fakes (tests/support/fakes.py): what is archived,
checkpointed and removed, and what happens when the connection or the store fails. The same
behaviour against a real Dovecot and the real archive is in tests/ingest/test_imap.py."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archiver.imap.sync import Checkpoint, ImapPoller, PollSummary, checkpoint_key
from tests.support.fakes import (
    InMemoryJsonStore,
    InMemoryMailbox,
    MemoryArchive,
    imap_account,
    memory_archive,
)


def message(i: int, tag: str = "poll") -> bytes:
    return (
        f"Message-ID: <{tag}-{i}@imap.test>\r\n"
        "From: 张三 <zhang@example.com>\r\n"
        f"Subject: 合同审批 第{i}封\r\n"
        "Date: Mon, 01 Jan 2024 10:00:00 +0800\r\n\r\n"
        f"请审批合同 {i}。\r\n"
    ).encode()


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


@dataclass
class Rig:
    archive: MemoryArchive
    checkpoints: InMemoryJsonStore
    server: InMemoryMailbox
    poller: ImapPoller

    def poll(self, **account: Any) -> PollSummary:
        return self.poller.poll(imap_account(**account))

    def checkpoint(self, folder: str = "INBOX", account: str = "acct") -> Checkpoint:
        data = self.checkpoints.get_json(checkpoint_key(account, folder))
        assert data is not None, f"no checkpoint for {folder}"
        return Checkpoint.model_validate(data)

    def imap_uids(self, raw: bytes) -> list[str]:
        """The UID of every IMAP delivery recorded for these bytes."""
        records = self.archive.store.records(sha(raw))
        return [r.source.attributes["uid"] for r in records if r.source.kind == "imap"]

    def assert_archived_once(self, mails: Mapping[int, bytes]) -> None:
        """Each message byte-exact in the store, indexed, with one delivery per UID."""
        store, index = self.archive.store, self.archive.index
        assert sorted(store.iter_ids()) == sorted({sha(raw) for raw in mails.values()})
        assert sorted(index.ids()) == sorted(store.iter_ids())
        for uid, raw in mails.items():
            assert store.get(sha(raw)) == raw
            assert self.imap_uids(raw) == [str(uid)]


@contextmanager
def rig(batch_size: int = 100, **poller: Any) -> Iterator[Rig]:
    with memory_archive(store_threads=2) as archive:
        checkpoints, server = InMemoryJsonStore(), InMemoryMailbox()
        polling = ImapPoller(
            archive.archiver,
            checkpoints,
            server.connect,
            batch_size=batch_size,
            sleep=lambda _: None,  # reconnect backoff: nothing to wait for in memory
            **poller,
        )
        yield Rig(archive, checkpoints, server, polling)


def counts(summary: PollSummary) -> dict[str, tuple[int, int, int]]:
    return {f.folder: (f.new, f.duplicates, f.failed) for f in summary.folders}


# -- copy mode -----------------------------------------------------------------------------------


def test_copy_mode_archives_everything_once_checkpoints_and_leaves_the_server_alone() -> None:
    with rig(batch_size=2) as r:
        mails = {
            r.server.append("INBOX", message(i), flags=("\\Seen",)): message(i) for i in range(5)
        }
        before = r.server.flags("INBOX")

        summary = r.poll()

        assert summary.ok and counts(summary) == {"INBOX": (5, 0, 0)}
        r.assert_archived_once(mails)
        checkpoint = r.checkpoint()
        assert (checkpoint.uidvalidity, checkpoint.last_uid, checkpoint.retry) == (
            r.server.uidvalidity("INBOX"),
            max(mails),
            {},
        )
        assert r.server.contents("INBOX") == mails and r.server.flags("INBOX") == before
        assert not {"delete", "move"} & set(r.server.commands)
        source = r.archive.store.records(sha(mails[1]))[0].source
        assert source.attributes["flags"] == "\\Seen" and source.attributes["folder"] == "INBOX"


def test_a_second_poll_finds_nothing_new_and_a_third_only_what_arrived_since() -> None:
    with rig() as r:
        first = {r.server.append("INBOX", message(i)): message(i) for i in range(3)}
        r.poll()

        again = r.poll()
        later = {r.server.append("INBOX", message(9)): message(9)}
        third = r.poll()

        assert again.ok and counts(again) == {"INBOX": (0, 0, 0)}
        assert third.ok and counts(third) == {"INBOX": (1, 0, 0)}
        r.assert_archived_once(first | later)
        assert r.checkpoint().last_uid == max(later)


def test_a_changed_uidvalidity_resyncs_the_folder_without_duplicates() -> None:
    with rig() as r:
        for i in range(4):
            r.server.append("INBOX", message(i))
        r.poll()
        old = r.server.uidvalidity("INBOX")
        new = r.server.renumber("INBOX")

        summary = r.poll()

        assert summary.ok and summary.folders[0].resynced
        assert counts(summary) == {"INBOX": (0, 4, 0)}  # the same bytes, known already
        store = r.archive.store
        assert len(list(store.iter_ids())) == 4 and len(r.archive.index.ids()) == 4
        for i in range(4):
            validities = [
                s.source.attributes["uidvalidity"] for s in store.records(sha(message(i)))
            ]
            assert validities == [str(old), str(new)]  # both deliveries are evidence
            doc = r.archive.index.get(sha(message(i)))
            assert doc is not None and len(doc["sources"]) == 2
        assert r.checkpoint().uidvalidity == new


def test_include_and_exclude_globs_pick_the_folders() -> None:
    with rig() as r:
        for n, folder in enumerate(["INBOX", "归档", "归档.2023", "Trash"]):
            r.server.append(folder, message(n, tag=folder))

        summary = r.poll(include=["INBOX", "归档*"], exclude=["*.2023"])

        assert summary.ok and sorted(counts(summary)) == ["INBOX", "归档"]
        archived = set(r.archive.store.iter_ids())
        assert archived == {sha(message(0, "INBOX")), sha(message(1, "归档"))}


# -- journal mode --------------------------------------------------------------------------------


class StoreDownAfterFirstCheckpoint(InMemoryJsonStore):
    """Checkpoints whose first save takes the raw store down with it."""

    def __init__(self, archive: MemoryArchive) -> None:
        super().__init__()
        self.archive = archive
        self.saves = 0

    def put_json(self, key: str, value: Mapping[str, Any]) -> None:
        super().put_json(key, value)
        self.saves += 1
        if self.saves == 1:
            self.archive.store.faults.unavailable = True


def test_journal_mode_removes_exactly_the_archived_uids_and_stops_when_the_store_fails() -> None:
    with rig(batch_size=2) as r:
        mails = {r.server.append("INBOX", message(i)): message(i) for i in range(5)}
        r.poller.checkpoints = StoreDownAfterFirstCheckpoint(r.archive)
        uids = sorted(mails)

        summary = r.poll(mode="journal")
        r.archive.store.faults.unavailable = False

        # batch 1 stored, then removed; then the store went down: batch 2 stays on the server
        assert summary.error is not None and "storing failed" in summary.error
        assert summary.folders[0].removed == 2
        assert r.server.contents("INBOX") == {u: mails[u] for u in uids[2:]}
        assert sorted(r.archive.store.iter_ids()) == sorted(sha(mails[u]) for u in uids[:2])
        assert sorted(r.archive.index.ids()) == sorted(sha(mails[u]) for u in uids[:2])

        summary = r.poll(mode="journal")

        assert summary.ok and counts(summary) == {"INBOX": (3, 0, 0)}
        assert r.server.contents("INBOX") == {}
        r.assert_archived_once(mails)


def test_journal_mode_removes_nothing_while_the_store_is_unavailable() -> None:
    with rig() as r:
        mails = {r.server.append("INBOX", message(i)): message(i) for i in range(3)}
        r.archive.store.faults.unavailable = True

        summary = r.poll(mode="journal")

        assert summary.error is not None and "storing failed" in summary.error
        assert r.server.contents("INBOX") == mails
        assert r.checkpoints.get_json(checkpoint_key("acct", "INBOX")) is None
        assert r.archive.index.ids() == []


def test_journal_mode_keeps_a_message_it_could_not_archive_and_retries_it() -> None:
    with rig(max_message_bytes=200) as r:
        small = {r.server.append("INBOX", message(i)): message(i) for i in range(2)}
        big = message(2) + b"x" * 300
        big_uid = r.server.append("INBOX", big)

        summary = r.poll(mode="journal")

        assert counts(summary) == {"INBOX": (2, 0, 1)} and not summary.ok
        assert r.server.contents("INBOX") == {big_uid: big}
        assert r.checkpoint().retry == {big_uid: 1}
        r.assert_archived_once(small)
        assert r.poll(mode="journal").folders[0].failed == 1
        assert r.checkpoint().retry == {big_uid: 2}


def test_journal_mode_can_move_archived_mail_to_a_folder_it_does_not_archive() -> None:
    with rig() as r:
        mails = {r.server.append("INBOX", message(i)): message(i) for i in range(3)}

        summary = r.poll(mode="journal", journal_folder="已归档")

        assert summary.ok and counts(summary) == {"INBOX": (3, 0, 0)}
        assert r.server.contents("INBOX") == {}
        assert sorted(r.server.contents("已归档").values()) == sorted(mails.values())
        assert counts(r.poll(mode="journal", journal_folder="已归档")) == {"INBOX": (0, 0, 0)}


# -- connection trouble --------------------------------------------------------------------------


def test_a_connection_dropped_mid_folder_resumes_without_gaps_or_duplicates() -> None:
    with rig(batch_size=3) as r:
        mails = {r.server.append("INBOX", message(i)): message(i) for i in range(10)}
        r.server.drop_connection(after=2, on={"fetch_bodies"})  # during the third batch

        summary = r.poll()

        assert summary.reconnects == 1 and r.server.connections == 2
        assert summary.ok and counts(summary) == {"INBOX": (10, 0, 0)}
        r.assert_archived_once(mails)


def test_a_connection_that_keeps_dropping_stops_the_poll_with_the_reason() -> None:
    with rig(retries=2) as r:
        r.server.append("INBOX", message(0))
        calls = 0

        def flaky() -> None:
            nonlocal calls
            calls += 1
            r.server.drop_connection(after=0)

        r.poller.sleep = lambda _: flaky()
        r.server.drop_connection(after=0)

        summary = r.poll()

        assert summary.error is not None and "connection reset" in summary.error
        assert summary.reconnects == 2 and calls == 2
        assert r.archive.index.ids() == []


def test_rejected_credentials_stop_the_poll_naming_the_account() -> None:
    with rig() as r:
        r.server.append("INBOX", message(0))
        r.server.reject_login = True

        summary = r.poll(name="alice")

        assert summary.error is not None and "alice" in summary.error
        assert summary.reconnects == 0 and r.archive.index.ids() == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(min_value=1, max_value=8),
    batch_size=st.integers(min_value=1, max_value=4),
    drops=st.lists(st.integers(min_value=0, max_value=25), max_size=3),
    journal=st.booleans(),
)
def test_wherever_the_connection_drops_repeated_polls_archive_each_message_once(
    count: int, batch_size: int, drops: list[int], journal: bool
) -> None:
    mode = "journal" if journal else "copy"
    with rig(batch_size=batch_size, retries=0) as r:
        mails = {r.server.append("INBOX", message(i)): message(i) for i in range(count)}

        for after in drops:  # each poll loses its connection at some command, or not at all
            r.server.drop_connection(after=after)
            r.poll(mode=mode)
        r.server.keep_connection()  # the last poll runs clean
        final = r.poll(mode=mode)

        assert final.ok, final
        r.assert_archived_once(mails)
        assert r.server.contents("INBOX") == ({} if journal else mails)
        assert r.checkpoint().last_uid == max(mails)
