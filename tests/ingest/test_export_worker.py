"""A `mailvault worker` killed in the middle of an export, and the package another worker
finishes: real processes (the CLI asks, Celery workers build) against an archive of this
module's own on the real SeaweedFS and Elasticsearch. The resumed package equals an
uninterrupted export of the same request, verifies, and leaves no unfinished upload behind."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from archiver import bootstrap
from archiver.exports.model import ExportJob
from archiver.exports.parts import package_prefix
from archiver.exports.verifier import verify
from archiver.models import Source
from archiver.pipeline.archiver import Incoming
from archiver.settings import Settings
from bench.cleanup import drop_queue, throwaway_archive, throwaway_settings
from ingest.tasks import EXPORT_MAINTAIN, create_app
from tests.support.processes import mailvault, mailvault_env, run_cli, wait_until

pytestmark = pytest.mark.services

MESSAGES = 500
PART_SIZE = 4096  # a handful of messages per part: dozens of parts, several seconds of work
LEASE = 2  # seconds: a dead worker's job is free again soon after it dies
CUSTODIANS = ("li@example.cn", "wang@example.cn", "zhao@example.cn")
QUERY = "周报"


def mail(n: int) -> bytes:
    return (
        f"Message-ID: <exp-worker-{n}@example.cn>\r\nFrom: zhang@example.cn\r\n"
        f"To: {CUSTODIANS[n % len(CUSTODIANS)]}\r\nSubject: {QUERY} {n}\r\n"
        f"Date: Mon, 3 Jun 2019 10:{n % 60:02d}:00 +0800\r\n\r\n"
        f"第 {n} 周的{QUERY}。\r\n" + "内容 " * (n % 50) + "\r\n"
    ).encode()


@dataclass
class Archive:
    settings: Settings
    env: dict[str, str]

    def job(self, export_id: str) -> ExportJob:
        return bootstrap.exports(self.settings).jobs.get(export_id)


@pytest.fixture(scope="module")
def archive(settings: Settings) -> Iterator[Archive]:
    name = f"{settings.es_index}-exp-worker"
    own = throwaway_settings(settings, name).model_copy(
        update={
            "celery_queue": f"{settings.celery_queue}-exp-worker",
            "export_part_size": PART_SIZE,
            "export_lease_seconds": LEASE,
        }
    )
    env = mailvault_env(
        es_index=name,
        s3_bucket=name,
        celery_queue=own.celery_queue,
        export_part_size=str(PART_SIZE),
        export_lease_seconds=str(LEASE),
    )
    try:
        with throwaway_archive(own) as archiver:
            now = datetime.now(UTC)
            done = archiver.ingest_many(
                [
                    Incoming(mail(n), Source(kind="import", detail=f"w{n}", received_at=now))
                    for n in range(MESSAGES)
                ]
            )
            assert sum(1 for d in done if d.sha256) == MESSAGES, done[:3]
            archiver.index.refresh()
            yield Archive(own, env)
    finally:
        drop_queue(own)


def extracted(root: Path) -> dict[str, bytes]:
    """Every file of an unzipped package by its path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def metadata_rows(data: bytes) -> list[dict[str, str]]:
    """metadata.csv's rows without the control number (it is derived from the export id)."""
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    return [{k: v for k, v in row.items() if k != "control_number"} for row in rows]


def same_package(resumed: Path, resumed_id: str, whole: Path, whole_id: str) -> None:
    """The two trees hold the same files with the same bytes, but for the export ids."""
    a, b = extracted(resumed), extracted(whole)
    unsigned = {"manifest.json", "manifest.sig", "custody.log"}
    assert set(a) - unsigned == set(b) - unsigned
    assert len([p for p in a if p.endswith(".eml")]) == MESSAGES
    for path in set(a) - unsigned - {"metadata.csv"}:
        assert a[path].replace(resumed_id.encode(), whole_id.encode()) == b[path], path
    assert metadata_rows(a["metadata.csv"]) == metadata_rows(b["metadata.csv"])

    ma: dict[str, Any] = json.loads(a["manifest.json"])
    mb: dict[str, Any] = json.loads(b["manifest.json"])
    assert ma["messages"] == mb["messages"]
    changed = {"metadata.csv"} | {p for p in a if resumed_id.encode() in a[p]}
    files_a = {f["path"]: f for f in ma["files"]}
    files_b = {f["path"]: f for f in mb["files"]}
    assert set(files_a) == set(files_b)
    for path, entry in files_a.items():
        assert entry["part"] == files_b[path]["part"], path  # the same file in the same part
        if path not in changed:
            assert entry == files_b[path], path
    assert ma["counts"] == mb["counts"]
    names = [p["name"].replace(resumed_id, whole_id) for p in ma["parts"]]
    assert names == [p["name"] for p in mb["parts"]]


def test_a_killed_worker_s_export_resumes_to_the_same_package(
    archive: Archive, tmp_path: Path
) -> None:
    settings, env = archive.settings, archive.env
    packages = bootstrap.package_store(settings)
    request = ["--query", QUERY, "--name", "周报 导出"]
    worker = ["worker", "--concurrency", "1"]
    with mailvault("worker-1", worker, env, tmp_path, group=True) as first:
        job = ExportJob.model_validate_json(run_cli(env, "export", "create", *request, "--json"))
        export_id = job.id

        def building_with_a_part() -> bool:
            now = archive.job(export_id)
            assert now.status not in ("done", "failed"), now  # it must be caught mid-build
            return now.status == "building" and len(now.parts) >= 1

        wait_until(building_with_a_part, 120, first, what="a part written, the build going on")
        first.kill()

    crashed = archive.job(export_id)
    assert not crashed.finished and crashed.status == "building", crashed
    assert 1 <= len(crashed.parts) < crashed.progress.selected
    assert crashed.lease_until is not None

    # no fixed sleep: the dead worker's lease runs out by the clock
    def lease_over() -> bool:
        lease = archive.job(export_id).lease_until
        return lease is None or lease <= datetime.now(UTC) - timedelta(milliseconds=100)

    wait_until(lease_over, 30, what="the dead worker's lease run out")
    with mailvault("worker-2", worker, env, tmp_path) as second:
        # the beat's upkeep, sent by hand: it hands the stalled build to the live worker
        app = create_app(settings)
        maintained = app.send_task(EXPORT_MAINTAIN).get(timeout=120)
        assert export_id in maintained["resumed"], maintained
        wait_until(lambda: archive.job(export_id).finished, 300, second, what="the export resumed")
        assert "mailvault.export_build" in second.log_text()
    resumed = archive.job(export_id)
    assert resumed.status == "done", resumed
    assert resumed.built_by != crashed.built_by
    assert packages.pending_uploads(package_prefix(export_id)) == []
    custody = bootstrap.exports(settings).jobs.custody(export_id)
    assert [e.event for e in custody].count("built") == 1

    out = tmp_path / "resumed"
    run_cli(env, "export", "download", export_id, "--out", str(out), "--extract")
    whole_out = tmp_path / "whole"
    whole = ExportJob.model_validate_json(
        run_cli(
            env, "export", "create", *request, "--here", "--out", str(whole_out), "--extract",
            "--json",
        ).splitlines()[0]
    )  # fmt: skip
    assert whole.status == "done" and len(whole.parts) == len(resumed.parts) > 2

    same_package(out / "package", export_id, whole_out / "package", whole.id)
    key = bootstrap.export_signer(settings).public_key_hex
    for folder in (out, out / "package"):
        report = verify(folder, public_key_hex=key)
        assert report.ok and report.key_trusted, report.to_text()
        assert report.messages_checked == MESSAGES
    assert packages.pending_uploads(package_prefix(whole.id)) == []
