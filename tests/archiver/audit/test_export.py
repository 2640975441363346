"""Audit exports: CSV (with a BOM), JSON and the PDF report hold exactly the records, stream as
they read, and the CLI writes them (and verifies the log) against the real S3."""

from __future__ import annotations

import csv
import io
import itertools
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader

from archiver import bootstrap
from archiver.audit.export import COLUMNS, ExportFormat, export, row
from archiver.audit.log import AuditFilter, AuditLog
from archiver.audit.records import AuditAction, AuditRecord
from archiver.settings import Settings, get_settings
from bench.cleanup import cleanup_throwaway
from ingest import cli
from tests.support.fakes import InMemoryAuditStore

QUERY = "合同 审批 张三"


def sample_log(count: int = 30) -> AuditLog:
    times = iter(datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=m) for m in range(10**6))
    log = AuditLog(InMemoryAuditStore(), seal_every=0, clock=lambda: next(times))
    for n in range(count):
        action = [AuditAction.SEARCH, AuditAction.VIEW, AuditAction.VIEW_RAW][n % 3]
        log.record(
            action,
            actor=f"审计员{n % 2}",
            actor_roles=("auditor", "legal"),
            client="192.0.2.7",
            target=f"msg-{n}",
            details={"query": QUERY, "total": n} if action == AuditAction.SEARCH else {},
            request_id=f"req-{n}",
        )
    return log


def run(fmt: ExportFormat, log: AuditLog, filters: AuditFilter | None = None) -> bytes:
    filters = filters or AuditFilter()
    out = io.BytesIO()
    export(fmt, lambda: log.records(filters), filters, out)
    return out.getvalue()


def test_csv_has_a_bom_and_parses_back_to_the_records() -> None:
    log = sample_log()
    data = run(ExportFormat.CSV, log)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == COLUMNS
    assert rows[1:] == [row(r) for r in log.records()]
    assert json.loads(rows[1][COLUMNS.index("details")])["query"] == QUERY


def test_json_loads_back_to_the_records_with_the_filters() -> None:
    log = sample_log()
    filters = AuditFilter(actor="审计员0", actions=[AuditAction.SEARCH])
    value = json.loads(run(ExportFormat.JSON, log, filters))
    expected = [r for r in log.records() if r.actor == "审计员0" and r.action == "search"]
    assert [AuditRecord.model_validate(r) for r in value["records"]] == expected
    assert value["count"] == len(expected) == 5
    assert value["filters"]["actor"] == "审计员0"
    assert json.loads(run(ExportFormat.JSON, log, AuditFilter(actor="nobody")))["records"] == []


def test_the_pdf_report_shows_period_filters_counts_and_chinese_records() -> None:
    log = sample_log()
    since = datetime(2026, 3, 1, 0, 3, tzinfo=UTC)
    data = run(ExportFormat.PDF, log, AuditFilter(since=since))
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    assert "审计日志报告" in text
    assert "2026-03-01T00:03:00+00:00" in text  # the period starts at the filter
    # records 4..30: 9 of each action
    for action in ("search: 9", "view: 9", "view_raw: 9"):
        assert action in text, text[:500]
    assert "Records / 记录数: 27" in text
    assert QUERY in text
    assert "审计员1" in text
    assert "#30" in text and "#3 " not in text


def watched(log: AuditLog, out: io.BytesIO, seen: list[int]) -> Iterator[AuditRecord]:
    for record in log.records():
        seen.append(out.tell())  # how much was written when this record was read
        yield record


@pytest.mark.parametrize("fmt", [ExportFormat.CSV, ExportFormat.JSON])
def test_exports_stream_as_they_read(fmt: ExportFormat) -> None:
    log = sample_log(10)
    out = io.BytesIO()
    seen: list[int] = []
    export(fmt, lambda: watched(log, out, seen), AuditFilter(), out)
    # each record is read only after the one before it was written out
    assert len(seen) == 10
    assert all(b > a for a, b in itertools.pairwise(seen)), seen


@pytest.fixture
def own_archive(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The CLI configured for an archive of this test's own: it forges a record of its log,
    which the session's log (verified by other tests, the audit page's) must never see."""
    name = f"{settings.es_index}-audit-cli"
    monkeypatch.setenv("MAILVAULT_ES_INDEX", name)
    monkeypatch.setenv("MAILVAULT_S3_BUCKET", name)
    get_settings.cache_clear()
    own = get_settings()
    bootstrap.init_backends(own)
    try:
        yield own
    finally:
        cleanup_throwaway(own)
        monkeypatch.undo()
        get_settings.cache_clear()


@pytest.mark.services
def test_cli_exports_and_verifies_the_configured_log(
    own_archive: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = bootstrap.audit_log(own_archive)
    assert log.store._store.bucket == own_archive.s3_bucket  # type: ignore[attr-defined]
    legal1, legal2 = (f"legal{n}-{uuid.uuid4().hex[:6]}" for n in (1, 2))
    for n in range(5):
        log.record(AuditAction.SEARCH, actor=legal1, details={"query": QUERY, "total": n})
    log.record(AuditAction.VIEW, actor=legal2, target="abc")
    assert cli.main(["audit", "seal"]) == 0
    assert cli.main(["audit", "verify", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["issues"] == [] and report["head"] >= 7

    out = tmp_path / "audit.csv"
    assert (
        cli.main(["audit", "export", "--format", "csv", "--actor", legal1, "--out", str(out)]) == 0
    )
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"), newline="")))
    assert len(rows) == 5 and {r["action"] for r in rows} == {"search"}
    for fmt in ("json", "pdf"):
        target = tmp_path / f"audit.{fmt}"
        args = ["audit", "export", "--format", fmt, "--action", "view", "--actor", legal2]
        args += ["--out", str(target)]
        assert cli.main([*args, "--since", "2000-01-01"]) == 0
    assert json.loads((tmp_path / "audit.json").read_text())["count"] == 1
    pdf = PdfReader(str(tmp_path / "audit.pdf")).pages[0].extract_text()
    assert "view: 1" in pdf and legal2 in pdf

    # a changed record: verify exits 1 and names it
    store = log.store
    key = store.record_key(2)  # type: ignore[attr-defined]
    forged = json.loads(store.get_record(2) or b"{}")
    forged["actor"] = "someone-else"
    data = json.dumps(forged).encode()
    store._store.client.put_object(store._store.bucket, key, io.BytesIO(data), len(data))  # type: ignore[attr-defined]
    assert cli.main(["audit", "verify"]) == 1
    printed = capsys.readouterr().out
    assert "changed: 2:" in printed and "segment_differs" in printed
