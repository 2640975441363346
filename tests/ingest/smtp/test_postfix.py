"""A real Postfix (Debian's package, a private instance) journaling to the sink on loopback, and
real outages of S3, Elasticsearch and Redis (TCP proxies in front of the shared services, cut and
restored)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from archiver import bootstrap
from archiver.models import SpoolSegment
from archiver.pipeline.archiver import Archiver
from archiver.pipeline.reconcile import reconcile
from archiver.settings import Settings
from tests.support.postfix import PrivatePostfix
from tests.support.smtp_sink import Witness, running_sink, spooled, witness
from tests.support.tcpproxy import proxy

pytestmark = pytest.mark.services


ARCHIVE = "journal@archive.test"


def wait_until(
    condition: Callable[[], object], postfix: PrivatePostfix, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met in time; Postfix log:\n{postfix.log_text()}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def queue(settings: Settings) -> str:
    """This session's own Celery queue: other sessions' workers share the Redis broker."""
    return f"{settings.s3_bucket}-smtp"


def postfix_for(base: Path, sink_port: int, witness_port: int) -> PrivatePostfix:
    """Postfix journals every message to the sink: always_bcc adds the archive address, and the
    recipients' domain has the sink as next hop too, so Postfix hands the sink ONE transaction
    with every envelope recipient (BCC included). A witness gets its own copy of the same queue
    file (sender_bcc_maps), to compare bytes with."""
    sink = f"smtp:[127.0.0.1]:{sink_port}"
    return PrivatePostfix(
        base,
        {
            "example.com": sink,
            "archive.test": sink,
            "witness.test": f"smtp:[127.0.0.1]:{witness_port}",
        },
        always_bcc=ARCHIVE,
        sender_bcc_maps="static:copy@witness.test",
    )


@pytest.fixture
def mail_system() -> Iterator[Callable[[int, int], PrivatePostfix]]:
    """Start a private Postfix; stopped and removed after the test. Not under pytest's tmp_path:
    Postfix's daemons run as user postfix, which cannot enter pytest's private directories."""
    started: list[PrivatePostfix] = []

    def start(sink_port: int, witness_port: int) -> PrivatePostfix:
        base = Path(tempfile.mkdtemp(prefix="mailvault-postfix-"))
        postfix = postfix_for(base, sink_port, witness_port)
        postfix.start()
        started.append(postfix)
        return postfix

    yield start
    for postfix in started:
        postfix.stop()
        shutil.rmtree(postfix.base, ignore_errors=True)


def swaks(postfix: PrivatePostfix, token: str, *, bcc: str = "dave@example.com") -> None:
    subprocess.run(
        [
            "swaks", "--server", f"127.0.0.1:{postfix.port}", "--silent", "2",
            "--from", "alice@sender.test",
            "--to", f"bob@example.com,carol@example.com,{bcc}",
            "--header", "To: Bob <bob@example.com>",
            "--header", "Cc: carol@example.com",
            "--header", f"Subject: quarterly {token}",
            "--body", f"archive token {token}\n",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip


def count(archiver: Archiver, token: str) -> int:
    archiver.index.refresh()
    body = {"query": {"match": {"body_terms": token}}, "size": 0, "track_total_hits": True}
    return int(archiver.index.search(body)["hits"]["total"]["value"])


def only_copy(copies: Witness, token: str) -> bytes:
    found = [m.data for m in copies.messages if token.encode() in m.data]
    assert len(found) == 1
    return found[0]


def test_postfix_journals_byte_exact_with_every_recipient_including_bcc(
    archiver: Archiver,
    settings: Settings,
    sink_settings: Settings,
    mail_system: Callable[[int, int], PrivatePostfix],
) -> None:
    sent: list[SpoolSegment] = []
    token = f"pf{uuid.uuid4().hex[:10]}"
    with (
        witness() as copies,
        running_sink(archiver, settings, sent.extend) as sink,
    ):
        postfix = mail_system(sink.smtp_port, copies.port)
        swaks(postfix, token)
        copies.wait_for(1)
        delivered = only_copy(copies, token)
        sha256 = hashlib.sha256(delivered).hexdigest()
        wait_until(lambda: sent, postfix)  # handed to the pipeline after the 250...
        ((segment, entry),) = spooled(archiver)[sha256]  # ...so durable before it
        assert [s.key for s in sent] == [segment.key]
        assert entry.raw == delivered
    # The Celery fast path is covered by tests/ingest/test_tasks.py; its worker reads the shared
    # S3, so here the reconciler files the spool (the same file_spooled code path).
    assert reconcile(archiver).failed == 0

    assert archiver.store.get(sha256) == delivered
    (record,) = archiver.store.records(sha256)
    envelope = record.source.envelope
    assert envelope is not None
    assert envelope.mail_from == "alice@sender.test"
    assert sorted(envelope.rcpt_to) == sorted(
        ["bob@example.com", "carol@example.com", "dave@example.com", ARCHIVE]
    )
    assert envelope.helo == "mta.journal-test.example" and envelope.client_address == "127.0.0.1"
    doc = archiver.index.get(sha256)
    assert doc is not None and "dave@example.com" in doc["envelope_to"]
    assert "dave@example.com" not in [a["address"] for a in doc["to"] + doc["cc"]]
    assert sha256 not in spooled(archiver)
    assert count(archiver, token) == 1


def test_s3_down_postfix_keeps_it_queued_then_retries_and_it_is_archived_once(
    archiver: Archiver,
    settings: Settings,
    sink_settings: Settings,
    tmp_path: Path,
    mail_system: Callable[[int, int], PrivatePostfix],
) -> None:
    token = f"s3{uuid.uuid4().hex[:10]}"
    host, port = sink_settings.s3_endpoint.split(":")
    with proxy(host, int(port)) as s3, witness() as copies:
        cut_off = bootstrap.archiver(sink_settings.model_copy(update={"s3_endpoint": s3.address}))
        with running_sink(cut_off, settings, lambda _: None) as sink:
            postfix = mail_system(sink.smtp_port, copies.port)
            s3.cut()
            swaks(postfix, token)
            wait_until(lambda: "451 4.3.0" in postfix.log_text(), postfix)
            assert postfix.queued()  # Postfix still holds it
            sha256 = hashlib.sha256(only_copy(copies, token)).hexdigest()
            assert sha256 not in spooled(archiver)

            s3.restore()
            postfix.flush()
            wait_until(lambda: not postfix.queued(), postfix)
        cut_off.close()

    assert len(spooled(archiver)[sha256]) == 1  # the retry was accepted, once
    summary = reconcile(archiver)
    assert summary.failed == 0
    assert len(archiver.store.records(sha256)) == 1
    assert count(archiver, token) == 1
    doc = archiver.index.get(sha256)
    assert doc is not None and len(doc["sources"]) == 1


def test_es_and_redis_down_mail_is_accepted_and_reconciled_exactly_once(
    archiver: Archiver,
    settings: Settings,
    sink_settings: Settings,
    queue: str,
    mail_system: Callable[[int, int], PrivatePostfix],
) -> None:
    from ingest.tasks import enqueue_archive_spool

    token = f"es{uuid.uuid4().hex[:10]}"
    total = 12
    es_url, redis_url = urlsplit(settings.es_url), urlsplit(settings.redis_url)
    with (
        proxy(es_url.hostname or "", es_url.port or 9200) as es,
        proxy(redis_url.hostname or "", redis_url.port or 6379) as redis,
        witness() as copies,
    ):
        behind = sink_settings.model_copy(update={"es_url": f"http://{es.address}"})
        cut_off = bootstrap.archiver(behind)
        enqueue = partial(
            enqueue_archive_spool,
            queue=f"{queue}-unserved",
            broker_url=f"redis://{redis.address}/0",
        )
        with running_sink(cut_off, settings, enqueue) as sink:
            postfix = mail_system(sink.smtp_port, copies.port)
            es.cut()
            redis.cut()
            for i in range(total):
                swaks(postfix, f"{token} {token}n{i}")
            copies.wait_for(total)
            wait_until(lambda: not postfix.queued(), postfix)  # every message accepted by the sink
        shas = {
            hashlib.sha256(m.data).hexdigest() for m in copies.messages if token.encode() in m.data
        }
        assert len(shas) == total
        assert shas <= set(spooled(archiver))  # nothing filed or queued: only the spool has them

        es.restore()
        redis.restore()
        summary = reconcile(cut_off)
        again = reconcile(cut_off)
        cut_off.close()

    assert summary.failed == 0 and summary.indexed == total
    assert again.pending == 0 and again.segments == 0
    assert count(archiver, token) == total
    for sha256 in shas:
        doc = archiver.index.get(sha256)
        assert doc is not None and len(doc["sources"]) == 1
