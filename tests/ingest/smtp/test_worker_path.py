"""The whole path as deployed: the sink hands its filing task to Redis, a real `mailvault worker`
process on this run's queue files and indexes the message, and it is searchable. Nobody calls
reconcile(): the task alone must get it there."""

from __future__ import annotations

import hashlib
import smtplib
import uuid
from functools import partial
from pathlib import Path

import pytest

from archiver.pipeline.archiver import Archiver
from archiver.search.service import SearchService
from archiver.settings import Settings
from archiver.text.tokenizer import get_tokenizer
from bench.cleanup import drop_queue
from tests.support.processes import mailvault, mailvault_env, wait_until
from tests.support.smtp_sink import running_sink, spooled

pytestmark = pytest.mark.services


def test_a_delivery_becomes_searchable_through_redis_and_a_worker_process(
    archiver: Archiver, sink_settings: Settings, tmp_path: Path
) -> None:
    from ingest.tasks import enqueue_archive_spool

    queue = f"{sink_settings.celery_queue}-smtp-path"
    token = f"workerpath{uuid.uuid4().hex[:12]}"
    raw = f"From: a@example.com\r\nSubject: {token}\r\n\r\n审批 {token}\r\n".encode()
    sha256 = hashlib.sha256(raw).hexdigest()
    search = SearchService(archiver.index, get_tokenizer())
    worker_env = mailvault_env(celery_queue=queue, s3_endpoint=sink_settings.s3_endpoint)
    try:
        with (
            mailvault("worker", ["worker", "--concurrency", "1"], worker_env, tmp_path) as worker,
            running_sink(
                archiver, sink_settings, partial(enqueue_archive_spool, queue=queue)
            ) as sink,
        ):
            with smtplib.SMTP("127.0.0.1", sink.smtp_port, timeout=30) as smtp:
                assert smtp.sendmail("a@example.com", ["audit@example.com"], raw) == {}

            wait_until(
                lambda: [h for h in search.search(f"subject:{token}").hits if h.id == sha256],
                120,
                worker,
                what="the delivery found by a search",
            )
            assert archiver.store.get(sha256) == raw
            wait_until(lambda: sha256 not in spooled(archiver), 30, worker, what="spool dropped")
    finally:
        drop_queue(sink_settings.model_copy(update={"celery_queue": queue}))
