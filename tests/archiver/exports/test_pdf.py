"""The reviewers' PDF of a message: headers, Chinese body, attachments; long bodies paginate
and stop at the cap; hostile documents render (no services)."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from typing import Any

from pypdf import PdfReader

from archiver.exports.model import ExportItem, ItemAttachment
from archiver.exports.pdf import MAX_BODY_PAGES, MAX_PAGES, render_pdf
from archiver.text.pdf_text import wrap

SHA = hashlib.sha256(b"message").hexdigest()
SUBJECT = "关于第三季度预算审批的通知"
BODY = "各位同事：\n\n请在周五之前提交第三季度的预算申请表。\nPlease send the forms by Friday."


def document(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": SHA,
        "message_id": "<q3-budget@corp.cn>",
        "subject": SUBJECT,
        "from": [{"name": "张伟", "address": "zhang.wei@corp.cn"}],
        "to": [{"name": "", "address": "li@corp.cn"}, {"name": "王芳", "address": "wang@corp.cn"}],
        "cc": [{"name": "Finance", "address": "finance@corp.cn"}],
        "bcc": [],
        "date": "2024-03-01T08:30:05+00:00",
        "date_offset_minutes": 480,
        "body": BODY,
        "attachments": [
            {
                "filename": "预算申请表.xlsx",
                "content_type": "application/vnd.ms-excel",
                "size": 12345,
                "sha256": "a" * 64,
            },
            {"filename": "plan.pdf", "content_type": "application/pdf", "size": 99, "sha256": ""},
        ],
    }
    return base | fields


def export_item(**fields: Any) -> ExportItem:
    values: dict[str, Any] = {
        "id": SHA,
        "number": 7,
        "custodian": "li@corp.cn",
        "date": datetime(2024, 3, 1, 8, 30, 5, tzinfo=UTC),
        "date_offset_minutes": 480,
    }
    return ExportItem.model_validate(values | fields)


def text_of(pdf: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(pdf))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_a_message_renders_headers_chinese_body_and_attachments() -> None:
    pdf = render_pdf(document(), export_item(), control_number="EXP1-0000007")
    pages, text = text_of(pdf)
    assert pages == 1
    assert SUBJECT in text
    assert "张伟 <zhang.wei@corp.cn>" in text
    assert "li@corp.cn, 王芳 <wang@corp.cn>" in text
    assert "Finance <finance@corp.cn>" in text
    assert "2024-03-01 16:30:05 +0800" in text and "08:30:05 UTC" in text  # sender's offset
    assert "<q3-budget@corp.cn>" in text
    assert SHA in text
    assert "EXP1-0000007" in text
    assert "请在周五之前提交第三季度的预算申请表。" in text
    assert "Please send the forms by Friday." in text
    assert "预算申请表.xlsx" in text and "plan.pdf" in text
    assert "12,345 bytes" in text and "a" * 64 in text


def test_the_same_message_renders_to_the_same_bytes() -> None:
    assert render_pdf(document(), export_item()) == render_pdf(document(), export_item())


def test_a_100_kb_body_paginates_and_keeps_its_text() -> None:
    paragraph = "第三季度预算审批流程说明，请各部门负责人仔细阅读。" * 4
    body = "\n".join(f"{n:04d} {paragraph}" for n in range(400))
    assert len(body.encode()) > 100_000
    pages, text = text_of(render_pdf(document(body=body), export_item()))
    assert 10 < pages < MAX_BODY_PAGES
    flat = text.replace("\n", "")
    assert "0000 第三季度" in flat and "0399 第三季度" in flat  # the first and the last line
    assert "continues beyond" not in text


def test_a_body_beyond_the_cap_stops_with_a_note() -> None:
    body = "\n".join(f"line {n}" for n in range(MAX_BODY_PAGES * 80))
    pages, text = text_of(render_pdf(document(body=body), export_item()))
    assert MAX_BODY_PAGES <= pages <= MAX_BODY_PAGES + 2
    assert f"continues beyond {MAX_BODY_PAGES} pages" in text
    assert "预算申请表.xlsx" in text  # the attachment list still follows


def test_hostile_documents_render() -> None:
    hostile = document(
        subject="\x00\x1b[31m红色\u202e" + "很" * 5000,
        body="x" * 1_000_000 + "\n" + "\x07\x00\udcff\t😀" * 1000,
        to=[{"name": "\n" * 50, "address": "a@b"}] * 5000,
        attachments=[{"filename": "\x00" * 10, "size": None}] * 30_000,
    )
    pages, text = text_of(render_pdf(hostile, export_item()))
    assert pages <= MAX_PAGES + 2
    assert "红色" in text and "😀" in text
    assert "more; see the native" in text  # 30,000 attachments do not run past the cap

    fallback = {"id": SHA, "subject": "", "parse_error": "MessageError: boom", "size": 10}
    pages, text = text_of(render_pdf(fallback, ExportItem(id=SHA, number=1)))
    assert pages == 1
    assert "no body text" in text and "MessageError: boom" in text and SHA in text
    # the item alone (nothing in the document) still gives its attachments
    item = export_item(attachments=[ItemAttachment(name="附件.docx", sha256="c" * 64, size=5)])
    _, text = text_of(render_pdf({}, item))
    assert "附件.docx" in text


def test_wrapping_fits_the_width_and_loses_nothing_but_break_spaces() -> None:
    from archiver.text.pdf_text import char_width

    for line in ("中" * 500, "word " * 300, "x" * 2000, "", "a  b" * 200):
        pieces = list(wrap(line, 8.5, 200.0))
        assert all(sum(char_width(c, 8.5) for c in p) <= 200.0 for p in pieces)
        assert "".join(pieces).replace(" ", "") == line.replace(" ", "")
    assert next(wrap("alpha beta gamma", 8.5, 40.0)) in {"alpha", "alpha beta"}
