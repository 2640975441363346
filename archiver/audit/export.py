"""Exporting the audit log: CSV (UTF-8 with a BOM, so spreadsheets read Chinese), JSON, and a
PDF report (period, filters, counts by action, then the records).

Every format streams: records are written as they are read from S3, never gathered in a list.
The PDF reads the log twice (counts come first in the report, so they are counted first).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from enum import StrEnum
from typing import Any, BinaryIO

from archiver.audit.log import AuditFilter
from archiver.audit.records import AuditRecord
from archiver.text.pdf_text import PdfPages

Records = Callable[[], Iterator[AuditRecord]]  # called once per pass over the log

COLUMNS = [
    "seq",
    "time",
    "actor",
    "actor_roles",
    "client",
    "action",
    "target",
    "outcome",
    "request_id",
    "details",
    "prev_hash",
    "hash",
]


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    PDF = "pdf"


def row(record: AuditRecord) -> list[str]:
    return [
        str(record.seq),
        record.time.isoformat(),
        record.actor,
        ";".join(record.actor_roles),
        record.client,
        record.action.value,
        record.target,
        record.outcome.value,
        record.request_id,
        json.dumps(record.details, ensure_ascii=False, sort_keys=True),
        record.prev_hash,
        record.hash,
    ]


def export(fmt: ExportFormat, records: Records, filters: AuditFilter, out: BinaryIO) -> int:
    """Write the records in `fmt` to `out`; returns how many were written."""
    writers = {
        ExportFormat.CSV: write_csv,
        ExportFormat.JSON: write_json,
        ExportFormat.PDF: write_pdf,
    }
    return writers[fmt](records, filters, out)


def write_csv(records: Records, filters: AuditFilter, out: BinaryIO) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    try:
        writer = csv.writer(text)
        writer.writerow(COLUMNS)
        count = 0
        for record in records():
            writer.writerow(row(record))
            count += 1
        return count
    finally:
        text.flush()
        text.detach()  # the caller's stream stays open


def write_json(records: Records, filters: AuditFilter, out: BinaryIO) -> int:
    head = {"filters": filters.model_dump(mode="json", exclude_none=True)}
    out.write(json.dumps(head, ensure_ascii=False)[:-1].encode() + b', "records": [\n')
    count = 0
    for record in records():
        if count:
            out.write(b",\n")
        out.write(json.dumps(record.model_dump(mode="json"), ensure_ascii=False).encode())
        count += 1
    out.write(f'\n], "count": {count}}}\n'.encode())
    return count


# PDF


def _period(filters: AuditFilter, first: datetime | None, last: datetime | None) -> str:
    start = filters.since or first
    end = filters.until or last
    shown = [d.isoformat(timespec="seconds") if d else "—" for d in (start, end)]
    return f"{shown[0]} — {shown[1]}"


def _filters_text(filters: AuditFilter) -> str:
    chosen: dict[str, Any] = filters.model_dump(mode="json", exclude_none=True)
    if not chosen.get("actions"):
        chosen.pop("actions", None)
    return ", ".join(f"{k}={v}" for k, v in chosen.items()) or "none / 无"


def write_pdf(records: Records, filters: AuditFilter, out: BinaryIO) -> int:
    counts: Counter[str] = Counter()
    first = last = None
    last_seq = 0
    for record in records():
        counts[record.action.value] += 1
        first = first or record.time
        last, last_seq = record.time, record.seq
    total = sum(counts.values())

    pages = PdfPages(out, "mailvault audit log")
    pages.line("Audit log report / 审计日志报告", size=15)
    pages.gap()
    pages.line(f"Period / 期间: {_period(filters, first, last)}")
    pages.line(f"Filters / 筛选: {_filters_text(filters)}")
    pages.line(f"Records / 记录数: {total}")
    pages.gap()
    pages.line("Counts by action / 按操作统计", size=11)
    for action, count in sorted(counts.items()):
        pages.line(f"{action}: {count}", indent=12)
    pages.gap()
    pages.line("Records / 记录", size=11)
    written = 0
    for record in records():
        if record.seq > last_seq:
            break  # appended since the counts were taken: the report stays consistent
        roles = ",".join(record.actor_roles)
        pages.line(
            f"#{record.seq}  {record.time.isoformat(timespec='seconds')}  {record.actor}"
            f" [{roles}]  {record.action.value}  {record.outcome.value}  {record.target}"
        )
        details = json.dumps(record.details, ensure_ascii=False, sort_keys=True)
        pages.line(
            f"client {record.client or '-'}  request {record.request_id or '-'}  {details}",
            indent=12,
        )
        pages.line(f"hash {record.hash}", size=6.5, indent=12)
        written += 1
    pages.close()
    return written
