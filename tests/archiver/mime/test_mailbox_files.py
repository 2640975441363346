"""Where an mbox splits, and what counts as mail: pure functions over byte lines."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.mime.mailbox_files import (
    OLE_MAGIC,
    looks_like_mail,
    mbox_date,
    split_mbox,
    starts_mbox,
)

LIMIT = 50 * 1024 * 1024


def _split(data: bytes, max_bytes: int = LIMIT) -> list[tuple[bytes | None, tuple[str, ...]]]:
    return [
        (e.raw, e.notes) for e in split_mbox(data.splitlines(keepends=True), max_bytes=max_bytes)
    ]


def _message(n: int) -> bytes:
    return f"From: a{n}@example.cn\nSubject: 第{n}封\n\nbody {n}\n".encode()


SEPARATORS = {
    "asctime": (b"From alice@example.com Mon Jan  1 10:00:00 2024", "2024-01-01T10:00:00+00:00"),
    "gmail takeout": (
        b"From 1234567890123456789@xxx Mon Jan 01 00:00:00 +0000 2024",
        "2024-01-01T00:00:00+00:00",
    ),
    "thunderbird": (b"From - Tue Mar 01 10:00:00 2022", "2022-03-01T10:00:00+00:00"),
    "rfc 2822": (
        b"From zhang@example.cn  Tue, 1 Mar 2022 10:00:00 +0800",
        "2022-03-01T02:00:00+00:00",
    ),
    "address with spaces": (
        b"From zvfjenphuq@[1086695621] [ufa]  Sun Aug  5 09:51:15 2001",
        "2001-08-05T09:51:15+00:00",
    ),
}


@pytest.mark.parametrize("style", sorted(SEPARATORS))
def test_each_separator_style_splits_and_dates(style: str) -> None:
    line, date = SEPARATORS[style]
    data = b"".join(line + b"\n" + _message(n) + b"\n" for n in range(4))
    entries = list(split_mbox(data.splitlines(keepends=True), max_bytes=LIMIT))
    assert [e.raw for e in entries] == [_message(n) for n in range(4)]
    assert [e.number for e in entries] == [1, 2, 3, 4]
    assert all(e.received is not None and e.received.isoformat() == date for e in entries)
    assert all(e.notes == () for e in entries)


def test_separators_of_mixed_styles_in_one_file_all_split() -> None:
    data = b"".join(
        line + b"\n" + _message(n) + b"\n" for n, (line, _) in enumerate(SEPARATORS.values())
    )
    assert [raw for raw, _ in _split(data)] == [_message(n) for n in range(len(SEPARATORS))]


def test_body_line_from_here_on_after_a_blank_line_does_not_split() -> None:
    message = b"From: a@example.com\nSubject: s\n\nintro\n\nFrom here on, things change.\nok\n"
    assert _split(b"From a Mon Jan  1 10:00:00 2024\n" + message) == [(message, ())]


def test_dated_from_line_without_a_header_block_is_kept_and_noted() -> None:
    message = b"Subject: s\n\nquoted:\n\nFrom bob@example.com Mon Jan  1 10:00:00 2024\nhi bob\n"
    [(raw, notes)] = _split(b"From a Mon Jan  1 10:00:00 2024\n" + message)
    assert raw == message
    assert notes == (
        "line 6 looks like an mbox separator but has no header block after it: "
        "kept inside this message",
    )


def test_dated_from_line_without_a_blank_line_before_is_kept_and_noted() -> None:
    message = b"Subject: s\n\ntext\nFrom b@example.com Mon Jan  1 10:00:00 2024\nSubject: t\n"
    [(raw, notes)] = _split(b"From a Mon Jan  1 10:00:00 2024\n" + message)
    assert raw == message
    assert len(notes) == 1 and "no blank line before it" in notes[0]


def test_undated_separator_splits_but_is_noted() -> None:
    data = b"From a Mon Jan  1 10:00:00 2024\n" + _message(1) + b"\nFrom nobody\n" + _message(2)
    (first, no_notes), (second, notes) = _split(data)
    assert (first, second, no_notes) == (_message(1), _message(2), ())
    assert len(notes) == 1 and "has no date" in notes[0]


def test_text_before_the_first_from_line_is_kept_and_noted() -> None:
    [(raw, notes)] = _split(b"stray\n" + b"From a Mon Jan  1 10:00:00 2024\n" + _message(1))
    assert raw is not None and raw.startswith(b"stray\n") and raw.endswith(_message(1))
    assert notes[0] == "the mbox does not start with a 'From ' line"
    assert "line 2 looks like an mbox separator but has no blank line before it" in notes[1]


def test_oversized_message_has_no_bytes_but_its_neighbours_do() -> None:
    data = b"From a Mon Jan  1 10:00:00 2024\nSubject: big\n\n" + b"y" * 5000 + b"\n\n"
    data += b"From b Mon Jan  1 10:00:00 2024\n" + _message(2)
    assert [raw for raw, _ in _split(data, max_bytes=1000)] == [None, _message(2)]


def test_mbox_date_is_none_without_a_date() -> None:
    assert mbox_date(b"From here on, things change.\n") is None
    assert mbox_date(b"From x Mon Foo 99 99:99:99 2024\n") is None


@pytest.mark.parametrize(
    ("head", "mail"),
    [
        (b"Return-Path: <a@example.com>\nSubject: x\n\nbody\n", True),
        (b"From a@[1.2.3.4] [x]  Sun Aug  5 09:51:15 2001\nReturn-Path: <a@b>\n\nx\n", True),
        (b"Received: from x\n\tby y\nX-Copyright(C): 2002\n>Received: damaged\nTo: a\n\nb\n", True),
        (OLE_MAGIC + b"\x00" * 100, True),
        (b'{"id":"00247","text":"From ilug-admin@linux.ie  Tue Aug  6 11:52:20 2002\\n"}', False),
        (b"/**\n* @license Apache-2.0\n*/\n'use strict';\nmodule.exports = [];\n", False),
        (b"Title: notes\nAuthor: me\n\nnot mail: no mail header\n", False),
        (b"From here on, plain text.\nNothing else.\n", False),
        (b"", False),
    ],
)
def test_looks_like_mail_decides_by_content(head: bytes, mail: bool) -> None:
    assert looks_like_mail(head) is mail


def test_starts_mbox_needs_a_header_block_after_the_from_line() -> None:
    assert starts_mbox(b"From - Tue Mar 01 10:00:00 2022\nSubject: s\n\nb\n")
    assert not starts_mbox(b"From here on, plain text.\nNothing else.\n")
    assert not starts_mbox(b"Subject: s\n\nb\n")


# -- round trip: anything written as mboxrd splits back byte for byte --------------------------

_QUOTABLE = re.compile(rb"^>*From ")


def _mboxrd(messages: list[bytes], separator: bytes) -> Iterator[bytes]:
    """An mboxrd writer (each message ends in a line break; one more '>' on ">*From " lines)."""
    for raw in messages:
        yield separator
        for line in raw.splitlines(keepends=True):
            yield b">" + line if _QUOTABLE.match(line) else line
        yield b"\r\n" if raw.endswith(b"\r\n") else b"\n"


_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30)
_body_line = st.one_of(
    _text,
    st.sampled_from(
        ["", "From here on", ">From quoted", ">>From deeper", "From x Mon Jan  1 1:00:00 2024"]
    ),
    _text.map(lambda t: "From " + t),
)
_field = st.tuples(st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,15}\Z"), _text).map(
    lambda nv: f"{nv[0]}: {nv[1]}"
)


@st.composite
def _messages(draw: st.DrawFn) -> bytes:
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    header = draw(st.lists(_field, min_size=1, max_size=5))
    body = draw(st.lists(_body_line, max_size=8))
    # A header block may include "From sender date" lines too: the writer quotes them.
    return eol.join([*header, "", *body, ""]).encode()


@settings(max_examples=300, deadline=None)
@given(st.lists(_messages(), max_size=6), st.sampled_from([s for s, _ in SEPARATORS.values()]))
def test_mboxrd_round_trips_byte_for_byte(messages: list[bytes], separator: bytes) -> None:
    lines = list(_mboxrd(messages, separator + b"\n"))
    entries = list(split_mbox(lines, max_bytes=LIMIT))
    assert [e.raw for e in entries] == messages
    assert all(e.notes == () for e in entries)
