"""The Celery pipeline task, run by a real worker over the real Redis broker."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker

from archiver.models import Envelope, Source, SpoolSegment
from archiver.pipeline.archiver import Archiver
from ingest.tasks import ARCHIVE_RAW, celery_app

pytestmark = pytest.mark.services


def pipeline_task(name: str) -> Any:
    return celery_app().tasks[name]


@pytest.fixture(scope="module")
def worker(archiver: Archiver) -> Iterator[None]:
    with start_worker(celery_app(), pool="solo", perform_ping_check=False, loglevel="WARNING"):
        yield


def test_archive_raw_indexes_a_stored_message_with_its_envelope(
    archiver: Archiver, worker: None
) -> None:
    archive_raw = pipeline_task(ARCHIVE_RAW)

    raw = (
        b"Message-ID: <celery-task@example.com>\r\nFrom: boss@example.com\r\n"
        b"To: team@example.com\r\nSubject: =?gbk?B?suLK1A==?=\r\n\r\nhidden bcc copy\r\n"
    )
    source = Source(
        kind="smtp",
        detail="queue-1",
        received_at=datetime.now(UTC),
        envelope=Envelope(
            mail_from="boss@example.com", rcpt_to=["team@example.com", "auditor@example.com"]
        ),
    )
    sha256, created = archiver.store.put(raw, source)
    assert created and sha256 == hashlib.sha256(raw).hexdigest()

    result = archive_raw.delay(sha256).get(timeout=60)

    assert result["status"] == "imported"
    doc = archiver.index.get(sha256)
    assert doc is not None
    assert doc["subject"] == "测试"
    assert doc["envelope_to"] == ["auditor@example.com", "team@example.com"]
    assert "auditor@example.com" in doc["participants"]  # the BCC recipient is findable
    assert archive_raw.delay(sha256).get(timeout=60)["status"] == "duplicate"


def test_archive_raw_of_a_missing_object_fails_visibly(worker: None) -> None:
    archive_raw = pipeline_task(ARCHIVE_RAW)

    with pytest.raises(Exception, match="no archived message with id"):
        archive_raw.delay("f" * 64).get(timeout=60)


def test_filing_tasks_carry_segment_bytes_through_json() -> None:
    from ingest.tasks import segments_of, task_args

    carrying = SpoolSegment(key="spool/a.mvs", version="v1", data=b"\x00\xffbytes\r\n")
    plain = SpoolSegment(key="spool/b.mvs", version="v2")

    back = segments_of(json.loads(json.dumps(task_args([carrying, plain]))))

    assert [(s.key, s.version, s.data) for s in back] == [
        ("spool/a.mvs", "v1", b"\x00\xffbytes\r\n"),
        ("spool/b.mvs", "v2", None),
    ]
    assert "data" not in back[0].model_dump()  # never part of a stored record
