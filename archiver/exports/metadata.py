"""metadata.csv and the EDRM/Concordance DAT load file of a package.

Both stream: each row is written when it is given, never gathered, so a package of a million
messages costs one row of memory. Both take a text stream opened with `newline=""` (the writers
choose the line ends) and UTF-8 encoding; the byte order mark is written here, first, so
spreadsheet tools and review platforms read Chinese as UTF-8.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import TextIO

from archiver.exports.layout import control_number
from archiver.exports.model import ExportItem

BOM = "\ufeff"
LIST_SEPARATOR = "; "

CSV_COLUMNS: tuple[str, ...] = (
    "control_number",
    "id",
    "sha256",
    "md5",
    "custodian",
    "holds",
    "from",
    "to",
    "cc",
    "bcc",
    "envelope_recipients",
    "subject",
    "date_sent_utc",
    "date_sent_original",
    "utc_offset",
    "attachment_names",
    "attachment_sha256s",
    "tags",
    "path",
    "pdf_path",
)


def _joined(values: Iterable[str]) -> str:
    return LIST_SEPARATOR.join(values)


def _utc(item: ExportItem) -> datetime | None:
    return item.date.astimezone(UTC) if item.date is not None else None


def _offset(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


def _offset_text(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def csv_row(item: ExportItem, md5: str, export_id: str) -> list[str]:
    utc = _utc(item)
    original = offset = ""  # an unknown offset stays unknown rather than shown as UTC
    if utc is not None and item.date_offset_minutes is not None:
        original = utc.astimezone(_offset(item.date_offset_minutes)).isoformat()
        offset = _offset_text(item.date_offset_minutes)
    return [
        control_number(export_id, item.number),
        item.id,
        item.id,  # the stored bytes' SHA-256 is the id; the builder re-verifies it as it writes
        md5,
        item.custodian,
        _joined(item.holds),
        item.from_,
        _joined(item.to),
        _joined(item.cc),
        _joined(item.bcc),
        _joined(item.envelope_to),
        item.subject,
        utc.isoformat() if utc is not None else "",
        original,
        offset,
        _joined(a.name for a in item.attachments),
        _joined(a.sha256 for a in item.attachments),
        _joined(item.tags),
        item.path,
        item.pdf_path,
    ]


class MetadataCsv:
    """metadata.csv: the BOM and the header at once, then one row per `row` call."""

    def __init__(self, out: TextIO, export_id: str) -> None:
        self.export_id = export_id
        self.rows = 0
        out.write(BOM)
        self._writer = csv.writer(out)  # excel dialect: CRLF, quotes only where needed
        self._writer.writerow(CSV_COLUMNS)

    def row(self, item: ExportItem, md5: str) -> None:
        self._writer.writerow(csv_row(item, md5, self.export_id))
        self.rows += 1


# The DAT load file (Concordance / EDRM): every field between þ (the text qualifier), fields
# separated by ASCII 20 (DC4, which Concordance shows as ¶), a line break inside a field written
# as ®, records ended by CRLF.
DAT_DELIMITER = "\x14"
DAT_QUOTE = "\u00fe"  # þ
DAT_NEWLINE = "\u00ae"  # ®
DAT_FIELDS: tuple[str, ...] = (
    "BEGDOC",
    "ENDDOC",
    "BEGATTACH",
    "ENDATTACH",
    "CUSTODIAN",
    "FROM",
    "TO",
    "CC",
    "BCC",
    "SUBJECT",
    "DATESENT",
    "TIMESENT",
    "MD5HASH",
    "SHA256",
    "HOLDS",
    "TAGS",
    "ATTACHMENTS",
    "NATIVEPATH",
    "PDFPATH",
    "FILESIZE",
)

# The format has no escape: a þ, DC4 or ® inside a value would end the field, split it or turn
# into a line break when loaded. So values lose them: þ becomes "th" (its usual transliteration),
# ® becomes "(R)" (common in signatures: "Microsoft®"), DC4 and the other control characters a
# space (tab kept), and CR, LF and CRLF become the ® the format reserves for line breaks. The
# exact text stays in the natives and metadata.csv.
_DAT_REPLACE = str.maketrans(
    {DAT_QUOTE: "th", DAT_NEWLINE: "(R)"}
    | {chr(c): " " for c in (*range(0x20), 0x7F) if chr(c) not in "\t\r\n"}
)
_LINE_BREAK = re.compile(r"\r\n|\r|\n|\u2028|\u2029|\x85")


def dat_value(value: str) -> str:
    return _LINE_BREAK.sub(DAT_NEWLINE, value.translate(_DAT_REPLACE))


def _dat_path(path: str) -> str:
    # review platforms load on Windows; "\" never occurs in a package component (layout.py)
    return path.replace("/", "\\")


def dat_row(item: ExportItem, md5: str, export_id: str) -> list[str]:
    number = control_number(export_id, item.number)
    utc = _utc(item)
    return [
        number,
        number,
        number,  # the attachments are inside the native, not documents of their own: the
        number,  # family is the message alone
        item.custodian,
        item.from_,
        _joined(item.to),
        _joined(item.cc),
        _joined(item.bcc),
        item.subject,
        utc.strftime("%m/%d/%Y") if utc is not None else "",
        utc.strftime("%H:%M:%S") if utc is not None else "",
        md5,
        item.id,
        _joined(item.holds),
        _joined(item.tags),
        _joined(a.name for a in item.attachments),
        _dat_path(item.path),
        _dat_path(item.pdf_path),
        str(item.size),
    ]


class LoadFileDat:
    """loadfile.dat: the BOM and the header at once, then one record per `row` call."""

    def __init__(self, out: TextIO, export_id: str) -> None:
        self.export_id = export_id
        self.rows = 0
        self._out = out
        out.write(BOM)
        self._record(DAT_FIELDS)

    def _record(self, values: Iterable[str]) -> None:
        fields = (f"{DAT_QUOTE}{dat_value(v)}{DAT_QUOTE}" for v in values)
        self._out.write(DAT_DELIMITER.join(fields) + "\r\n")

    def row(self, item: ExportItem, md5: str) -> None:
        self._record(dat_row(item, md5, self.export_id))
        self.rows += 1
