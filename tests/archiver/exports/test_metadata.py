"""metadata.csv and the DAT load file read back exactly, with Chinese, commas, quotes and line
breaks in the values, and stream row by row (no services)."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime

from archiver.exports.metadata import (
    CSV_COLUMNS,
    DAT_FIELDS,
    LoadFileDat,
    MetadataCsv,
)
from archiver.exports.model import ExportItem, ItemAttachment

EXPORT = "exp-3f2a1c9d0e"
SUBJECT = '季度报告, "草稿"\n第二行\r\n第三行'


def item(number: int = 1, **fields: object) -> ExportItem:
    values: dict[str, object] = {
        "id": f"{number:064x}",
        "number": number,
        "size": 1234,
        "custodian": "li@corp.cn",
        "holds": ["hold-1", "hold-2"],
        "folder": "诉讼 (hold-1)/li@corp.cn",
        "path": "诉讼 (hold-1)/li@corp.cn/20240301-083005_a@corp.cn_季度报告_000000000001.eml",
        "pdf_path": "诉讼 (hold-1)/li@corp.cn/20240301-083005_a@corp.cn_季度报告_000000000001.pdf",
        "from": "张伟 <a@corp.cn>",
        "to": ["li@corp.cn", "wang@corp.cn"],
        "cc": ["x, y <xy@corp.cn>"],
        "bcc": [],
        "envelope_to": ["li@corp.cn"],
        "subject": SUBJECT,
        "date": datetime(2024, 3, 1, 8, 30, 5, tzinfo=UTC),
        "date_offset_minutes": 480,
        "attachments": [
            ItemAttachment(name="预算.xlsx", sha256="a" * 64, size=10),
            ItemAttachment(name="plan.pdf", sha256="b" * 64, size=20),
        ],
        "tags": ["finance", "机密"],
    }
    return ExportItem.model_validate(values | fields)


def csv_text(*items: ExportItem) -> str:
    out = io.StringIO(newline="")
    writer = MetadataCsv(out, EXPORT)
    for n, it in enumerate(items):
        writer.row(it, f"{n:032x}")
    assert writer.rows == len(items)
    return out.getvalue()


def test_csv_reads_back_with_the_bom_and_every_value() -> None:
    data = csv_text(item(), item(2, date=None, date_offset_minutes=None, attachments=[]))
    encoded = data.encode("utf-8")
    assert encoded.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(encoded.decode("utf-8-sig"), newline="")))
    assert list(rows[0]) == list(CSV_COLUMNS)
    first, second = rows
    assert first["control_number"] == "EXP3F2A1C9D0E-0000001"
    assert first["id"] == first["sha256"] == f"{1:064x}"
    assert first["md5"] == f"{0:032x}"
    assert first["subject"] == SUBJECT  # commas, quotes, CR, LF and Chinese intact
    assert first["from"] == "张伟 <a@corp.cn>"
    assert first["to"] == "li@corp.cn; wang@corp.cn"
    assert first["cc"] == "x, y <xy@corp.cn>"
    assert first["bcc"] == ""
    assert first["holds"] == "hold-1; hold-2"
    assert first["envelope_recipients"] == "li@corp.cn"
    assert first["date_sent_utc"] == "2024-03-01T08:30:05+00:00"
    assert first["date_sent_original"] == "2024-03-01T16:30:05+08:00"
    assert first["utc_offset"] == "+08:00"
    assert first["attachment_names"] == "预算.xlsx; plan.pdf"
    assert first["attachment_sha256s"] == f"{'a' * 64}; {'b' * 64}"
    assert first["tags"] == "finance; 机密"
    assert first["path"].endswith("季度报告_000000000001.eml")
    assert first["pdf_path"].endswith(".pdf")
    assert second["control_number"] == "EXP3F2A1C9D0E-0000002"
    assert second["date_sent_utc"] == second["date_sent_original"] == second["utc_offset"] == ""
    assert second["attachment_names"] == ""


def test_negative_and_odd_offsets() -> None:
    rows = list(
        csv.DictReader(
            io.StringIO(
                csv_text(item(date_offset_minutes=-210), item(2, date_offset_minutes=345))[1:],
                newline="",
            )
        )
    )
    assert rows[0]["date_sent_original"] == "2024-03-01T05:00:05-03:30"
    assert rows[0]["utc_offset"] == "-03:30"
    assert rows[1]["date_sent_original"] == "2024-03-01T14:15:05+05:45"


def test_both_writers_stream_each_row_as_it_is_given() -> None:
    for writer_class in (MetadataCsv, LoadFileDat):
        out = io.StringIO(newline="")
        writer = writer_class(out, EXPORT)
        sizes = [len(out.getvalue())]
        for n in range(1, 6):
            writer.row(item(n), "0" * 32)
            sizes.append(len(out.getvalue()))
        assert sizes[0] > 0  # BOM and header before any row
        assert all(b > a for a, b in itertools.pairwise(sizes)), writer_class


def parse_dat(data: bytes) -> list[list[str]]:
    """A strict reader of the format: BOM, CRLF records, þ-qualified fields joined by DC4."""
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert text.endswith("\r\n")
    records = []
    for line in text[:-2].split("\r\n"):
        assert "\r" not in line and "\n" not in line
        fields = line.split("\x14")
        for field in fields:
            assert len(field) >= 2 and field[0] == field[-1] == "þ", field
            assert "þ" not in field[1:-1]
        records.append([f[1:-1].replace("®", "\n") for f in fields])
    return records


def dat_bytes(*items: ExportItem) -> bytes:
    out = io.StringIO(newline="")
    writer = LoadFileDat(out, EXPORT)
    for it in items:
        writer.row(it, "d" * 32)
    assert writer.rows == len(items)
    return out.getvalue().encode("utf-8")


def test_dat_reads_back() -> None:
    hostile = item(
        2,
        subject="þorn þ ® Microsoft® \x14 DC4 \x00 nul\ttab",
        custodian="",
        pdf_path="",
        date=None,
    )
    records = parse_dat(dat_bytes(item(), hostile))
    assert records[0] == list(DAT_FIELDS)
    assert len(records) == 3 and all(len(r) == len(DAT_FIELDS) for r in records)
    first = dict(zip(DAT_FIELDS, records[1], strict=True))
    number = "EXP3F2A1C9D0E-0000001"
    assert [first[f] for f in ("BEGDOC", "ENDDOC", "BEGATTACH", "ENDATTACH")] == [number] * 4
    assert first["SUBJECT"] == '季度报告, "草稿"\n第二行\n第三行'  # every line break as ®
    assert first["CUSTODIAN"] == "li@corp.cn"
    assert first["FROM"] == "张伟 <a@corp.cn>"
    assert first["TO"] == "li@corp.cn; wang@corp.cn"
    assert first["CC"] == "x, y <xy@corp.cn>"
    assert first["DATESENT"] == "03/01/2024"
    assert first["TIMESENT"] == "08:30:05"
    assert first["MD5HASH"] == "d" * 32
    assert first["SHA256"] == f"{1:064x}"
    assert first["HOLDS"] == "hold-1; hold-2"
    assert first["TAGS"] == "finance; 机密"
    assert first["ATTACHMENTS"] == "预算.xlsx; plan.pdf"
    assert first["NATIVEPATH"] == (
        "诉讼 (hold-1)\\li@corp.cn\\20240301-083005_a@corp.cn_季度报告_000000000001.eml"
    )
    assert first["PDFPATH"].endswith("_000000000001.pdf")
    assert first["FILESIZE"] == "1234"
    second = dict(zip(DAT_FIELDS, records[2], strict=True))
    # the format's own characters are replaced, so they cannot split or end a field
    assert second["SUBJECT"] == "thorn th (R) Microsoft(R)   DC4   nul\ttab"
    assert second["DATESENT"] == second["TIMESENT"] == second["CUSTODIAN"] == ""
    assert second["PDFPATH"] == ""
