"""The sink's fast path for MAIL/RCPT paths gives exactly what aiosmtpd's own parser gives."""

from __future__ import annotations

import pytest
from aiosmtpd.smtp import SMTP

from ingest.smtp import JournalSMTP

PATHS = [
    "<a@b.c>",
    "<a@b.c> SIZE=123 BODY=8BITMIME",
    " <a.b+c@x-y.example.com>  SMTPUTF8",
    "<Boss@Example.com>",
    "<a@b.c>  ",
    "<a@b.c> SIZE=1  ",
    "<a@b.c> X=1\tY=2",
    "\t<a@b.c>\tSIZE=5",
    # not plain: aiosmtpd's parser answers, and the results must still agree
    "a@b.c",
    "<>",
    "<a@b.c>SIZE=1",
    "<a..b@c.d>",
    '<"q r"@x.y>',
    "<a@[1.2.3.4]>",
    "<@relay:a@b.c>",
    "<张三@例子.cn>",
    "<a@b.c",
    "",
]


@pytest.mark.parametrize("limit", [0, 3])
@pytest.mark.parametrize("path", PATHS)
def test_fast_path_agrees_with_aiosmtpd(path: str, limit: int) -> None:
    sink = JournalSMTP.__new__(JournalSMTP)
    sink.local_part_limit = limit

    assert sink._getaddr(path) == SMTP._getaddr(sink, path)
