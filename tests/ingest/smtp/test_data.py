"""The sink's DATA reader: the same content as aiosmtpd's line-by-line loop (RFC 5321 4.5.2),
with the stream limit small so the long-line path runs too. Pure asyncio, no services."""

from __future__ import annotations

import asyncio

import pytest

from ingest.smtp import read_data

BODIES = [
    b"",
    b"Subject: s\r\n\r\nbody\r\n",
    b"ends with a sentence.\r\nand another.\r\n",
    b".leading dot\r\n..two dots\r\n.\r\n...\r\n",
    b"no final line end",
    b"bare\nline\n.feeds\n",
    b"x" * 500 + b".\r\n" + b"y" * 300,  # longer than the stream limit, ".<CRLF>" inside
    b"\r\n\r\n.\r\n",
    "8-bit 中文 body.\r\n".encode(),
]
STREAM_LIMIT = 64


def stuff(body: bytes) -> bytes:
    """What a client sends: each line starting with a dot gets another, then the end mark."""
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    lines = body.split(b"\r\n")[:-1] if body else []
    return b"".join((b"." if line.startswith(b".") else b"") + line + b"\r\n" for line in lines)


def expected(body: bytes) -> bytes:
    return body if not body or body.endswith(b"\r\n") else body + b"\r\n"


def read(wire: bytes, limit: int | None, then: bytes = b"QUIT\r\n") -> tuple[bytes | None, bytes]:
    async def run() -> tuple[bytes | None, bytes]:
        reader = asyncio.StreamReader(limit=STREAM_LIMIT)
        reader.feed_data(wire + b".\r\n" + then)
        reader.feed_eof()
        content = await read_data(reader, limit)
        return content, await reader.read()

    return asyncio.run(run())


@pytest.mark.parametrize("body", BODIES)
def test_content_is_the_body_as_sent_and_the_next_command_is_left(body: bytes) -> None:
    content, rest = read(stuff(body), limit=None)

    assert content == expected(body)
    assert rest == b"QUIT\r\n"


def test_the_same_bytes_arriving_one_by_one_give_the_same_content() -> None:
    wire = stuff(BODIES[3] + BODIES[6]) + b".\r\nMAIL FROM:<a@b.c>\r\n"

    async def run() -> tuple[bytes | None, bytes]:
        reader = asyncio.StreamReader(limit=STREAM_LIMIT)

        async def trickle() -> None:
            for i in range(len(wire)):
                reader.feed_data(wire[i : i + 1])
                await asyncio.sleep(0)
            reader.feed_eof()

        feeding = asyncio.create_task(trickle())
        content = await read_data(reader, None)
        await feeding
        return content, await reader.read()

    content, rest = asyncio.run(run())
    assert content == expected(BODIES[3] + BODIES[6])
    assert rest == b"MAIL FROM:<a@b.c>\r\n"


@pytest.mark.parametrize(("size", "limit", "refused"), [(100, 100, False), (101, 100, True)])
def test_limit_counts_the_bytes_sent_as_aiosmtpd_does(size: int, limit: int, refused: bool) -> None:
    body = b"a" * (size - 2) + b"\r\n"

    content, rest = read(stuff(body), limit=limit)

    assert (content is None) == refused
    assert rest == b"QUIT\r\n"


def test_a_huge_message_is_refused_and_the_session_goes_on() -> None:
    body = (b"z" * 1000 + b".\r\n") * 2000  # 2 MB, limit 10 kB

    content, rest = read(stuff(body), limit=10_000)

    assert content is None
    assert rest == b"QUIT\r\n"
