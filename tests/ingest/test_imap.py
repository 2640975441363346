"""The IMAP poller against a real, private Dovecot (tests/support/dovecot.py) and the real archive.

"Byte-exact" here means: the archive holds exactly the bytes the server returns for BODY.PEEK[].
IMAP transfers messages with CRLF line ends; Dovecot stores maildir files with LF and gives CRLF
back, so a message APPENDed with CRLF line ends (as IMAP requires; imaplib converts bare LF before
sending) comes back, and is archived, identical to what was appended. The tests check both.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from archiver import bootstrap
from archiver.adapters.imap import connect, quote
from archiver.adapters.s3 import S3JsonStore
from archiver.bootstrap import imap_poller
from archiver.errors import ImapAuthError
from archiver.imap import utf7
from archiver.imap.sync import ImapPoller, PollSummary, checkpoint_key
from archiver.models import Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.settings import Settings
from tests.support.dovecot import (
    PASSWORD,
    CuttingProxy,
    Dovecot,
    account,
    new_user,
    running_dovecot,
)
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parents[2]
# "." is the hierarchy separator of Dovecot's default maildir layout
FOLDERS = ["INBOX", "归档", "归档.二〇二四", "项目 & 合同"]


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


@pytest.fixture
def user(dovecot: Dovecot) -> str:
    return new_user()


def make_poller(settings: Settings, archiver: Archiver, batch_size: int = 50) -> ImapPoller:
    quick = settings.model_copy(update={"imap_backoff": 0.05, "imap_timeout": 10.0})
    return imap_poller(quick, archiver, batch_size=batch_size)


def message(tag: str, i: int) -> bytes:
    subject = base64.b64encode(f"合同审批 {tag} 第{i}封".encode()).decode()
    return (
        f"Message-ID: <{tag}-{i}@imap.test>\r\n"
        "From: =?utf-8?b?5byg5LiJ?= <zhang@example.com>\r\n"
        "To: archive@example.com\r\n"
        f"Subject: =?utf-8?b?{subject}?=\r\n"
        "Date: Mon, 01 Jan 2024 10:00:00 +0800\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"请审批合同 {tag} {i}。\r\n"
    ).encode()


def append(dovecot: Dovecot, user: str, folder: str, raw: bytes, flags: str = "") -> int:
    with dovecot.client(user) as imap:
        typ, data = imap.append(quote(utf7.encode(folder)), flags or None, None, raw)
    assert typ == "OK", data
    match = re.search(rb"APPENDUID \d+ (\d+)", data[0])
    assert match is not None
    return int(match[1])


def append_all(dovecot: Dovecot, user: str, tag: str, count: int, flags: str = "") -> list[bytes]:
    """count new messages in INBOX, in order."""
    mails = [message(tag, i) for i in range(count)]
    for raw in mails:
        append(dovecot, user, "INBOX", raw, flags=flags)
    return mails


SIZE_LIMIT = 2000


def too_large(tag: str) -> bytes:
    return message(tag, 0) + b"x" * SIZE_LIMIT + b"\r\n"


def strict_poller(settings: Settings, archiver: Archiver) -> ImapPoller:
    """A poller whose message size limit too_large() exceeds."""
    return make_poller(settings.model_copy(update={"max_message_bytes": SIZE_LIMIT}), archiver)


def create(dovecot: Dovecot, user: str, folder: str) -> None:
    with dovecot.client(user) as imap:
        assert imap.create(quote(utf7.encode(folder)))[0] == "OK"


def server_state(dovecot: Dovecot, user: str, folder: str) -> dict[int, tuple[str, bytes]]:
    """uid -> (flags, bytes) as the server has them, read without changing anything."""
    with dovecot.client(user) as imap:
        typ, data = imap.select(quote(utf7.encode(folder)), readonly=True)
        assert typ == "OK", data
        typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
    state: dict[int, tuple[str, bytes]] = {}
    for entry in data:
        if isinstance(entry, tuple):
            head = entry[0].decode()
            uid = int(re.search(r"UID (\d+)", head)[1])  # type: ignore[index]
            flags = re.search(r"FLAGS \(([^)]*)\)", head)[1]  # type: ignore[index]
            state[uid] = (" ".join(f for f in flags.split() if f != "\\Recent"), entry[1])
    return state


def uidvalidity(dovecot: Dovecot, user: str, folder: str) -> int:
    with dovecot.client(user) as imap:
        imap.select(quote(utf7.encode(folder)), readonly=True)
        return int(imap.response("UIDVALIDITY")[1][0])


def imap_sources(archiver: Archiver, raw: bytes) -> list[Source]:
    sha256 = hashlib.sha256(raw).hexdigest()
    return [r.source for r in archiver.store.records(sha256) if r.source.kind == "imap"]


def by_folder(summary: PollSummary) -> dict[str, tuple[int, int, int]]:
    return {f.folder: (f.new, f.duplicates, f.failed) for f in summary.folders}


def assert_archived(archiver: Archiver, raw: bytes) -> str:
    """The exact bytes are in the raw store and the message is indexed."""
    sha256 = hashlib.sha256(raw).hexdigest()
    assert archiver.store.get(sha256) == raw
    assert archiver.index.get(sha256) is not None
    return sha256


# -- copy mode ---------------------------------------------------------------------------------


def test_poll_archives_every_folder_byte_exact_incrementally_and_leaves_flags_alone(
    dovecot: Dovecot, user: str, archiver: Archiver, settings: Settings
) -> None:
    appended: dict[str, list[bytes]] = {}
    for folder in FOLDERS[1:]:
        create(dovecot, user, folder)
    for n, folder in enumerate(FOLDERS):
        appended[folder] = [message(f"{user}-{n}", i) for i in range(3)]
        for i, raw in enumerate(appended[folder]):
            append(dovecot, user, folder, raw, flags=["", "\\Seen", "\\Flagged $Label1"][i])
    before = {f: server_state(dovecot, user, f) for f in FOLDERS}
    poller = make_poller(settings, archiver)

    summary = poller.poll(account(dovecot, user))

    assert summary.error is None and summary.ok
    assert by_folder(summary) == {f: (3, 0, 0) for f in FOLDERS}
    for folder in FOLDERS:
        validity = uidvalidity(dovecot, user, folder)
        for uid, (flags, served) in before[folder].items():
            assert served in appended[folder]  # Dovecot serves what was appended, unchanged
            assert_archived(archiver, served)
            [source] = imap_sources(archiver, served)
            assert source.detail == f"{user}/{folder}/{validity}/{uid}"
            assert source.attributes["folder"] == folder  # decoded from modified UTF-7
            assert source.attributes["uid"] == str(uid)
            assert source.attributes["uidvalidity"] == str(validity)
            assert source.attributes["flags"] == flags
            assert source.received_at.tzinfo is not None  # INTERNALDATE
    # BODY.PEEK[] and EXAMINE: not one flag changed, \Seen included
    assert {f: server_state(dovecot, user, f) for f in FOLDERS} == before

    again = poller.poll(account(dovecot, user))
    assert by_folder(again) == {f: (0, 0, 0) for f in FOLDERS}

    later = message(f"{user}-later", 0)
    uid = append(dovecot, user, "归档.二〇二四", later)
    third = poller.poll(account(dovecot, user))
    assert by_folder(third) == {f: (int(f == "归档.二〇二四"), 0, 0) for f in FOLDERS}
    assert_archived(archiver, later)
    assert imap_sources(archiver, later)[0].attributes["uid"] == str(uid)


def test_include_and_exclude_globs_pick_the_folders(
    dovecot: Dovecot, user: str, archiver: Archiver, settings: Settings
) -> None:
    for folder in ["归档", "归档.旧", "Trash"]:
        create(dovecot, user, folder)
        append(dovecot, user, folder, message(f"{user}-{folder}", 0))

    picked = account(dovecot, user, include=["归档*", "Trash"], exclude=["*.旧"])
    summary = make_poller(settings, archiver).poll(picked)

    assert by_folder(summary) == {"归档": (1, 0, 0), "Trash": (1, 0, 0)}


def test_the_same_message_via_smtp_and_imap_is_one_object_with_both_sources(
    dovecot: Dovecot, user: str, archiver: Archiver, settings: Settings
) -> None:
    raw = message(f"{user}-both", 0)
    smtp = Source(kind="smtp", detail=f"queue-{user}", received_at=datetime.now(UTC))
    [outcome] = archiver.ingest_many([Incoming(raw, smtp, "smtp")])
    assert outcome.status == "imported"
    append(dovecot, user, "INBOX", raw)

    summary = make_poller(settings, archiver).poll(account(dovecot, user))

    assert by_folder(summary) == {"INBOX": (0, 1, 0)}
    sha256 = assert_archived(archiver, raw)
    kinds = sorted(r.source.kind for r in archiver.store.records(sha256))
    assert kinds == ["imap", "smtp"]
    doc = archiver.index.get(sha256)
    assert doc is not None and doc["source_kinds"] == ["imap", "smtp"]


def test_a_changed_uidvalidity_resyncs_the_folder_without_duplicates(
    dovecot: Dovecot, user: str, archiver: Archiver, settings: Settings
) -> None:
    folder = "重建"
    old = [message(f"{user}-old", i) for i in range(3)]
    create(dovecot, user, folder)
    for raw in old:
        append(dovecot, user, folder, raw)
    poller = make_poller(settings, archiver)
    assert by_folder(poller.poll(account(dovecot, user)))[folder] == (3, 0, 0)
    first_validity = uidvalidity(dovecot, user, folder)

    with dovecot.client(user) as imap:  # recreate: same name, new UIDVALIDITY, UIDs from 1
        assert imap.delete(quote(utf7.encode(folder)))[0] == "OK"
    create(dovecot, user, folder)
    new = message(f"{user}-new", 0)
    for raw in [old[2], new, old[0], old[1]]:
        append(dovecot, user, folder, raw)
    second_validity = uidvalidity(dovecot, user, folder)
    assert second_validity != first_validity

    summary = poller.poll(account(dovecot, user))

    [resynced] = [f for f in summary.folders if f.folder == folder]
    assert resynced.resynced and (resynced.new, resynced.duplicates, resynced.failed) == (1, 3, 0)
    for raw in [*old, new]:
        assert_archived(archiver, raw)
    # the old messages now list where they were under both UIDVALIDITYs
    validities = sorted(s.attributes["uidvalidity"] for s in imap_sources(archiver, old[0]))
    assert validities == sorted([str(first_validity), str(second_validity)])
    checkpoint = S3JsonStore(bootstrap.raw_store(settings)).get_json(checkpoint_key(user, folder))
    assert checkpoint is not None
    assert (checkpoint["uidvalidity"], checkpoint["last_uid"]) == (second_validity, 4)


# -- journal mode ------------------------------------------------------------------------------


class CutAfterFirstCheckpoint(S3JsonStore):
    """The poller's real checkpoint store; the raw store's S3 connection goes down right after
    the first checkpoint is written (the raw store talks to S3 through `proxy`)."""

    def __init__(self, settings: Settings, proxy: TcpProxy) -> None:
        super().__init__(bootstrap.raw_store(settings))
        self.proxy = proxy
        self.puts = 0

    def put_json(self, key: str, value: Any) -> None:
        super().put_json(key, value)
        self.puts += 1
        if self.puts == 1:
            self.proxy.cut()


def test_journal_mode_removes_mail_only_after_it_is_durably_stored(
    dovecot: Dovecot, user: str, archiver: Archiver, settings: Settings
) -> None:
    host, port = settings.s3_endpoint.split(":")
    proxy = TcpProxy(host, int(port))
    proxied = settings.model_copy(update={"s3_endpoint": proxy.address})
    s3_archiver = bootstrap.archiver(proxied)
    checkpoints = CutAfterFirstCheckpoint(settings, proxy)
    mails = [message(f"{user}-journal", i) for i in range(6)]
    for raw in mails:
        append(dovecot, user, "INBOX", raw)
    journal = account(dovecot, user, mode="journal")
    try:
        poller = ImapPoller(s3_archiver, checkpoints, connect, batch_size=2)

        summary = poller.poll(journal)

        # batch 1 stored, then removed; S3 went down: batch 2 stored nothing, removed nothing
        assert summary.error is not None and "storing failed" in summary.error
        assert summary.folders[0].removed == 2
        remaining = [raw for _, raw in server_state(dovecot, user, "INBOX").values()]
        assert remaining == mails[2:]
        for raw in mails[:2]:
            assert_archived(archiver, raw)
        for raw in mails[2:]:
            assert not archiver.store.exists(hashlib.sha256(raw).hexdigest())

        proxy.restore()
        summary = poller.poll(journal)
    finally:
        s3_archiver.close()
        proxy.close()

    assert summary.ok and by_folder(summary) == {"INBOX": (4, 0, 0)}
    assert server_state(dovecot, user, "INBOX") == {}
    for raw in mails:
        assert_archived(archiver, raw)


def test_journal_mode_can_move_archived_mail_to_a_folder_it_does_not_archive(
    dovecot: Dovecot, user: str, archiver: Archiver, settings: Settings
) -> None:
    mails = [message(f"{user}-move", i) for i in range(3)]
    for raw in mails:
        append(dovecot, user, "INBOX", raw, flags="\\Seen")
    journal = account(dovecot, user, mode="journal", journal_folder="已归档")
    poller = make_poller(settings, archiver)

    summary = poller.poll(journal)

    assert summary.ok and by_folder(summary) == {"INBOX": (3, 0, 0)}
    assert server_state(dovecot, user, "INBOX") == {}
    moved = server_state(dovecot, user, "已归档")
    assert sorted(raw for _, raw in moved.values()) == sorted(mails)
    assert {flags for flags, _ in moved.values()} == {"\\Seen"}
    assert by_folder(poller.poll(journal)) == {"INBOX": (0, 0, 0)}


@pytest.mark.parametrize("when", ["from the start", "after storing"])
def test_journal_mode_with_elasticsearch_down_removes_nothing_until_it_is_back(
    dovecot: Dovecot, user: str, archiver: Archiver, settings: Settings, when: str
) -> None:
    """ "After storing" is the worse moment: the bytes are in S3 and only indexing fails. Not
    indexed is not archived, so nothing may leave the server."""
    mails = append_all(dovecot, user, f"{user}-es-down", 4, flags="\\Seen")
    before = server_state(dovecot, user, "INBOX")
    es = urlsplit(settings.es_url)
    proxy = TcpProxy(es.hostname or "127.0.0.1", es.port or 9200)
    es_down = settings.model_copy(update={"es_url": f"http://{proxy.address}"})
    es_archiver = bootstrap.archiver(es_down)
    lookup = es_archiver.index.get_many

    def lookup_then_cut(ids: Any, fields: Any) -> Any:
        found = lookup(ids, fields)
        proxy.cut()  # the batch is stored next, then indexing finds Elasticsearch gone
        return found

    if when == "from the start":
        proxy.cut()
    else:
        es_archiver.index.get_many = lookup_then_cut  # type: ignore[method-assign]
    journal = account(dovecot, user, mode="journal")
    try:
        poller = make_poller(es_down, es_archiver, batch_size=2)

        summary = poller.poll(journal)

        assert summary.error is not None and "elasticsearch unavailable" in summary.error
        assert summary.folders[0].removed == 0
        assert server_state(dovecot, user, "INBOX") == before  # every message, flags and all
        store = S3JsonStore(bootstrap.raw_store(settings))
        assert store.get_json(checkpoint_key(user, "INBOX")) is None
        stored = [archiver.store.exists(hashlib.sha256(raw).hexdigest()) for raw in mails]
        assert stored == [when == "after storing"] * 2 + [False] * 2

        es_archiver.index.get_many = lookup  # type: ignore[method-assign]
        proxy.restore()
        summary = poller.poll(journal)
    finally:
        es_archiver.close()
        proxy.close()

    assert summary.ok and summary.folders[0].removed == 4
    assert server_state(dovecot, user, "INBOX") == {}
    for raw in mails:
        assert_archived(archiver, raw)


# -- servers without UIDPLUS: only UID EXPUNGE and UID MOVE remove exactly the UIDs given ------


@pytest.fixture(scope="module")
def no_uidplus() -> Iterator[Dovecot]:
    with running_dovecot(without=["UIDPLUS"]) as server:
        yield server


def someone_elses_deletion(dovecot: Dovecot, user: str, raw: bytes) -> int:
    """Mail another client flagged \\Deleted and has not expunged: a plain EXPUNGE takes it."""
    return append(dovecot, user, "INBOX", raw, flags="\\Deleted")


def test_without_uidplus_journal_mode_refuses_to_delete_and_archives_nothing(
    no_uidplus: Dovecot, archiver: Archiver, settings: Settings
) -> None:
    user = new_user()
    mails = append_all(no_uidplus, user, f"{user}-no-uidplus", 3)
    theirs = message(f"{user}-theirs", 0)
    someone_elses_deletion(no_uidplus, user, theirs)
    before = server_state(no_uidplus, user, "INBOX")

    summary = make_poller(settings, archiver).poll(account(no_uidplus, user, mode="journal"))

    # a configuration a person must change (copy mode, or a journal_folder): not retried
    assert summary.error is not None and summary.reconnects == 0 and summary.folders == []
    assert f"IMAP account {user!r}: journal mode needs UIDPLUS (UID EXPUNGE)" in summary.error
    assert server_state(no_uidplus, user, "INBOX") == before
    for raw in [*mails, theirs]:
        assert not archiver.store.exists(hashlib.sha256(raw).hexdigest())


def test_without_uidplus_journal_mode_moves_exactly_the_archived_messages(
    no_uidplus: Dovecot, archiver: Archiver, settings: Settings
) -> None:
    user = new_user()
    mails = append_all(no_uidplus, user, f"{user}-move-only", 2)
    # not archived (too large), so it must stay, \\Deleted flag and all
    large = too_large(f"{user}-large")
    large_uid = someone_elses_deletion(no_uidplus, user, large)

    summary = strict_poller(settings, archiver).poll(
        account(no_uidplus, user, mode="journal", journal_folder="已归档")
    )

    assert summary.error is None and by_folder(summary) == {"INBOX": (2, 0, 1)}
    assert summary.folders[0].removed == 2
    assert server_state(no_uidplus, user, "INBOX") == {large_uid: ("\\Deleted", large)}
    moved = server_state(no_uidplus, user, "已归档")
    assert sorted(raw for _, raw in moved.values()) == sorted(mails)
    for raw in mails:
        assert_archived(archiver, raw)


def test_without_uidplus_or_move_journal_mode_copies_nothing_to_the_journal_folder(
    archiver: Archiver, settings: Settings
) -> None:
    user = new_user()
    with running_dovecot(without=["UIDPLUS", "MOVE"]) as poor:
        raw = message(f"{user}-no-move", 0)
        append(poor, user, "INBOX", raw)
        before = server_state(poor, user, "INBOX")
        journal = account(poor, user, mode="journal", journal_folder="已归档")

        summary = make_poller(settings, archiver).poll(journal)

        assert summary.error is not None and summary.folders == []
        assert "journal mode needs UIDPLUS (UID EXPUNGE) or MOVE" in summary.error
        assert server_state(poor, user, "INBOX") == before
        with poor.client(user) as imap:  # not even created: COPY would repeat every poll
            assert imap.list()[1] == [b'(\\HasNoChildren) "." INBOX']
    assert not archiver.store.exists(hashlib.sha256(raw).hexdigest())


# -- failures ----------------------------------------------------------------------------------


def test_a_message_over_the_size_limit_fails_is_retried_and_archived_once_allowed(
    dovecot: Dovecot, user: str, archiver: Archiver, settings: Settings
) -> None:
    small = message(f"{user}-small", 0)
    large = too_large(f"{user}-large")
    small_uid, large_uid = (append(dovecot, user, "INBOX", raw) for raw in (small, large))
    strict = strict_poller(settings, archiver)
    checkpoints = S3JsonStore(bootstrap.raw_store(settings))

    def retries() -> dict[str, int]:
        checkpoint = checkpoints.get_json(checkpoint_key(user, "INBOX"))
        assert checkpoint is not None
        return dict(checkpoint["retry"])

    summary = strict.poll(account(dovecot, user))

    assert not summary.ok and by_folder(summary) == {"INBOX": (1, 0, 1)}
    [error] = summary.folders[0].errors
    assert error["message"] == f"INBOX/{large_uid}"
    assert f"exceeds the limit of {SIZE_LIMIT} bytes" in error["error"]
    assert_archived(archiver, small)
    assert not archiver.store.exists(hashlib.sha256(large).hexdigest())
    assert retries() == {str(large_uid): 1}

    # still too large: counted again, with what arrived since archived
    later = message(f"{user}-small", 2)
    append(dovecot, user, "INBOX", later)
    assert by_folder(strict.poll(account(dovecot, user))) == {"INBOX": (1, 0, 1)}
    assert retries() == {str(large_uid): 2}

    summary = make_poller(settings, archiver).poll(account(dovecot, user))

    assert summary.ok and by_folder(summary) == {"INBOX": (1, 0, 0)}
    assert_archived(archiver, large)
    assert [s.attributes["uid"] for s in imap_sources(archiver, large)] == [str(large_uid)]
    assert [s.attributes["uid"] for s in imap_sources(archiver, small)] == [str(small_uid)]
    assert retries() == {}


def test_a_lost_connection_is_retried_and_the_folder_completes(
    dovecot: Dovecot, user: str, archiver: Archiver, settings: Settings
) -> None:
    mails = [message(f"{user}-cut", i) for i in range(10)]
    for raw in mails:
        append(dovecot, user, "INBOX", raw)
    # the first connection dies in the middle of the body FETCH (after ~2 KB of server output)
    proxy = CuttingProxy((dovecot.host, dovecot.port), cut_after=2500)
    try:
        summary = make_poller(settings, archiver, batch_size=4).poll(
            account(dovecot, user, port=proxy.port)
        )
    finally:
        proxy.close()

    assert proxy.cuts == 1 and summary.reconnects == 1
    assert summary.ok and by_folder(summary) == {"INBOX": (10, 0, 0)}
    for raw in mails:
        assert_archived(archiver, raw)


def test_bad_credentials_are_a_clear_error_naming_the_account(
    dovecot: Dovecot, user: str, archiver: Archiver, settings: Settings
) -> None:
    wrong = account(dovecot, user, name="payroll-journal", password="not-the-password")

    with pytest.raises(ImapAuthError, match="payroll-journal") as raised, connect(wrong):
        pass
    assert f"authentication as {user!r} failed" in str(raised.value)

    summary = make_poller(settings, archiver).poll(wrong)
    assert summary.reconnects == 0 and summary.folders == []  # not retried
    assert summary.error is not None and "payroll-journal" in summary.error


def test_certificates_are_verified_by_default(dovecot: Dovecot, user: str) -> None:
    append(dovecot, user, "INBOX", message(user, 0))
    implicit = account(dovecot, user, tls="implicit", port=dovecot.tls_port)
    with connect(implicit) as box:  # trusts the test CA: works
        assert box.folders() == ["INBOX"]

    untrusted = account(dovecot, user, tls="implicit", port=dovecot.tls_port, ca_file=None)
    with pytest.raises(Exception, match="certificate") as raised, connect(untrusted):
        pass
    assert type(raised.value).__name__ == "ImapError"  # not retried: a wrong cert stays wrong

    with connect(untrusted.model_copy(update={"verify": False})) as box:
        assert box.folders() == ["INBOX"]


# -- the command and a crash -------------------------------------------------------------------


def run_cli(args: list[str], accounts: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAILVAULT_IMAP_ACCOUNTS": str(accounts), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_the_poll_command_prints_a_summary_per_folder(
    dovecot: Dovecot, user: str, archiver: Archiver, tmp_path: Path
) -> None:
    create(dovecot, user, "归档")
    append(dovecot, user, "归档", message(user, 0))
    append(dovecot, user, "INBOX", message(user, 1))
    good = account(dovecot, user, name=f"{user}-ok")
    bad = account(dovecot, user, name=f"{user}-bad", password="wrong")
    accounts = tmp_path / "accounts.json"
    accounts.write_text(
        json.dumps({"accounts": [json.loads(good.model_dump_json()) | {"password": PASSWORD}]})
    )

    result = run_cli(["imap", "poll", "--account", good.name], accounts)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"account {good.name}",
        "  INBOX: new 1, duplicates 0, failed 0",
        "  归档: new 1, duplicates 0, failed 0",
    ]

    accounts.write_text(
        json.dumps({"accounts": [json.loads(bad.model_dump_json()) | {"password": "wrong"}]})
    )
    result = run_cli(["imap", "poll", "--json"], accounts)
    assert result.returncode == 1
    [summary] = json.loads(result.stdout)
    assert summary["account"] == bad.name and "authentication" in summary["error"]


CRASHING_POLL = """
import sys, threading
from archiver import bootstrap
from archiver.adapters.s3 import S3RawStore
from archiver.imap.accounts import ImapAccount
from archiver.settings import get_settings

account = ImapAccount.model_validate_json(sys.argv[1])
batch = int(sys.argv[2])
put, lock, count = S3RawStore.put, threading.Lock(), [0]

def put_then_hang(self, raw, source=None, **retention):
    result = put(self, raw, source, **retention)
    with lock:
        count[0] += 1
        hang = count[0] == batch + 2
    if hang:  # batch 1 is checkpointed; batch 2 is stored in part and not indexed
        print("hanging", flush=True)
        threading.Event().wait()
    return result

S3RawStore.put = put_then_hang
poller = bootstrap.imap_poller(get_settings(), bootstrap.archiver(get_settings()), batch_size=batch)
poller.poll(account)
print("finished", flush=True)
"""


def test_a_poller_killed_mid_folder_resumes_without_gaps_or_duplicates(
    dovecot: Dovecot, user: str, archiver: Archiver, settings: Settings
) -> None:
    batch = 3
    mails = [message(f"{user}-crash", i) for i in range(11)]
    uids = [append(dovecot, user, "INBOX", raw) for raw in mails]
    victim = account(dovecot, user)
    payload = json.loads(victim.model_dump_json()) | {"password": PASSWORD}
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_POLL, json.dumps(payload), str(batch)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "hanging"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    store = S3JsonStore(bootstrap.raw_store(settings))
    checkpoint = store.get_json(checkpoint_key(user, "INBOX"))
    assert checkpoint is not None and checkpoint["last_uid"] == uids[batch - 1]

    summary = make_poller(settings, archiver, batch_size=batch).poll(victim)

    # everything after the checkpoint is archived once: nothing skipped, nothing twice
    assert summary.ok and by_folder(summary) == {"INBOX": (len(mails) - batch, 0, 0)}
    for uid, raw in zip(uids, mails, strict=True):
        assert_archived(archiver, raw)
        assert [s.attributes["uid"] for s in imap_sources(archiver, raw)] == [str(uid)]
    final = store.get_json(checkpoint_key(user, "INBOX"))
    assert final is not None and final["last_uid"] == uids[-1] and final["retry"] == {}


# -- the schedule ------------------------------------------------------------------------------


def test_beat_polls_each_account_at_its_interval_and_skips_overlapping_polls(
    tmp_path: Path, settings: Settings
) -> None:
    import redis

    from ingest.tasks import IMAP_POLL, celery_app, imap_schedule

    imap_poll = celery_app().tasks[IMAP_POLL]

    accounts = tmp_path / "accounts.toml"
    accounts.write_text(
        '[[accounts]]\nname = "journal"\nhost = "h"\nusername = "u"\npassword = "p"\n'
        "poll_interval = 120\n"
    )
    schedule = imap_schedule(accounts)
    assert schedule == {
        "imap-poll-journal": {
            "task": "mailvault.imap_poll",
            "schedule": 120.0,
            "args": ("journal",),
            "options": {"expires": 120.0},
        }
    }
    accounts.write_text("not toml [")
    assert imap_schedule(accounts) == {}  # logged; the worker still starts

    name = f"busy-{uuid.uuid4().hex[:8]}"
    lock = redis.Redis.from_url(settings.redis_url).lock(f"mailvault:imap-poll:{name}", timeout=60)
    assert lock.acquire(blocking=False)
    try:
        assert imap_poll.apply(args=(name,)).get(timeout=30) == []  # a poll is running: skip
    finally:
        lock.release()
