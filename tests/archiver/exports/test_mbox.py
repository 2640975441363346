"""mboxrd: what write_mboxrd writes, the verifier's split_mboxrd gives back byte for byte."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archiver.exports.mbox import mbox_from_line, write_mboxrd
from archiver.exports.verifier import split_mboxrd
from archiver.mime.mailbox_files import split_mbox

# lines that matter to mboxrd, and line ends of both kinds, among arbitrary bytes
MBOX_LINES = [
    *(b"From x", b"From ", b">From y", b">>From z", b">>>From ", b"From\n", b">", b" From "),
    *(b"\n", b"\r\n", b"\r", b"\n\n", b"From - Mon Jan  1 00:00:00 2024\n"),
]
pieces = st.one_of(st.sampled_from(MBOX_LINES), st.binary(max_size=40))
messages = st.lists(pieces, max_size=20).map(b"".join)


def mbox_of(raws: list[bytes]) -> bytes:
    out = io.BytesIO()
    for raw in raws:
        write_mboxrd(out, raw, "alice@example.com", datetime(2024, 3, 1, tzinfo=UTC))
    return out.getvalue()


@given(st.lists(messages, max_size=8))
def test_messages_split_back_byte_identical(raws: list[bytes]) -> None:
    data = mbox_of(raws)

    assert list(split_mboxrd(io.BytesIO(data))) == raws


@given(messages)
def test_no_line_of_a_written_message_starts_a_message(raw: bytes) -> None:
    data = mbox_of([raw])

    assert data.count(b"\nFrom ") + data.startswith(b"From ") == 1


@pytest.mark.parametrize(
    "raw",
    [b"", b"\n", b"no newline", b"From start", b"a\r\nFrom b\r\n>From c", b"x\n>>From y\n"],
)
def test_edge_messages(raw: bytes) -> None:
    out = io.BytesIO()
    written = write_mboxrd(out, raw, "a@example.com", None)

    assert written == len(out.getvalue())
    assert list(split_mboxrd(io.BytesIO(out.getvalue()))) == [raw]


def test_the_from_line() -> None:
    sent = datetime(2024, 3, 5, 17, 4, 9, tzinfo=timezone(timedelta(hours=8)))

    assert mbox_from_line("li@example.cn", sent) == b"From li@example.cn Tue Mar  5 09:04:09 2024\n"
    assert mbox_from_line("", sent).startswith(b"From MAILER-DAEMON Tue Mar  5 09:04:09 2024")
    assert mbox_from_line("a b@example.com", sent).startswith(b"From MAILER-DAEMON ")
    assert mbox_from_line("x@y\n", sent).startswith(b"From x@y Tue")  # stripped
    assert mbox_from_line("a\x00b@y", sent).startswith(b"From MAILER-DAEMON ")
    assert (
        mbox_from_line("李雷@例子.中国", sent)
        == "From 李雷@例子.中国 Tue Mar  5 09:04:09 2024\n".encode()
    )
    # no date: the same bytes every time (a resumed build writes what an uninterrupted one does)
    assert mbox_from_line("a@b", None) == b"From a@b Thu Jan  1 00:00:00 1970\n"
    assert mbox_from_line("a@b", datetime(2024, 1, 1)) == b"From a@b Mon Jan  1 00:00:00 2024\n"


def test_split_refuses_what_is_not_an_mbox() -> None:
    assert list(split_mboxrd(io.BytesIO(b""))) == []
    with pytest.raises(ValueError, match="not an mbox"):
        list(split_mboxrd(io.BytesIO(b"Subject: x\n\nbody\n")))


def test_split_reads_one_message_at_a_time() -> None:
    big = b"x" * 1000 + b"\n"
    stream = io.BytesIO(mbox_of([big * 50, big * 50, b"last"]))

    split = split_mboxrd(stream)
    assert next(split) == big * 50
    assert stream.tell() < len(stream.getvalue()) * 3 // 4  # the rest is still unread
    assert list(split) == [big * 50, b"last"]


def test_the_archive_imports_an_exported_mbox_back() -> None:
    """`mailvault import` of an exported mbox (its heuristic splitter, made for mbox files from
    anywhere) finds the same messages, byte-identical, for mail as archives hold it."""
    raws = [
        b"From: a@example.com\r\nSubject: crlf\r\n\r\nFrom the top\r\n>From quoted\r\n",
        "From: 李雷 <li@example.cn>\nSubject: 会议\n\n你好\n\nFrom here\n".encode(),
        b"From: c@example.com\nSubject: last\n\nbody\n",
    ]
    lines = io.BytesIO(mbox_of(raws)).readlines()

    entries = list(split_mbox(lines, max_bytes=1 << 20))

    assert [e.raw for e in entries] == raws
    assert all(not e.notes for e in entries)
