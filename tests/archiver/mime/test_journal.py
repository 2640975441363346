"""Exchange / Microsoft 365 journal reports are unwrapped byte-exact with their real envelope."""

from __future__ import annotations

from archiver.mime.journal import unwrap
from tests.support.journal_report import INNER, REPORT_TEXT, journal_report


def test_unwraps_the_attached_message_byte_exact_with_the_reported_envelope() -> None:
    report = unwrap(journal_report())

    assert report is not None
    assert report.inner == INNER
    assert report.sender == "alice@contoso.com"
    assert report.message_id == "<DM6PR11MB4.journal-inner@contoso.com>"
    assert report.rcpt_to == [
        "bob@contoso.com",
        "erin@contoso.com",
        "frank@contoso.com",
        "carol@fabrikam.com",
        "dave@contoso.com",
        "grace@contoso.com",
    ]
    assert report.attributes() == {
        "journal_bcc": "dave@contoso.com",
        "journal_expanded": (
            "erin@contoso.com<sales@contoso.com,frank@contoso.com<sales@contoso.com"
        ),
        "journal_forwarded": "grace@contoso.com<bob@contoso.com",
    }


def test_lf_line_endings_and_an_unmarked_report_with_a_message_id_are_recognised() -> None:
    raw = journal_report().replace(b"X-MS-Journal-Report:\r\n", b"").replace(b"\r\n", b"\n")

    report = unwrap(raw)

    assert report is not None
    assert report.inner == INNER.replace(b"\r\n", b"\n")
    assert "dave@contoso.com" in report.rcpt_to


def test_ordinary_mail_and_forwarded_attachments_are_not_reports() -> None:
    assert unwrap(INNER) is None
    forwarded = journal_report(report_text=b"Sender: someone@example.com\r\nFYI\r\n")
    assert unwrap(forwarded.replace(b"X-MS-Journal-Report:\r\n", b"")) is None
    assert unwrap(journal_report(report_text=b"no envelope lines here\r\n")) is None


def test_report_text_lines_are_read_whatever_the_transfer_encoding() -> None:
    import base64

    encoded = base64.encodebytes(REPORT_TEXT).replace(b"\n", b"\r\n")
    raw = journal_report(report_text=encoded).replace(
        b"Content-Transfer-Encoding: 7bit", b"Content-Transfer-Encoding: base64"
    )

    report = unwrap(raw)

    assert report is not None and "dave@contoso.com" in report.rcpt_to
