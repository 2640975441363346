"""The status figures against the real services: counts of an archive of its own, the SMTP lag,
the spool, queue and failures, and a probe whose backends are all down still answering."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from archiver import bootstrap
from archiver.models import Envelope, Source, TaskFailure
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.pipeline.failures import FailureLog
from archiver.settings import Settings
from bench.cleanup import throwaway_archive, throwaway_settings

pytestmark = pytest.mark.services

OUTLOOK_MSG = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 4
LAG = timedelta(seconds=4)


def mail(n: int) -> bytes:
    return (
        f"Message-ID: <status{n}@example.cn>\r\nFrom: a@example.cn\r\nTo: b@example.cn\r\n"
        f"Subject: 状态 {n}\r\nDate: Mon, 06 May 2024 09:00:00 +0800\r\n\r\n正文 {n}\r\n"
    ).encode()


def smtp(queue_id: str, received_at: datetime) -> Source:
    return Source(
        kind="smtp",
        detail=queue_id,
        received_at=received_at,
        envelope=Envelope(mail_from="a@example.cn", rcpt_to=["b@example.cn"]),
    )


@pytest.fixture(scope="module")
def own(settings: Settings, backends: None) -> Iterator[tuple[Settings, Archiver]]:
    own = throwaway_settings(settings, f"{settings.es_index}-status-{uuid.uuid4().hex[:6]}")
    own = own.model_copy(update={"celery_queue": f"mailvault-test-status-{uuid.uuid4().hex[:8]}"})
    with throwaway_archive(own) as archiver:
        accepted = datetime.now(UTC) - LAG
        year_ago = datetime.now(UTC) - timedelta(days=365)
        archiver.ingest_many(
            [
                *(Incoming(mail(n), smtp(f"Q{n}", accepted)) for n in range(3)),
                Incoming(OUTLOOK_MSG, smtp("Q9", accepted)),
                # an import's received_at is the mail's own date: no lag of a year
                Incoming(mail(7), Source(kind="import", detail="a.eml", received_at=year_ago)),
            ]
        )
        archiver.index.refresh()
        yield own, archiver


def test_the_figures_of_a_small_archive(own: tuple[Settings, Archiver]) -> None:
    status = bootstrap.status_probe(own[0]).collect()

    assert [(s.name, s.up) for s in status.services] == [
        ("elasticsearch", True),
        ("s3", True),
        ("redis", True),
    ]
    assert status.errors == {}
    assert status.messages == 5
    assert status.ingest is not None
    assert (status.ingest.last_5m, status.ingest.last_60m) == (5, 5)
    assert status.ingest.per_minute == 1.0
    assert status.ingest.by_source_60m == {"smtp": 4, "import": 1}
    assert status.lag is not None and status.lag.samples == 4
    assert status.lag.p50_seconds is not None and status.lag.p95_seconds is not None
    assert LAG.total_seconds() <= status.lag.p50_seconds <= status.lag.p95_seconds < 120
    assert status.failures.parse_failed == 1
    assert status.failures.extract_failed == 0
    assert status.failures.pipeline == 0
    assert (status.queues.tasks, status.queues.spool_segments) == (0, 0)
    assert status.storage.index_documents == 5
    assert status.storage.index_store_bytes and status.storage.index_store_bytes > 0
    assert status.storage.index_fs_available_bytes and status.storage.index_fs_total_bytes
    assert status.storage.index_fs_available_bytes <= status.storage.index_fs_total_bytes
    assert status.storage.broker_memory_bytes and status.storage.broker_memory_bytes > 0


def test_waiting_work_and_failures_are_counted(own: tuple[Settings, Archiver]) -> None:
    settings, archiver = own
    client = redis.Redis.from_url(settings.redis_url)
    queue = settings.celery_queue
    segment = archiver.store.write_spool(b"not filed yet")
    failures = FailureLog(bootstrap.json_store(settings))
    failure = TaskFailure(
        sha256="0" * 64, task="archive_raw", error="x", failed_at=datetime.now(UTC)
    )
    failures.record(failure)
    try:
        client.rpush(queue, "t1", "t2")
        client.rpush(f"{queue}\x06\x169", "t3")  # a priority's own list (kombu)

        status = bootstrap.status_probe(settings).collect()

        assert status.queues.tasks == 3
        assert status.queues.spool_segments == 1 and not status.queues.spool_more
        assert status.queues.spool_oldest_age_seconds is not None
        assert 0 <= status.queues.spool_oldest_age_seconds < 120
        assert status.failures.pipeline == 1
    finally:
        client.delete(queue, f"{queue}\x06\x169")
        archiver.store.drop_spool([segment])
        failures.clear(failure)
        client.close()


def test_local_disks_are_reported_and_a_missing_path_is_an_error_not_a_failure(
    own: tuple[Settings, Archiver],
) -> None:
    settings = own[0].model_copy(update={"status_disk_paths": ["/tmp", "/no/such/dir"]})

    status = bootstrap.status_probe(settings).collect()

    assert [d.path for d in status.storage.local] == ["/tmp"]
    assert 0 < status.storage.local[0].free_bytes <= status.storage.local[0].total_bytes
    assert set(status.errors) == {"disk:/no/such/dir"}


def test_with_every_backend_down_the_status_still_answers_quickly(settings: Settings) -> None:
    down = settings.model_copy(
        update={
            "es_url": "http://127.0.0.1:9",
            "s3_endpoint": "127.0.0.1:9",
            "redis_url": "redis://127.0.0.1:9/0",
        }
    )

    status = bootstrap.status_probe(down).collect()

    assert [s.up for s in status.services] == [False, False, False]
    assert all(s.detail for s in status.services)  # the reason
    assert status.messages is None and status.ingest is None and status.lag is None
    assert status.queues.tasks is None and status.failures.pipeline is None
    assert status.took_seconds < 20
