"""`mailvault beat` schedules the reconciler and a real `mailvault worker` runs it: a message that
was spooled but never queued (Redis was down when it arrived) gets filed and indexed. The beat's
export upkeep deletes a package whose time is up and hands a build nobody holds to a worker."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archiver import bootstrap
from archiver.exports.model import ExportJob, ExportRequest
from archiver.exports.parts import package_prefix
from archiver.models import Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.settings import Settings
from bench.cleanup import drop_queue, throwaway_archive, throwaway_settings
from ingest.cli_exports import cli_principal
from ingest.tasks import EXPORT_MAINTAIN, create_app
from tests.support.processes import mailvault, mailvault_env, wait_until
from tests.support.smtp_sink import smtp_delivery, spool, spooled

pytestmark = pytest.mark.services


def test_scheduled_reconcile_files_a_spooled_but_never_queued_message(
    archiver: Archiver, settings: Settings, tmp_path: Path
) -> None:
    token = f"beat{uuid.uuid4().hex[:10]}"
    raw, source = smtp_delivery(token, "hidden@example.com")
    spool(archiver, (raw, source))  # no task sent: only the spool holds it
    sha256 = hashlib.sha256(raw).hexdigest()
    env = mailvault_env(
        celery_queue=f"{settings.celery_queue}-beat", reconcile_interval="1", reconcile_min_age="0"
    )
    schedule = tmp_path / "beat-schedule"

    with (
        mailvault("worker", ["worker", "--concurrency", "1"], env, tmp_path) as worker,
        mailvault("beat", ["beat", "--schedule", str(schedule)], env, tmp_path) as beat,
    ):
        wait_until(
            lambda: archiver.index.get(sha256) is not None,
            120,
            worker,
            beat,
            what="the message indexed by the scheduled reconcile",
        )
        wait_until(
            lambda: sha256 not in spooled(archiver),
            30,
            worker,
            beat,
            what="its segment dropped",
        )
        assert "Sending due task reconcile (mailvault.reconcile)" in beat.log_text()
        assert "mailvault.reconcile" in worker.log_text()

    doc = archiver.index.get(sha256)
    assert doc is not None and doc["envelope_to"] == ["hidden@example.com"]
    assert doc["sources"][0]["detail"] == token


def test_the_beat_schedule_keeps_exports_up(settings: Settings) -> None:
    entry = create_app(settings).conf.beat_schedule["export-maintain"]
    assert entry["task"] == EXPORT_MAINTAIN
    assert entry["schedule"] == settings.export_maintain_interval
    # a run that waited a whole interval is superseded by the next one
    assert entry["options"] == {"expires": settings.export_maintain_interval}


def test_scheduled_export_upkeep_expires_packages_and_resumes_stalled_builds(
    settings: Settings, tmp_path: Path
) -> None:
    name = f"{settings.es_index}-beat-exports"
    own = throwaway_settings(settings, name).model_copy(
        update={"celery_queue": f"{settings.celery_queue}-beat-exports"}
    )
    env = mailvault_env(
        es_index=name, s3_bucket=name, celery_queue=own.celery_queue, export_maintain_interval="1"
    )
    raw = (
        "Message-ID: <beat-export@example.cn>\r\nFrom: zhang@example.cn\r\n"
        "To: li@example.cn\r\nSubject: 季度报告\r\n\r\n季度报告正文\r\n"
    ).encode()
    try:
        with throwaway_archive(own) as archiver:
            source = Source(kind="import", detail="beat.eml", received_at=datetime.now(UTC))
            [outcome] = archiver.ingest_many([Incoming(raw, source)])
            assert outcome.sha256
            archiver.index.refresh()
            service = bootstrap.exports(own)  # enqueues nothing: the beat must find them
            request = ExportRequest(name="季度 export", kind="query", query="季度报告")
            old = service.create(request, cli_principal(), "local")
            old = bootstrap.export_builder(own).build(old.id)
            assert old.status == "done"
            packages = bootstrap.package_store(own)
            assert packages.keys(package_prefix(old.id))
            stalled = service.create(request, cli_principal(), "local")

            # its package's time is up; the other waited a whole lease with nobody building it
            # (its task was lost)
            def past(job: ExportJob) -> None:
                job.expires_at = datetime.now(UTC) - timedelta(minutes=1)

            def lost(job: ExportJob) -> None:
                job.requested_at = datetime.now(UTC) - service.options.lease - timedelta(seconds=1)

            service.jobs.change(old.id, past)
            service.jobs.change(stalled.id, lost)
            assert service.stalled() == [stalled.id]

            schedule = tmp_path / "beat-schedule"
            with (
                mailvault("worker", ["worker", "--concurrency", "1"], env, tmp_path) as worker,
                mailvault("beat", ["beat", "--schedule", str(schedule)], env, tmp_path) as beat,
            ):
                wait_until(
                    lambda: service.jobs.get(old.id).status == "expired",
                    120,
                    worker,
                    beat,
                    what="the expired package deleted",
                )
                wait_until(
                    lambda: service.jobs.get(stalled.id).status == "done",
                    120,
                    worker,
                    beat,
                    what="the stalled export built",
                )
                assert "Sending due task export-maintain (mailvault.export_maintain)" in (
                    beat.log_text()
                )
            assert not packages.keys(package_prefix(old.id))
            events = [e.event for e in service.jobs.custody(old.id)]
            assert events == ["requested", "built", "expired"]
            resumed = service.jobs.get(stalled.id)
            assert resumed.built_by.startswith("system:export@") and len(resumed.parts) == 1
            assert packages.keys(package_prefix(stalled.id))
    finally:
        drop_queue(own)
