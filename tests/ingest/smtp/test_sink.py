"""The journaling SMTP sink against the real S3 and Elasticsearch: durability before 250,
envelopes, limits, allow-list, STARTTLS, journal reports."""

from __future__ import annotations

import hashlib
import smtplib
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from archiver.models import SpoolSegment
from archiver.pipeline.archiver import Archiver
from archiver.pipeline.reconcile import reconcile
from archiver.settings import Settings
from tests.support.journal_report import INNER, journal_report
from tests.support.smtp_sink import running_sink, spooled

pytestmark = pytest.mark.services


def message(token: str, size: int = 0) -> bytes:
    body = (f"archive token {token}\r\n" + "x" * 70 + "\r\n") * max(1, size // 80)
    return (
        f"From: boss@example.com\r\nTo: team@example.com\r\nSubject: {token}\r\n"
        f"Message-ID: <{token}@example.com>\r\n\r\n{body}"
    ).encode()


def wait_until(condition: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.1)


@pytest.fixture
def sent() -> list[SpoolSegment]:
    return []


@pytest.fixture
def sink(archiver: Archiver, settings: Settings, sent: list[SpoolSegment]) -> Iterator[Settings]:
    with running_sink(archiver, settings, sent.extend) as sink_settings:
        yield sink_settings


def deliver(sink: Settings, mail_from: str, rcpt_to: list[str], raw: bytes, **options: Any) -> None:
    """Send like an MTA: a 4xx (the archive could not store it) is retried. The shared SeaweedFS
    sometimes answers 500 right after a bucket is created; the sink must then say 451."""
    for _ in range(10):
        with client(sink) as smtp:
            try:
                assert smtp.sendmail(mail_from, rcpt_to, raw, **options) == {}
                return
            except smtplib.SMTPDataError as exc:
                if exc.smtp_code != 451:
                    raise
        time.sleep(0.5)
    raise AssertionError("the sink kept answering 451")


def client(sink: Settings) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", sink.smtp_port, local_hostname="mta.example.net", timeout=30)


def test_250_means_spooled_with_its_envelope_then_filed_and_indexed(
    archiver: Archiver, sink: Settings, sent: list[SpoolSegment]
) -> None:
    raw = message("durable-250")
    sha256 = hashlib.sha256(raw).hexdigest()

    deliver(sink, "Boss@Example.com", ["team@example.com", "hidden@example.com"], raw)

    # durable before the 250 came back (no waiting here): bytes and envelope in a spool segment
    ((segment, entry),) = spooled(archiver)[sha256]
    assert entry.raw == raw
    envelope = entry.source.envelope
    assert envelope is not None and entry.source.kind == "smtp"
    assert envelope.mail_from == "Boss@Example.com"
    assert envelope.rcpt_to == ["team@example.com", "hidden@example.com"]
    assert (envelope.client_address, envelope.helo, envelope.tls) == (
        "127.0.0.1",
        "mta.example.net",
        False,
    )
    wait_until(lambda: segment.key in {s.key for s in sent})  # the filing task was sent
    assert not archiver.store.exists(sha256)  # filed by the worker, not by the sink

    summary = reconcile(archiver)

    assert summary.failed == 0 and summary.indexed >= 1
    assert archiver.store.get(sha256) == raw
    (record,) = archiver.store.records(sha256)
    assert record.source == entry.source
    doc = archiver.index.get(sha256)
    assert doc is not None
    assert doc["envelope_to"] == ["hidden@example.com", "team@example.com"]
    assert sha256 not in spooled(archiver)  # filed segments are dropped


def test_same_bytes_with_another_envelope_keeps_both_envelopes(
    archiver: Archiver, sink: Settings
) -> None:
    raw = message("two-envelopes")
    sha256 = hashlib.sha256(raw).hexdigest()

    deliver(sink, "a@example.com", ["first@example.com"], raw)
    deliver(sink, "a@example.com", ["second@example.com"], raw)
    reconcile(archiver)

    assert len(archiver.store.records(sha256)) == 2
    doc = archiver.index.get(sha256)
    assert doc is not None
    assert doc["envelope_to"] == ["first@example.com", "second@example.com"]
    assert len(doc["sources"]) == 2


def test_announces_size_8bitmime_smtputf8_pipelining(sink: Settings) -> None:
    with client(sink) as smtp:
        smtp.ehlo()
        assert smtp.esmtp_features["size"] == str(50 * 1024 * 1024)
        for feature in ("8bitmime", "smtputf8", "pipelining"):
            assert smtp.has_extn(feature), feature


def test_utf8_envelope_and_8bit_body_are_archived_byte_exact(
    archiver: Archiver, sink: Settings
) -> None:
    raw = "From: 张三 <zhang@例子.cn>\r\nSubject: 合同\r\n\r\n请审批。\r\n".encode()

    deliver(
        sink, "zhang@例子.cn", ["李四@例子.cn"], raw, mail_options=["SMTPUTF8", "BODY=8BITMIME"]
    )

    sha256 = hashlib.sha256(raw).hexdigest()
    ((_, entry),) = spooled(archiver)[sha256]
    assert entry.raw == raw
    assert entry.source.envelope is not None and entry.source.envelope.rcpt_to == ["李四@例子.cn"]
    reconcile(archiver)
    assert archiver.store.get(sha256) == raw


def test_oversized_message_gets_552_and_nothing_is_stored(
    archiver: Archiver, settings: Settings
) -> None:
    raw = message("too-big", size=20_000)
    with running_sink(archiver, settings, lambda _: None, max_message_bytes=10_000) as small:
        with client(small) as smtp:  # announced SIZE: refused at MAIL FROM
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                smtp.sendmail("a@example.com", ["b@example.com"], raw)
            assert refused.value.smtp_code == 552
        with client(small) as smtp:  # no SIZE parameter: refused after DATA
            smtp.ehlo()
            smtp.mail("a@example.com")
            smtp.rcpt("b@example.com")
            code, _ = smtp.data(raw)
            assert code == 552
    assert hashlib.sha256(raw).hexdigest() not in spooled(archiver)


def test_client_outside_the_allow_list_gets_550(archiver: Archiver, settings: Settings) -> None:
    with (
        running_sink(
            archiver, settings, lambda _: None, smtp_allowed_networks=["10.0.0.0/8"]
        ) as closed,
        client(closed) as smtp,
    ):
        smtp.ehlo()
        code, _ = smtp.mail("a@example.com")
        assert code == 550
        assert smtp.rcpt("b@example.com")[0] != 250


def test_too_many_recipients_get_452(archiver: Archiver, settings: Settings) -> None:
    with (
        running_sink(archiver, settings, lambda _: None, smtp_max_recipients=2) as few,
        client(few) as smtp,
    ):
        smtp.ehlo()
        smtp.mail("a@example.com")
        assert [smtp.rcpt(f"r{i}@example.com")[0] for i in range(3)] == [250, 250, 452]


JOURNALING_SERVER = "journal-sender@contoso.com"


@pytest.fixture
def journal_sink(
    archiver: Archiver, settings: Settings, sent: list[SpoolSegment]
) -> Iterator[Settings]:
    """A sink that believes the journal reports from JOURNALING_SERVER on loopback."""
    with running_sink(
        archiver,
        settings,
        sent.extend,
        smtp_journal_senders=[JOURNALING_SERVER.upper()],  # compared case-insensitively
        smtp_journal_networks=["127.0.0.0/8"],
    ) as trusting:
        yield trusting


def test_journal_report_is_unwrapped_and_both_are_kept(
    archiver: Archiver, journal_sink: Settings, sent: list[SpoolSegment]
) -> None:
    report = journal_report()

    deliver(journal_sink, JOURNALING_SERVER, ["journal@archive.example"], report)

    inner_sha, report_sha = hashlib.sha256(INNER).hexdigest(), hashlib.sha256(report).hexdigest()
    spool = spooled(archiver)
    assert spool[inner_sha][0][0] == spool[report_sha][0][0]  # one delivery, one segment
    wait_until(lambda: spool[inner_sha][0][0].key in {s.key for s in sent})
    reconcile(archiver)
    assert archiver.store.get(inner_sha) == INNER
    assert archiver.store.get(report_sha) == report
    inner_source = archiver.store.records(inner_sha)[0].source
    assert inner_source.envelope is not None
    assert inner_source.envelope.mail_from == "alice@contoso.com"
    assert "dave@contoso.com" in inner_source.envelope.rcpt_to  # the BCC recipient
    assert inner_source.attributes["journal_bcc"] == "dave@contoso.com"
    assert archiver.store.records(report_sha)[0].source.attributes == {"journal_inner": inner_sha}
    doc = archiver.index.get(inner_sha)
    assert doc is not None and doc["subject"] == "季度合同审批"
    assert "dave@contoso.com" in doc["envelope_to"]


def deliver_report(
    archiver: Archiver, settings: Settings, mail_from: str, overrides: dict[str, Any]
) -> tuple[bytes, bytes]:
    """A journal report (and the message it holds, no other test's) sent to a sink configured
    with overrides."""
    inner = INNER.replace(b"Alice", f"report {uuid.uuid4()}".encode())
    report = journal_report(inner=inner)
    with running_sink(archiver, settings, lambda _: None, **overrides) as sink:
        deliver(sink, mail_from, ["journal@archive.example"], report)
    return report, inner


@pytest.mark.parametrize(
    ("mail_from", "overrides"),
    [
        ("forger@evil.example", {}),  # nothing trusted: the default
        ("forger@evil.example", {"smtp_journal_senders": [JOURNALING_SERVER]}),
        (JOURNALING_SERVER, {"smtp_journal_senders": [JOURNALING_SERVER],
                             "smtp_journal_networks": ["10.0.0.0/8"]}),  # the wrong network
        (JOURNALING_SERVER, {"smtp_journal_senders": [JOURNALING_SERVER],
                             "smtp_unwrap_journal": False}),  # trusted, but unwrapping is off
    ],
)  # fmt: skip
def test_a_journal_report_is_kept_whole_unless_a_trusted_server_sent_it(
    archiver: Archiver, settings: Settings, mail_from: str, overrides: dict[str, Any]
) -> None:
    report, inner = deliver_report(archiver, settings, mail_from, overrides)

    ((_, entry),) = spooled(archiver)[hashlib.sha256(report).hexdigest()]
    assert entry.raw == report and entry.source.attributes == {}
    assert entry.source.envelope is not None and entry.source.envelope.mail_from == mail_from
    # no envelope record made from the report's claims
    assert hashlib.sha256(inner).hexdigest() not in spooled(archiver)


def test_a_journal_report_from_a_trusted_network_alone_is_unwrapped(
    archiver: Archiver, settings: Settings
) -> None:
    overrides = {"smtp_journal_networks": ["127.0.0.1/32"]}

    _, inner = deliver_report(archiver, settings, "anyone@contoso.com", overrides)

    ((_, entry),) = spooled(archiver)[hashlib.sha256(inner).hexdigest()]
    assert entry.source.envelope is not None
    assert entry.source.envelope.mail_from == "alice@contoso.com"


def test_auth_as_configured_is_required_and_checked(archiver: Archiver, settings: Settings) -> None:
    raw = message("authenticated")
    with running_sink(
        archiver,
        settings,
        lambda _: None,
        smtp_auth_user="journal",
        smtp_auth_password="pa55-word",
    ) as guarded:
        with client(guarded) as smtp:
            smtp.ehlo()
            assert smtp.mail("a@example.com")[0] == 530  # no AUTH yet
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                smtp.login("journal", "wrong")
            assert refused.value.smtp_code == 535
        assert hashlib.sha256(raw).hexdigest() not in spooled(archiver)
        for mechanism in ("PLAIN", "LOGIN"):
            with client(guarded) as smtp:
                smtp.ehlo()
                smtp.user, smtp.password = "journal", "pa55-word"
                assert smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"))[0] == 235
                assert smtp.sendmail("a@example.com", ["b@example.com"], raw) == {}
    assert len(spooled(archiver)[hashlib.sha256(raw).hexdigest()]) == 2


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=archive.test", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_starttls_required_before_mail_and_recorded(
    archiver: Archiver, settings: Settings, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    raw = message("over-tls")
    with (
        running_sink(
            archiver,
            settings,
            lambda _: None,
            smtp_tls_cert=cert,
            smtp_tls_key=key,
            smtp_require_tls=True,
        ) as tls_sink,
        client(tls_sink) as smtp,
    ):
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        assert smtp.mail("a@example.com")[0] == 530
        smtp.rset()
        smtp.starttls(context=ssl._create_unverified_context())
        smtp.ehlo()
        assert smtp.sendmail("a@example.com", ["b@example.com"], raw) == {}
    ((_, entry),) = spooled(archiver)[hashlib.sha256(raw).hexdigest()]
    assert entry.source.envelope is not None and entry.source.envelope.tls is True
