"""A realistic Exchange Online envelope journal report (the shape Microsoft 365 sends)."""

from __future__ import annotations

INNER = (
    b"Received: from EX01.contoso.com (10.1.2.3) by EX02.contoso.com (10.1.2.4)\r\n"
    b" with Microsoft SMTP Server id 15.2.1118.40; Tue, 4 Mar 2025 09:15:02 +0800\r\n"
    b"From: =?utf-8?B?5byg5LiJ?= <alice@contoso.com>\r\n"
    b"To: Bob <bob@contoso.com>, sales@contoso.com\r\n"
    b"Cc: carol@fabrikam.com\r\n"
    b"Subject: =?utf-8?B?5a2j5bqm5ZCI5ZCM5a6h5om5?=\r\n"
    b"Date: Tue, 4 Mar 2025 09:15:00 +0800\r\n"
    b"Message-ID: <DM6PR11MB4.journal-inner@contoso.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: text/plain; charset="utf-8"\r\n'
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    + "请审批附件中的季度合同。\r\n".encode()
    + b"--\r\n"  # a body line that looks like the start of a delimiter must not cut the part
    + b"Alice\r\n"
)

REPORT_TEXT = (
    b"Sender: alice@contoso.com\r\n"
    b"Subject: =?utf-8?B?5a2j5bqm5ZCI5ZCM5a6h5om5?=\r\n"
    b"Message-Id: <DM6PR11MB4.journal-inner@contoso.com>\r\n"
    b"To: bob@contoso.com\r\n"
    b"To: erin@contoso.com, Expanded: sales@contoso.com\r\n"
    b"To: frank@contoso.com, Expanded: sales@contoso.com\r\n"
    b"Cc: carol@fabrikam.com\r\n"
    b"Bcc: dave@contoso.com\r\n"
    b"Recipient: grace@contoso.com, Forwarded: bob@contoso.com\r\n"
)

BOUNDARY = b"_002_DM6PR11MB4journal_"


def journal_report(inner: bytes = INNER, report_text: bytes = REPORT_TEXT) -> bytes:
    return (
        b"Received: from EX02.contoso.com (10.1.2.4) by journal.archive.example\r\n"
        b" with Microsoft SMTP Server id 15.2.1118.40; Tue, 4 Mar 2025 09:15:03 +0800\r\n"
        b"From: Microsoft Outlook\r\n"
        b" <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.com>\r\n"
        b"To: journal@archive.example\r\n"
        b"Subject: =?utf-8?B?5a2j5bqm5ZCI5ZCM5a6h5om5?=\r\n"
        b"Date: Tue, 4 Mar 2025 09:15:03 +0800\r\n"
        b"Message-ID: <b4f3e1a2-journal-report@contoso.com>\r\n"
        b"X-MS-Exchange-Organization-Journal-Report-Version: 15.0\r\n"
        b"X-MS-Journal-Report:\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="' + BOUNDARY + b'"\r\n'
        b"\r\n"
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Type: text/plain; charset="us-ascii"\r\n'
        b"Content-Transfer-Encoding: 7bit\r\n"
        b"\r\n" + report_text + b"\r\n"
        b"--" + BOUNDARY + b"\r\n"
        b"Content-Type: message/rfc822\r\n"
        b"Content-Disposition: attachment;\r\n"
        b'\tcreation-date="Tue, 04 Mar 2025 01:15:03 GMT";\r\n'
        b'\tmodification-date="Tue, 04 Mar 2025 01:15:03 GMT"\r\n'
        b"\r\n" + inner + b"\r\n"
        b"--" + BOUNDARY + b"--\r\n"
    )
