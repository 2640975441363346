"""Pipeline tasks that give up are recorded in S3, listed by `mailvault failures` and re-sent by
`mailvault failures --retry`: a real worker process whose Elasticsearch is cut off (a TCP proxy in
front of the shared cluster) exhausts its retries filing a spool segment, then the retry files
it."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from archiver import bootstrap
from archiver.models import TaskFailure
from archiver.pipeline.archiver import Archiver
from archiver.pipeline.failures import FailureLog
from archiver.settings import Settings
from tests.support.processes import Process, mailvault, mailvault_env, run_cli, wait_until
from tests.support.smtp_sink import smtp_delivery, spool, spooled
from tests.support.tcpproxy import proxy

pytestmark = pytest.mark.services


@contextmanager
def pipeline_worker(
    queue: str, es_url: str, logs: Path, *, retries: int, backoff: int
) -> Iterator[Process]:
    """A real `mailvault worker` on a queue and an Elasticsearch URL of its own."""
    env = mailvault_env(
        celery_queue=queue,
        es_url=es_url,
        pipeline_max_retries=str(retries),
        pipeline_retry_backoff=str(backoff),
    )
    with mailvault("worker", ["worker", "--concurrency", "1"], env, logs) as worker:
        yield worker


def failures_listed(env: dict[str, str], *options: str) -> list[TaskFailure]:
    out = run_cli(env, "failures", "--json", *options)
    return [TaskFailure.model_validate(json.loads(line)) for line in out.splitlines()]


def test_exhausted_retries_are_recorded_and_retry_files_the_segment(
    archiver: Archiver, settings: Settings, tmp_path: Path
) -> None:
    from ingest.tasks import enqueue_archive_spool

    token = f"fail{uuid.uuid4().hex[:10]}"
    raw, source = smtp_delivery(token, "audit@example.com")
    segment = spool(archiver, (raw, source))
    sha256 = hashlib.sha256(raw).hexdigest()
    queue = f"{settings.celery_queue}-failures"
    cli_env = mailvault_env(celery_queue=queue)
    log = FailureLog(bootstrap.json_store(settings))
    es = urlsplit(settings.es_url)

    with proxy(es.hostname or "", es.port or 9200) as es_proxy:
        es_proxy.cut()
        es_url = f"http://{es_proxy.address}"
        with pipeline_worker(queue, es_url, tmp_path, retries=2, backoff=1) as worker:
            enqueue_archive_spool([segment], queue=queue)
            wait_until(
                lambda: any(f.segment == segment for f in log.all()),
                120,
                worker,
                what="the failure recorded after the last retry",
            )
            (failure,) = [f for f in failures_listed(cli_env) if f.segment == segment]
            assert failure.task == "mailvault.archive_spool"
            assert failure.attempts == 3  # the first run and two retries
            assert "elasticsearch unavailable" in failure.error
            assert archiver.index.get(sha256) is None

            es_proxy.restore()
            resent = failures_listed(cli_env, "--retry")

            assert segment in [f.segment for f in resent]
            wait_until(
                lambda: archiver.index.get(sha256) is not None,
                120,
                worker,
                what="the re-sent segment filed and indexed",
            )
            wait_until(
                lambda: sha256 not in spooled(archiver),
                30,
                worker,
                what="the filed segment dropped",
            )

    doc = archiver.index.get(sha256)
    assert doc is not None and doc["envelope_to"] == ["audit@example.com"]
    assert archiver.store.get(sha256) == raw
    assert segment not in [f.segment for f in failures_listed(cli_env)]
    assert segment not in [f.segment for f in log.all()]


def test_a_permanent_error_is_recorded_at_once_with_its_cause_not_retried(
    archiver: Archiver, settings: Settings, tmp_path: Path
) -> None:
    from ingest.tasks import enqueue_archive

    raw, source = smtp_delivery(f"perm{uuid.uuid4().hex[:10]}", "audit@example.com")
    sha256, _ = archiver.store.put(raw, source)
    queue = f"{settings.celery_queue}-permanent"
    log = FailureLog(bootstrap.json_store(settings))
    # a configuration error: Elasticsearch answers 400 to every request under a wrong path
    es_url = f"{settings.es_url}/no-such-prefix"
    with pipeline_worker(queue, es_url, tmp_path, retries=12, backoff=30) as worker:
        enqueue_archive(sha256, queue=queue)
        wait_until(
            lambda: any(f.sha256 == sha256 for f in log.all()),
            60,
            worker,
            what="the permanent failure recorded without retries",
        )
        assert "Retry in" not in worker.log_text()

    (failure,) = [f for f in failures_listed(mailvault_env()) if f.sha256 == sha256]
    assert failure.task == "mailvault.archive_raw"
    assert failure.attempts == 1
    assert failure.error.startswith("BackendFailed: elasticsearch failed (permanent, not retried)")
    assert "no handler found" in failure.error
