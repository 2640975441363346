"""A small raw message for tests that only need a subject to match on."""

from __future__ import annotations


def raw_mail(n: int, subject: str, domain: str, body: str = "请尽快处理。") -> bytes:
    return (
        f"From: ops@{domain}\r\nTo: audit@{domain}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{n}@{domain}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()
