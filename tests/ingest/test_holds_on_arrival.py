"""Legal holds on mail that arrives after the hold, by every way mail comes in, against the real
services: a real Postfix journaling to the SMTP sink (the spool filed by the code the Celery task
runs), a real Dovecot polled over IMAP, and `mailvault import`'s file reader.

The hold is made first, the mail delivered after: each message is decided as it is indexed
(Archiver → RetentionService.prepare/settle), with no recompute in between. The archive's
default policy deletes mail a day after it was sent and the mail is from 2019, so no retention
locks it: what S3 refuses below is the legal hold flag alone, and once the hold is released (and
a recompute clears the flag) the same delete goes through.
"""

from __future__ import annotations

import email
import hashlib
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from minio.error import S3Error

from archiver import bootstrap
from archiver.adapters.s3 import raw_key
from archiver.errors import InvalidRetention
from archiver.holds.model import Hold, Matter
from archiver.holds.service import HoldService
from archiver.models import SpoolSegment
from archiver.pipeline.archiver import Archiver
from archiver.pipeline.reconcile import file_spooled
from archiver.retention.enforce import PENDING
from archiver.retention.recompute import recompute
from archiver.retention.service import RetentionService
from archiver.search.service import SearchService
from archiver.settings import Settings
from bench.cleanup import throwaway_archive, throwaway_settings
from ingest.files import run_import
from ingest.tasks import ARCHIVE_SPOOL
from tests.support.dovecot import Dovecot, account, new_user, running_dovecot, wait_for
from tests.support.postfix import PrivatePostfix
from tests.support.smtp_sink import running_sink, spooled

pytestmark = pytest.mark.services

SENT = "Mon, 03 Jun 2019 10:00:00 +0800"  # long past the default policy's one day
OTHER = "li.si@example.cn"  # a sender no hold names


@dataclass
class Archive:
    archiver: Archiver
    settings: Settings
    retention: RetentionService
    holds: HoldService
    search: SearchService


@pytest.fixture(scope="module")
def archive(settings: Settings) -> Iterator[Archive]:
    """An archive of its own: the searches below must know every message in the index."""
    own = throwaway_settings(settings, f"{settings.es_index}-arrival")
    with throwaway_archive(own) as archiver:
        retention = bootstrap.retention(own)
        retention.save_policy(
            {"name": "default", "period": {"amount": 1, "unit": "days"}, "action": "delete"},
            "officer",
        )
        yield Archive(
            archiver, own, retention, HoldService(retention), bootstrap.search_service(own)
        )


@dataclass(frozen=True)
class Case:
    """A matter with a hold on a custodian and a hold on a query, and the mail to deliver."""

    tag: str
    matter: Matter
    by_custodian: Hold
    by_query: Hold

    @property
    def custodian(self) -> str:
        # addresses are compared without case: the mail says it one way, the hold another
        return f"{self.tag.capitalize()}@Example.cn"

    def mail(self) -> dict[str, bytes]:
        """From the custodian; with 合同, from someone else; neither: from someone else."""
        return {
            "custodian": message(self.custodian, f"weekly notes {self.tag}", "see you monday"),
            "contract": message(OTHER, f"合同 {self.tag}", "请审批合同"),
            "other": message(OTHER, f"lunch {self.tag}", "午饭吃什么"),
        }


def message(sender: str, subject: str, body: str) -> bytes:
    return (
        f"Message-ID: <{uuid.uuid4().hex}@example.cn>\r\n"
        f"From: {sender}\r\n"
        "To: team@example.cn\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {SENT}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"{body} {subject}\r\n"
    ).encode()


def open_case(archive: Archive, path: str) -> Case:
    tag = f"{path}{uuid.uuid4().hex[:8]}"
    holds = archive.holds
    matter = holds.create_matter({"name": f"case {tag}", "case_number": tag}, "legal1")
    custodians = {"addresses": [f"{tag.upper()}@EXAMPLE.CN"]}
    by_custodian = holds.add_hold(
        matter.id, {"name": "custodian", "custodians": custodians}, "legal1"
    )
    # the tag keeps each case's query to its own mail (the archive is shared by the cases)
    by_query = holds.add_hold(matter.id, {"name": "contracts", "query": f"合同 {tag}"}, "legal1")
    return Case(tag, matter, by_custodian, by_query)


def found(archive: Archive, query: str) -> set[str]:
    return {hit.id for hit in archive.search.search(query, size=100).hits}


def delete_directly(archive: Archive, sha256: str) -> S3Error | None:
    """Delete every version of the raw message with minio itself, past the adapter; the first
    refusal, or None when S3 deleted them all."""
    store = bootstrap.raw_store(archive.settings)
    key = raw_key(sha256)
    for obj in list(store.client.list_objects(store.bucket, prefix=key, include_version=True)):
        try:
            store.client.remove_object(store.bucket, key, version_id=obj.version_id)
        except S3Error as exc:
            return exc
    return None


def holder(case: Case, name: str) -> Hold | None:
    """The hold that must cover the message delivered as `name` (see Case.mail)."""
    return {
        "custodian": case.by_custodian,
        "bcc": case.by_custodian,
        "contract": case.by_query,
    }.get(name)


def assert_held_on_arrival(archive: Archive, case: Case, ids: dict[str, str]) -> None:
    archive.archiver.index.refresh()
    for name, sha256 in ids.items():
        doc = archive.archiver.index.get(sha256)
        hold = holder(case, name)
        assert doc is not None, f"{name} not indexed"
        assert doc["retention_generation"] != PENDING, f"{name} left undecided at indexing"
        assert doc["holds"] == ([hold.id] if hold else []), name
        assert bool(doc.get("legal_hold")) is bool(hold), name
        state = archive.retention.storage.lock_state(sha256)
        assert state.legal_hold is bool(hold), name
        assert state.retain_until is None, name  # past its retention: only a hold can lock it
        if hold:
            refused = delete_directly(archive, sha256)
            assert refused is not None and refused.code == "AccessDenied", name
            assert archive.archiver.store.exists(sha256)

    held = {name: sha256 for name, sha256 in ids.items() if holder(case, name)}
    for hold in (case.by_custodian, case.by_query):
        covered = {ids[name] for name in ids if holder(case, name) == hold}
        assert found(archive, f"hold:{hold.id}") == covered, hold.name
    assert found(archive, "has:hold") & set(ids.values()) == set(held.values())
    assert ids["other"] in found(archive, f"-has:hold {case.tag}")
    counts = {c.hold: (c.held, c.matching) for c in archive.holds.counts(case.matter.id)}
    by_custodian = len({n for n in held if holder(case, n) == case.by_custodian})
    assert counts == {case.by_custodian.id: (by_custodian,) * 2, case.by_query.id: (1, 1)}


def assert_release_clears_the_flag(archive: Archive, case: Case, ids: dict[str, str]) -> None:
    with pytest.raises(InvalidRetention, match="a reason is required"):
        archive.holds.release_hold(case.by_custodian.id, "  ", "legal1")
    for hold in (case.by_custodian, case.by_query):
        released = archive.holds.release_hold(hold.id, f"{case.tag} settled", "legal1")
        assert (released.status, released.release_reason) == ("released", f"{case.tag} settled")

    report = recompute(archive.retention)

    assert report.status == "done" and report.failed == 0, report.errors
    assert report.holds_cleared >= 2
    archive.archiver.index.refresh()
    for name, sha256 in ids.items():
        doc = archive.archiver.index.get(sha256)
        assert doc is not None and doc["holds"] == [] and not doc.get("legal_hold"), name
        assert archive.retention.storage.lock_state(sha256).legal_hold is False, name
    assert found(archive, f"hold:{case.by_custodian.id}") == set()
    assert found(archive, f"hold:{case.by_query.id}") == set()
    assert not found(archive, "has:hold") & set(ids.values())
    # nothing locks them now: the delete S3 refused while they were held goes through
    for name, sha256 in ids.items():
        assert delete_directly(archive, sha256) is None, name
        assert not archive.archiver.store.exists(sha256)
    # the index keeps no message whose bytes are gone (the next case's recompute reads it)
    assert set(archive.archiver.index.delete_many(list(ids.values())).values()) == {None}


# -- SMTP: a real Postfix journals to the sink -------------------------------------------------


@contextmanager
def journaling_postfix(sink_port: int) -> Iterator[PrivatePostfix]:
    """Postfix relaying example.cn to the sink. Not under pytest's tmp_path: its daemons run as
    user postfix, which cannot enter pytest's private directories."""
    base = Path(tempfile.mkdtemp(prefix="mailvault-postfix-"))
    postfix = PrivatePostfix(base, {"example.cn": f"smtp:[127.0.0.1]:{sink_port}"})
    postfix.start()
    try:
        yield postfix
    finally:
        postfix.stop()
        shutil.rmtree(base, ignore_errors=True)


def header(raw: bytes, name: str) -> str:
    return str(email.message_from_bytes(raw)[name])


def swaks(postfix: PrivatePostfix, raw: bytes, sender: str, rcpt_to: list[str]) -> None:
    subprocess.run(
        [
            "swaks", "--server", f"127.0.0.1:{postfix.port}", "--silent", "2",
            "--from", sender, "--to", ",".join(rcpt_to), "--data", "-",
        ],
        input=raw,
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip


def deliver_by_smtp(
    archive: Archive, mail: dict[str, bytes], bcc: dict[str, str]
) -> dict[str, str]:
    """Through Postfix to the sink (each message to team@example.cn, and to bcc[name] in the
    envelope only); the spool filed by file_spooled, as the archive_spool task files it.
    Postfix adds its Received header, so the archived bytes are found in the spool."""
    handed: list[SpoolSegment] = []
    archiver = archive.archiver
    with (
        running_sink(archiver, archive.settings, handed.extend) as sink,
        journaling_postfix(sink.smtp_port) as postfix,
    ):
        for name, raw in mail.items():
            rcpt_to = ["team@example.cn", *([bcc[name]] if name in bcc else [])]
            swaks(postfix, raw, header(raw, "From"), rcpt_to)
        names = {header(raw, "Message-ID"): name for name, raw in mail.items()}

        def arrived() -> dict[str, str]:
            by_name = {
                names[header(entries[0][1].raw, "Message-ID")]: sha256
                for sha256, entries in spooled(archiver).items()
            }
            return by_name if len(by_name) == len(mail) else {}

        ids: dict[str, str] = wait_for(arrived, 120, 0.2, "the deliveries in the spool")
        segments = {seg.key: seg for sha256 in ids.values() for seg, _ in spooled(archiver)[sha256]}
        # the sink hands each segment to the filing task after its 250
        wait_for(lambda: set(segments) <= {s.key for s in handed}, 30, 0.1, "the filing tasks")
    summary = file_spooled(archiver, list(segments.values()), task=ARCHIVE_SPOOL, refresh=True)
    assert summary.failed == 0 and summary.indexed == len(mail), summary.errors
    assert not set(ids.values()) & set(spooled(archiver))  # filed: the segments are dropped
    return ids


def test_a_hold_covers_mail_arriving_later_by_smtp(archive: Archive) -> None:
    case = open_case(archive, "smtp")
    # a custodian who is only a Bcc: in the journal's envelope, in no header
    budget = message(OTHER, f"budget {case.tag}", "预算")
    mail = {**case.mail(), "bcc": budget}

    ids = deliver_by_smtp(archive, mail, {"bcc": case.custodian})

    for sha256 in ids.values():
        (record,) = archive.archiver.store.records(sha256)
        assert record.source.kind == "smtp" and record.source.envelope is not None
    bcc = archive.archiver.index.get(ids["bcc"])
    assert bcc is not None and case.custodian.lower() in bcc["envelope_to"]
    assert_held_on_arrival(archive, case, ids)
    assert_release_clears_the_flag(archive, case, ids)


# -- IMAP: polled from a real Dovecot ----------------------------------------------------------


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


def deliver_by_imap(archive: Archive, dovecot: Dovecot, mail: dict[str, bytes]) -> dict[str, str]:
    user = new_user()
    with dovecot.client(user) as imap:
        for raw in mail.values():
            typ, data = imap.append("INBOX", None, None, raw)
            assert typ == "OK", data
    imap_account = account(dovecot, user)
    quick = archive.settings.model_copy(update={"imap_backoff": 0.05, "imap_timeout": 10.0})
    summary = bootstrap.imap_poller(quick, archive.archiver).poll(imap_account)
    assert summary.error is None and summary.ok
    assert sum(f.new for f in summary.folders) == len(mail)
    # Dovecot serves what was appended (CRLF line ends), so the archive holds these bytes
    return {name: hashlib.sha256(raw).hexdigest() for name, raw in mail.items()}


def test_a_hold_covers_mail_arriving_later_by_imap(archive: Archive, dovecot: Dovecot) -> None:
    case = open_case(archive, "imap")

    ids = deliver_by_imap(archive, dovecot, case.mail())

    for sha256 in ids.values():
        (record,) = archive.archiver.store.records(sha256)
        assert record.source.kind == "imap"
    assert_held_on_arrival(archive, case, ids)
    assert_release_clears_the_flag(archive, case, ids)


# -- files: mailvault import -------------------------------------------------------------------


def deliver_by_import(archive: Archive, mail: dict[str, bytes], folder: Path) -> dict[str, str]:
    for name, raw in mail.items():
        (folder / f"{name}.eml").write_bytes(raw)
    summary = run_import(
        archive.archiver, [folder], batch_size=64, max_bytes=archive.settings.max_message_bytes
    )
    assert (summary.imported, summary.failed) == (len(mail), 0), summary.errors
    return {name: hashlib.sha256(raw).hexdigest() for name, raw in mail.items()}


def test_a_hold_covers_mail_arriving_later_by_import(archive: Archive, tmp_path: Path) -> None:
    case = open_case(archive, "import")

    ids = deliver_by_import(archive, case.mail(), tmp_path)

    for sha256 in ids.values():
        (record,) = archive.archiver.store.records(sha256)
        assert record.source.kind == "import"
    assert_held_on_arrival(archive, case, ids)
    assert_release_clears_the_flag(archive, case, ids)
