"""`mailvault beat` schedules the reconciler and a real `mailvault worker` runs it: a message that
was spooled but never queued (Redis was down when it arrived) gets filed and indexed."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from archiver.pipeline.archiver import Archiver
from archiver.settings import Settings
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
