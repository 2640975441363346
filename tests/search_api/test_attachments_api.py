"""One attachment of a message, downloaded and as extracted text (real ES and S3): the bytes are
the part's decoded bytes, found by their SHA-256 as the index lists them, named in RFC 5987 form,
never sniffed or shown inline; a reader outside the message's scope gets the same 404 as for a
missing message."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from archiver import bootstrap
from archiver.models import Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.settings import Settings
from search_api.app import create_app
from tests.support.principals import as_role

pytestmark = pytest.mark.services

PDFISH = b"%PDF-1.4 not really a pdf \x00\x01\x02"
NOTES = "会议纪要：预算 300 万元。\n第二行。"


def _raw(marker: str) -> bytes:
    notes = base64.b64encode(NOTES.encode()).decode()
    binary = base64.b64encode(PDFISH).decode()
    return (
        f"Message-ID: <{marker}@attach.test>\r\nFrom: a@example.cn\r\nTo: b@example.cn\r\n"
        f"Subject: attachments {marker}\r\nDate: Mon, 3 Jun 2024 10:00:00 +0800\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n请看附件。\r\n"
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Disposition: attachment; "
        "filename*=UTF-8''%E4%BC%9A%E8%AE%AE%E7%BA%AA%E8%A6%81.txt\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{notes}\r\n"
        "--b1\r\nContent-Type: text/html\r\n"
        'Content-Disposition: attachment; filename="page.html"\r\n\r\n'
        "<script>alert(1)</script><p>hostile</p>\r\n"
        "--b1\r\nContent-Type: application/octet-stream\r\n"
        'Content-Disposition: attachment; filename="blob.bin"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{binary}\r\n--b1--\r\n"
    ).encode()


@pytest.fixture(scope="module")
def message(archiver: Archiver) -> str:
    raw = _raw(uuid.uuid4().hex)
    source = Source(kind="import", detail="attachments-test", received_at=datetime.now(UTC))
    archiver.ingest_many([Incoming(raw, source)])
    archiver.index.refresh()
    return hashlib.sha256(raw).hexdigest()


NOTES_ID = hashlib.sha256(NOTES.encode()).hexdigest()
HTML_ID = hashlib.sha256(b"<script>alert(1)</script><p>hostile</p>").hexdigest()
PDFISH_ID = hashlib.sha256(PDFISH).hexdigest()


def test_an_attachment_downloads_as_its_decoded_bytes_with_a_utf8_name(
    settings: Settings, message: str
) -> None:
    with TestClient(create_app(), headers=as_role(settings, "compliance_officer")) as client:
        notes = client.get(f"/api/messages/{message}/attachments/{NOTES_ID}")
        html = client.get(f"/api/messages/{message}/attachments/{HTML_ID}")
        binary = client.get(f"/api/messages/{message}/attachments/{PDFISH_ID}")
    assert notes.status_code == 200 and notes.content == NOTES.encode()
    disposition = notes.headers["content-disposition"]
    assert disposition.startswith("attachment; ")
    assert f"filename*=UTF-8''{quote('会议纪要.txt')}" in disposition
    assert 'filename="____.txt"' in disposition  # the ASCII fallback keeps what it can
    assert notes.headers["x-content-type-options"] == "nosniff"
    # hostile HTML is a download in a sandbox, never a page of the archive's origin
    assert html.headers["content-disposition"].startswith('attachment; filename="page.html"')
    assert "sandbox" in html.headers["content-security-policy"]
    assert binary.content == PDFISH
    assert binary.headers["x-content-sha256"] == hashlib.sha256(PDFISH).hexdigest()


def test_an_attachments_extracted_text_is_its_own(settings: Settings, message: str) -> None:
    with TestClient(create_app(), headers=as_role(settings, "compliance_officer")) as client:
        notes = client.get(f"/api/messages/{message}/attachments/{NOTES_ID}/text").json()
        html = client.get(f"/api/messages/{message}/attachments/{HTML_ID}/text").json()
        missing = client.get(f"/api/messages/{message}/attachments/{'9' * 64}/text")
    assert notes["filename"] == "会议纪要.txt" and notes["text"] == NOTES
    assert "hostile" in html["text"] and "会议" not in html["text"]
    assert missing.status_code == 404


def test_out_of_scope_is_not_found_like_a_missing_message(settings: Settings, message: str) -> None:
    tagging = bootstrap.tagging(settings)
    assert "department/研发部" not in tagging.message_tags(message)["tags"]
    lead = as_role(settings, "department_lead", departments=["研发部"])
    with TestClient(create_app(), headers=lead) as client:
        hidden = client.get(f"/api/messages/{message}/attachments/{NOTES_ID}")
        nothing = client.get(f"/api/messages/{'0' * 64}/attachments/{NOTES_ID}")
    assert hidden.status_code == nothing.status_code == 404
    assert hidden.json()["error"] == nothing.json()["error"]
