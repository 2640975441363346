"""A PDF of one message for reviewers who cannot open EML: the headers, the body text, the
attachment list. Chinese is drawn with the built-in CID font (archiver/text/pdf_text.py).

The rendering is a convenience, never the evidence: the native beside it is. So a body longer
than the page cap is cut with a note saying so, and the same message renders to the same bytes
(reportlab's invariant mode), which keeps packages reproducible.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from archiver.exports.model import ExportItem
from archiver.text.pdf_text import PdfPages

MAX_BODY_PAGES = 200
MAX_PAGES = MAX_BODY_PAGES + 20  # the attachment list may go on a little after a full body
HEADER_SIZE = 9.0
TITLE_SIZE = 13.0
SMALL = 7.0


def _person(value: Any) -> str:
    if isinstance(value, Mapping):
        name, address = str(value.get("name") or ""), str(value.get("address") or "")
        return f"{name} <{address}>" if name and address else name or address
    return str(value)


def _people(doc: Mapping[str, Any], field: str, fallback: list[str]) -> str:
    values = doc.get(field)
    if isinstance(values, list) and values:
        return ", ".join(p for p in map(_person, values) if p)
    return ", ".join(fallback)


def _date(doc: Mapping[str, Any], item: ExportItem) -> str:
    date: datetime | None = item.date
    if date is None and isinstance(doc.get("date"), str):
        try:
            date = datetime.fromisoformat(doc["date"])
        except ValueError:
            return str(doc["date"])
    if date is None:
        return ""
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    utc = date.astimezone(UTC)
    offset = item.date_offset_minutes
    if offset is None and isinstance(doc.get("date_offset_minutes"), int):
        offset = doc["date_offset_minutes"]
    if offset is None:
        return f"{utc:%Y-%m-%d %H:%M:%S} UTC"
    local = utc.astimezone(timezone(timedelta(minutes=offset)))
    return f"{local:%Y-%m-%d %H:%M:%S %z}  ({utc:%Y-%m-%d %H:%M:%S} UTC)"


def _attachments(doc: Mapping[str, Any], item: ExportItem) -> Iterator[tuple[str, str, int, str]]:
    listed = doc.get("attachments")
    if isinstance(listed, list) and listed:
        for a in listed:
            if isinstance(a, Mapping):
                yield (
                    str(a.get("filename") or a.get("name") or ""),
                    str(a.get("content_type") or ""),
                    int(a.get("size") or 0),
                    str(a.get("sha256") or ""),
                )
        return
    for att in item.attachments:
        yield att.name, "", att.size, att.sha256


def render_pdf(doc: Mapping[str, Any], item: ExportItem, *, control_number: str = "") -> bytes:
    """The PDF of one message. `doc` is its index document (a fallback document of a message
    that could not be parsed renders too); `item` says what the package says of it."""
    out = io.BytesIO()
    subject = str(doc.get("subject") or item.subject or "")
    pages = PdfPages(out, subject or item.id, invariant=True)
    pages.line(subject or "(no subject / 无主题)", size=TITLE_SIZE, last_page=1)
    pages.gap()
    header = [
        ("From / 发件人", _people(doc, "from", [item.from_] if item.from_ else [])),
        ("To / 收件人", _people(doc, "to", item.to)),
        ("Cc / 抄送", _people(doc, "cc", item.cc)),
        ("Bcc / 密送", _people(doc, "bcc", item.bcc)),
        ("Date / 日期", _date(doc, item)),
        ("Subject / 主题", subject),
        ("Message-ID", str(doc.get("message_id") or "")),
        ("Archive id (SHA-256) / 存档编号", item.id),
    ]
    if control_number:
        header.append(("Control number / 控制编号", control_number))
    if item.custodian:
        header.append(("Custodian / 保管人", item.custodian))
    for label, value in header:
        # a header line is capped like everything else: 10,000 recipients stay on a few pages
        if not pages.line(f"{label}: {value}", size=HEADER_SIZE, last_page=MAX_BODY_PAGES // 4):
            pages.line("[cut; the full header is in the native / 其余见原始邮件]", size=SMALL)
    if doc.get("parse_error"):
        pages.line(f"Not parsed / 无法解析: {doc['parse_error']}", size=SMALL)
    pages.gap()
    pages.line("─" * 40, size=HEADER_SIZE)
    pages.gap()

    body = str(doc.get("body") or "")
    complete = True
    if body.strip():
        for text in body.splitlines():
            if not pages.line(text, last_page=MAX_BODY_PAGES):
                complete = False
                break
    else:
        pages.line("(no body text / 无正文)")
    if not complete:
        pages.gap()
        pages.line(
            f"[The body continues beyond {MAX_BODY_PAGES} pages; the full text is in the native"
            f" file. / 正文超过 {MAX_BODY_PAGES} 页，其余内容见原始邮件文件。]",
            size=HEADER_SIZE,
        )

    attachments = list(_attachments(doc, item))
    pages.gap()
    pages.line(f"Attachments / 附件 ({len(attachments)})", size=HEADER_SIZE + 1)
    for number, (name, kind, size, sha256) in enumerate(attachments, 1):
        listed = pages.line(
            f"{number}. {name or '(no name / 无名称)'}  {kind}  {size:,} bytes  sha256 {sha256}",
            size=SMALL + 0.5,
            indent=12,
            last_page=MAX_PAGES,
        )
        if not listed:
            pages.line(f"[{len(attachments) - number + 1} more; see the native / 其余见原始邮件]")
            break
    pages.close()
    return out.getvalue()
