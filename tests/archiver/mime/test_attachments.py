"""Attachment text extraction on real files made here with the real writers (python-docx, openpyxl,
python-pptx, reportlab), on hostile ones (corrupt, zip bombs, entity bombs, slow), through the
parser, and through the real index: a word found only inside an attachment finds the message."""

from __future__ import annotations

import base64
import hashlib
import io
import signal
import struct
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

import docx
import openpyxl
import pptx
import pytest
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from archiver.mime.attachments import DEFAULT_LIMITS, ExtractLimits, detect_kind, extract_text
from archiver.mime.parsing import parse_message
from archiver.models import ParsedMessage, Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.pipeline.documents import build_document
from archiver.search.service import SearchService
from archiver.text.tokenizer import get_tokenizer

NOW = datetime(2024, 5, 1, tzinfo=UTC)
OCTET = "application/octet-stream"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


# ---------------------------------------------------------------------------------------------
# Files, made by the libraries people's mail actually comes from


def make_docx(*paragraphs: str, table: list[list[str]] | None = None) -> bytes:
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_xlsx(sheets: dict[str, list[list[object]]]) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def make_pptx(slides: list[tuple[str, str]], notes: str = "") -> bytes:
    deck = pptx.Presentation()
    for title, body in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def make_pdf(*pages: str, password: str | None = None) -> bytes:
    """A PDF with Chinese text in the Adobe CID font STSong-Light (no font file needed)."""
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    out = io.BytesIO()
    page_canvas = canvas.Canvas(out, encrypt=password)
    for text in pages:
        page_canvas.setFont("STSong-Light", 14)
        for number, line in enumerate(text.split("\n")):
            page_canvas.drawString(72, 720 - 20 * number, line)
        page_canvas.showPage()
    page_canvas.save()
    return out.getvalue()


def zip_of(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def docx_with_body(body: str) -> bytes:
    """A minimal WordprocessingML package around body (the inside of <w:body>)."""
    xml = f'<?xml version="1.0"?><w:document {W}><w:body>{body}</w:body></w:document>'
    return zip_of({"[Content_Types].xml": b"<Types/>", "word/document.xml": xml.encode()})


def extract(data: bytes, ctype: str = OCTET, name: str = "", **kw: object) -> object:
    options: dict[str, object] = {"max_chars": 100_000, "timeout_s": 10.0, **kw}
    return extract_text(data, ctype, name, **options)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Messages


def part(ctype: str, data: bytes, filename: str = "", *, encode: bool = True) -> bytes:
    head = f"Content-Type: {ctype}\r\n"
    if filename:
        quoted = "".join(f"%{b:02X}" for b in filename.encode())
        head += f"Content-Disposition: attachment; filename*=UTF-8''{quoted}\r\n"
    if encode:
        return (head + "Content-Transfer-Encoding: base64\r\n\r\n").encode() + base64.encodebytes(
            data
        )
    return (head + "\r\n").encode() + data + b"\r\n"


def mail(body: str, *parts: bytes, subject: str = "test", boundary: str = "b1") -> bytes:
    encoded = base64.b64encode(subject.encode()).decode()
    head = (
        f"From: a@example.cn\r\nTo: b@example.cn\r\nSubject: =?utf-8?B?{encoded}?=\r\n"
        f"Message-ID: <{hashlib.md5(body.encode()).hexdigest()}@example.cn>\r\n"
        "Date: Wed, 1 May 2024 10:00:00 +0800\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
    ).encode()
    out = head + f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n".encode()
    out += body.encode() + b"\r\n"
    for item in parts:
        out += f"--{boundary}\r\n".encode() + item
    return out + f"--{boundary}--\r\n".encode()


def parse(raw: bytes, limits: ExtractLimits | None = DEFAULT_LIMITS) -> ParsedMessage:
    return parse_message(raw, NOW, extract=limits)


# ---------------------------------------------------------------------------------------------
# Formats


def test_docx_paragraphs_and_table_even_when_mislabelled() -> None:
    data = make_docx("关于长江大桥维修合同的审批意见", "Second paragraph", table=[["甲方", "乙方"]])
    result = extract(data, OCTET, "")  # no type, no filename: found by its parts
    assert result.kind == "docx"
    assert result.error is None
    assert result.text.split("\n") == [
        "关于长江大桥维修合同的审批意见",
        "Second paragraph",
        "甲方",
        "乙方",
    ]


def test_xlsx_sheet_names_strings_and_numbers() -> None:
    data = make_xlsx({"报价单": [["产品", "单价"], ["服务器", 12345.5]], "Notes": [["见附件"]]})
    result = extract(data, "application/vnd.ms-excel", "报价单.xlsx")
    assert result.kind == "xlsx"
    assert result.text.split("\n") == ["报价单", "产品\t单价", "服务器\t12345.5", "Notes", "见附件"]


def test_pptx_slides_in_order_then_notes() -> None:
    slides = [(f"第{n}页", f"内容{n}") for n in range(1, 12)]  # slide10 after slide9
    result = extract(make_pptx(slides, notes="演讲备注"), OCTET, "计划.pptx")
    assert result.kind == "pptx"
    lines = result.text.split("\n")
    assert lines[:4] == ["第1页", "内容1", "第2页", "内容2"]
    assert lines.index("第10页") > lines.index("第9页")
    assert "演讲备注" in lines


def test_chinese_pdf_text_is_extracted() -> None:
    # pypdf maps the CID font's UniGB-UCS2-H encoding back to Unicode
    result = extract(make_pdf("关于长江大桥维修合同的审批意见\nQuarterly report", "第二页"))
    assert result.kind == "pdf"
    assert result.error is None
    assert result.text.split("\n") == [
        "关于长江大桥维修合同的审批意见",
        "Quarterly report",
        "第二页",
    ]


def test_pdf_page_limit() -> None:
    data = make_pdf(*(f"页{n}" for n in range(1, 6)))
    result = extract(data, limits=replace(DEFAULT_LIMITS, max_pdf_pages=2))
    assert result.text.split("\n") == ["页1", "页2"]
    assert result.truncated
    assert result.error is None


def test_encrypted_pdf_is_an_error() -> None:
    result = extract(make_pdf("机密", password="secret"), "application/pdf", "x.pdf")
    assert result.kind == "pdf"
    assert result.text == ""
    assert result.error is not None and "password" in result.error


def test_html_attachment_drops_script_and_decodes_gb2312() -> None:
    html = "<html><script>var 隐藏 = 1;</script><body><p>会议纪要</p><p>第二段</p></body></html>"
    result = extract(html.encode("gb2312"), "text/html", "纪要.htm")
    assert result.kind == "html"
    assert "会议纪要" in result.text and "第二段" in result.text
    assert "隐藏" not in result.text


@pytest.mark.parametrize(
    ("data", "ctype", "name", "kind"),
    [
        (b"%PDF-1.4 ...", OCTET, "scan.bin", "pdf"),
        (b"plain words", "text/plain", "", "text"),
        (b"plain words", OCTET, "notes.TXT", "text"),
        (b"<!DOCTYPE html><p>x</p>", OCTET, "", "html"),
        (b"From: a@b\r\nSubject: x\r\n\r\nbody", OCTET, "", "message"),
        (b"anything", "message/rfc822", "", "message"),
        (b"\x89PNG\r\n\x1a\n", "image/png", "logo.png", "unsupported"),
        (zip_of({"a.txt": b"x"}), "application/zip", "a.zip", "unsupported"),
        (b"PK\x03\x04 broken", DOCX_TYPE, "a.docx", "docx"),  # claims it: its failure shows
        (b"no magic", "application/pdf", "a.pdf", "pdf"),
    ],
)
def test_detect_kind(data: bytes, ctype: str, name: str, kind: str) -> None:
    assert detect_kind(data, ctype, name) == kind


# ---------------------------------------------------------------------------------------------
# Through the parser


def test_gbk_text_attachment_with_and_without_charset_label() -> None:
    text = "镕基同志：请审阅附件中的预算。"
    raw = mail(
        "见附件",
        part("text/plain; charset=gbk", text.encode("gbk"), "预算说明.txt"),
        part("text/plain", "无标签的国标编码文本内容较长一些以便识别".encode("gb18030"), "b.txt"),
    )
    parsed = parse(raw)
    assert parsed.extract_errors == []
    assert parsed.attachment_text == (
        f"预算说明.txt\n{text}\n\nb.txt\n无标签的国标编码文本内容较长一些以便识别"
    )
    assert [a.text_chars for a in parsed.attachments] == [len(text), 20]
    assert parsed.body_text == "见附件"  # attachment text stays out of the body


def test_long_gbk_text_is_cut_on_a_character_boundary() -> None:
    line = "镕基同志：请审阅附件中的预算。\n"
    result = extract((line * 10_000).encode("gbk"), "text/plain", "a.txt", max_chars=1_000)
    assert result.truncated
    assert result.error is None
    assert len(result.text) == 1_000
    assert (line * 100).startswith(result.text)  # decoded as GBK, no mojibake at the cut


def test_nested_message_with_its_own_attachment() -> None:
    inner = mail(
        "内层正文：请查收审计底稿",
        part(DOCX_TYPE, make_docx("凤凰项目的审计底稿"), "底稿.docx"),
        subject="转发：审计通知",
        boundary="inner",
    )
    raw = mail("外层正文", part("message/rfc822", inner, encode=False))
    parsed = parse(raw)
    assert parsed.extract_errors == []
    (attachment,) = parsed.attachments
    assert attachment.content_type == "message/rfc822"
    assert attachment.text_chars > 0
    text = parsed.attachment_text
    for expected in (
        "转发：审计通知",
        "内层正文：请查收审计底稿",
        "底稿.docx",
        "凤凰项目的审计底稿",
    ):
        assert expected in text
    assert "外层正文" not in text


def test_nesting_deeper_than_the_limit_keeps_text_but_not_attachments() -> None:
    raw = mail("第四层正文", part("text/plain", "第四层附件".encode(), "4.txt"), boundary="l4")
    for level in (3, 2, 1):
        raw = mail(
            f"第{level}层正文",
            part("text/plain", f"第{level}层附件".encode(), f"{level}.txt"),
            part("message/rfc822", raw, encode=False),
            boundary=f"l{level}",
        )
    raw = mail("顶层", part("message/rfc822", raw, encode=False), boundary="top")
    text = parse(raw, replace(DEFAULT_LIMITS, max_depth=3)).attachment_text
    # depth 0: message 1 read with its attachments; depth 1: message 2 likewise; depth 2:
    # message 3 read without reading its attachments, so message 4 is not reached
    for present in ("第1层正文", "第1层附件", "第2层正文", "第2层附件", "第3层正文"):
        assert present in text
    for absent in ("第3层附件", "第四层正文", "第四层附件"):
        assert absent not in text


def test_corrupt_files_are_recorded_never_raised() -> None:
    pdf = make_pdf("完好的第一页")
    raw = mail(
        "正文",
        part("application/pdf", b"%PDF-1.7\n" + bytes(range(256)) * 40, "坏.pdf"),
        part(DOCX_TYPE, b"PK\x03\x04" + b"\x00" * 200, "坏.docx"),
        part("application/pdf", pdf, "好.pdf"),
    )
    parsed = parse(raw)
    assert parsed.parse_error is None
    bad_pdf, bad_docx, good = parsed.attachments
    assert bad_pdf.extract_error and bad_docx.extract_error
    assert good.extract_error is None and good.text_chars == len("完好的第一页")
    assert [e.split(":")[0] for e in parsed.extract_errors] == ["坏.pdf", "坏.docx"]
    assert parsed.attachment_text == "好.pdf\n完好的第一页"


def test_truncated_pdf_is_an_error() -> None:
    data = make_pdf("第一页", "第二页")
    result = extract(data[: len(data) * 2 // 3], "application/pdf", "cut.pdf")
    assert result.kind == "pdf"
    assert result.error is not None and result.error.startswith("PdfStreamError")


def test_oversized_attachment_is_skipped_with_the_reason() -> None:
    limits = replace(DEFAULT_LIMITS, max_bytes=1_000)
    raw = mail(
        "正文", part("text/plain", b"x" * 2_000, "big.txt"), part("text/plain", b"ok", "s.txt")
    )
    parsed = parse(raw, limits)
    big, small = parsed.attachments
    assert big.text_chars == 0
    assert big.extract_error == "skipped: 2000 bytes, over the 1000-byte limit"
    assert small.extract_error is None
    assert parsed.extract_errors == ["big.txt: skipped: 2000 bytes, over the 1000-byte limit"]
    assert parsed.attachment_text == "s.txt\nok"


def test_message_text_limit_truncates_then_skips() -> None:
    limits = replace(DEFAULT_LIMITS, max_chars=60)
    raw = mail(
        "正文",
        part("text/plain; charset=utf-8", ("甲" * 100).encode(), "a.txt"),
        part("text/plain", b"second", "b.txt"),
        part("image/png", b"\x89PNG\r\n\x1a\n", "logo.png"),
    )
    parsed = parse(raw, limits)
    _, second, image = parsed.attachments
    assert len(parsed.attachment_text) <= 60
    assert parsed.attachment_text.startswith("a.txt\n甲甲")
    assert "attachment a.txt: text truncated" in parsed.warnings
    assert second.extract_error is not None and "limit is used up" in second.extract_error
    assert image.extract_error is None  # nothing to read in it: not a failure


def test_extraction_can_be_turned_off() -> None:
    raw = mail("正文", part(DOCX_TYPE, make_docx("附件文字"), "a.docx"))
    parsed = parse(raw, None)
    assert parsed.attachment_text == ""
    assert parsed.attachments[0].text_chars == 0
    assert parsed.attachments[0].sha256  # the metadata is still there


def test_document_fields_are_segmented_like_bodies() -> None:
    raw = mail("正文", part(DOCX_TYPE, make_docx("关于长江大桥维修合同的审批意见"), "意见.docx"))
    doc = build_document("0" * 64, parse(raw), get_tokenizer())
    assert doc["attachment_text"] == "意见.docx\n关于长江大桥维修合同的审批意见"
    assert "长江 大桥 长江大桥" in doc["attachment_terms"]
    assert "关于 长江大桥 维修 合同" in doc["attachment_words"]
    assert doc["extract_errors"] == [] and doc["extract_failed"] is False


# ---------------------------------------------------------------------------------------------
# Hostile input


def test_zip_bomb_is_refused_before_decompressing() -> None:
    paragraph = "<w:p><w:r><w:t>炸弹</w:t></w:r></w:p>"
    data = docx_with_body(paragraph * 100_000)  # ~3.5 MB of XML in ~20 KB
    assert len(data) < 100_000
    result = extract(data, limits=replace(DEFAULT_LIMITS, max_unpacked_bytes=1_000_000))
    assert result.kind == "docx"
    assert result.text == ""
    assert result.error is not None and "over the 1000000-byte limit" in result.error


def test_zip_directory_lying_about_sizes_is_caught() -> None:
    data = bytearray(docx_with_body("<w:p><w:r><w:t>真实内容</w:t></w:r></w:p>" * 2_000))
    # claim a tiny uncompressed size for word/document.xml in the central directory
    entry = -1
    while True:
        entry = data.index(b"PK\x01\x02", entry + 1)
        (name_length,) = struct.unpack_from("<H", data, entry + 28)
        if data[entry + 46 : entry + 46 + name_length] == b"word/document.xml":
            break
    struct.pack_into("<I", data, entry + 24, 10)
    result = extract(bytes(data))
    assert result.kind == "docx"
    assert result.error is not None  # zipfile stops at the declared size and the CRC fails
    assert len(result.text) < 100


def test_entity_expansion_bomb_is_an_error_not_a_hang() -> None:
    entities = '<!ENTITY a0 "laugh">' + "".join(
        f'<!ENTITY a{n} "{f"&a{n - 1};" * 10}">' for n in range(1, 10)
    )
    xml = (
        f'<?xml version="1.0"?><!DOCTYPE d [{entities}]>'
        f"<w:document {W}><w:body><w:p><w:r><w:t>&a9;</w:t></w:r></w:p></w:body></w:document>"
    )
    data = zip_of({"word/document.xml": xml.encode()})
    result = extract(data)
    assert result.kind == "docx"
    assert result.error is not None and "ParseError" in result.error
    assert "laugh" not in result.text


def _big_html() -> bytes:
    return b"<html><body>" + b"<b>x</b><i>y</i>" * 250_000 + b"</body></html>"  # 4 MB of tags


def test_timeout_in_the_main_thread_interrupts_and_cleans_up() -> None:
    before = signal.getsignal(signal.SIGALRM)
    result = extract(_big_html(), "text/html", "slow.html", timeout_s=0.05)
    assert result.error == "timeout: gave up after 0.05 s"
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before


def test_timeout_outside_the_main_thread_uses_the_deadline() -> None:
    rows = [[f"行{n}", n] for n in range(15_000)]
    data = make_xlsx({"大表": rows})
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(extract, data, OCTET, "big.xlsx", timeout_s=0.02).result()
    assert result.error == "timeout: gave up after 0.02 s"
    assert result.kind == "xlsx"
    assert "行14999" not in result.text  # stopped early


def test_message_time_budget_skips_the_rest() -> None:
    raw = mail(
        "正文",
        part("text/html", _big_html(), "slow.html"),
        part("text/plain", b"after", "after.txt"),
    )
    parsed = parse(raw, replace(DEFAULT_LIMITS, timeout_s=0.05, budget_s=0.05))
    slow, after = parsed.attachments
    assert slow.extract_error == "timeout: gave up after 0.05 s"
    assert after.extract_error is not None and "time limit is used up" in after.extract_error


# ---------------------------------------------------------------------------------------------
# Through the real index


@pytest.mark.services
def test_word_only_inside_attachments_finds_the_message(archiver: Archiver) -> None:
    raw = mail(
        "请查收附件。",
        part(DOCX_TYPE, make_docx("玄武湖清淤工程的麒麟计划预算说明"), "预算.docx"),
        part("application/pdf", make_pdf("凤凰项目的审计底稿"), "底稿.pdf"),
        part("application/pdf", b"%PDF-1.7 damaged", "损坏.pdf"),
        subject="附件",
    )
    sha = hashlib.sha256(raw).hexdigest()
    source = Source(kind="import", detail="test_extract", received_at=NOW)
    (outcome,) = archiver.ingest_many([Incoming(raw, source)])
    assert outcome.status in ("imported", "duplicate")
    archiver.index.refresh()
    service = SearchService(archiver.index, get_tokenizer())

    for query in ("麒麟", "凤凰 底稿", "attachment:清淤", '"麒麟计划"'):
        hits = service.search(query, size=50).hits
        assert sha in [h.id for h in hits], query
    hit = next(h for h in service.search("麒麟").hits if h.id == sha)
    assert "<em>麒麟</em>" in hit.attachment_snippet
    assert sha not in {h.id for h in service.search("subject:麒麟", size=50).hits}

    doc = archiver.index.get_many([sha], ["extract_errors", "extract_failed", "attachments"])[sha]
    assert doc["extract_failed"] is True
    assert [e.split(":")[0] for e in doc["extract_errors"]] == ["损坏.pdf"]
    assert [a["text_chars"] > 0 for a in doc["attachments"]] == [True, True, False]
