"""Clients that vanish must not affect anyone else's delivery, and a 250 waits for S3.

S3 is reached through a TCP proxy that can hold its answers: a spool write is then known to be
in progress (its request reached S3) for as long as the test likes, so what happens to a
delivery during the write is decided by the test, not by timing."""

from __future__ import annotations

import hashlib
import os
import select
import signal
import smtplib
import socket
import struct
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest

from archiver import bootstrap
from archiver.errors import SpoolStopped
from archiver.models import SpoolSegment
from archiver.pipeline.archiver import Archiver
from archiver.settings import Settings
from ingest.smtp import serve
from tests.support.postfix import free_port
from tests.support.processes import wait_until
from tests.support.smtp_sink import running_sink, spooled
from tests.support.tcpproxy import TcpProxy, proxy

pytestmark = pytest.mark.services

REPLY_TIMEOUT = 15  # seconds a healthy sink may take to answer, at most


class RawSmtp:
    """An SMTP client on a bare socket, to do what well-behaved clients never do."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT)
        self.replies = self.sock.makefile("rb")

    def reply(self) -> int:
        while (line := self.replies.readline())[3:4] == b"-":
            pass
        if not line:
            raise ConnectionError("the sink closed the connection")
        return int(line[:3])

    def command(self, line: bytes) -> int:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def start_data(self, raw: bytes) -> None:
        """Greeting, EHLO, MAIL, RCPT, DATA and the message, all but the final dot."""
        assert self.reply() == 220
        assert self.command(b"EHLO vanishing.example") == 250
        assert self.command(b"MAIL FROM:<a@example.com>") == 250
        assert self.command(b"RCPT TO:<audit@example.com>") == 250
        assert self.command(b"DATA") == 354
        self.sock.sendall(raw)

    def answered(self) -> bool:
        """Whether the sink has said anything (or closed) since the last reply read; replies
        end in CRLF and are read a line at a time, so nothing waits in the reader's buffer."""
        return bool(select.select([self.sock], [], [], 0)[0])

    def close(self) -> None:
        self.replies.close()
        self.sock.close()

    def reset(self) -> None:
        """Close with a TCP reset instead of a FIN (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()


def sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def message(token: str) -> bytes:
    return f"From: a@example.com\r\nSubject: {token}\r\n\r\nbody {token}\r\n".encode()


def deliver_at_once(sink: Settings, token: str) -> None:
    """An ordinary delivery gets its 250 within REPLY_TIMEOUT (smtplib raises otherwise)."""
    with smtplib.SMTP("127.0.0.1", sink.smtp_port, timeout=REPLY_TIMEOUT) as smtp:
        assert smtp.sendmail("a@example.com", ["audit@example.com"], message(token)) == {}


def round_trip(sink: Settings) -> None:
    """A command answered on a new connection: the sink's event loop has handled what was
    already on its sockets (a vanished client's FIN or reset) before answering it."""
    with smtplib.SMTP("127.0.0.1", sink.smtp_port, timeout=REPLY_TIMEOUT) as smtp:
        assert smtp.noop()[0] == 250


@pytest.fixture(scope="module")
def s3(sink_settings: Settings) -> Iterator[TcpProxy]:
    host, port = sink_settings.s3_endpoint.rsplit(":", 1)
    with proxy(host, int(port)) as forwarder:
        yield forwarder


@pytest.fixture(scope="module")
def held_archiver(s3: TcpProxy, sink_settings: Settings) -> Iterator[Archiver]:
    """The module's archive with S3 behind the proxy."""
    archiver = bootstrap.archiver(sink_settings.model_copy(update={"s3_endpoint": s3.address}))
    try:
        yield archiver
    finally:
        archiver.close()


@pytest.fixture
def sent() -> list[SpoolSegment]:
    return []


@pytest.fixture
def sink(
    s3: TcpProxy, held_archiver: Archiver, sink_settings: Settings, sent: list[SpoolSegment]
) -> Iterator[Settings]:
    with running_sink(held_archiver, sink_settings, sent.extend) as settings:
        try:
            yield settings
        finally:
            s3.release()  # closing the sink waits for the writes in flight


def close_after_dot(client: RawSmtp) -> None:
    client.close()


def reset_after_dot(client: RawSmtp) -> None:
    client.reset()


def quit_and_close(client: RawSmtp) -> None:
    client.sock.sendall(b"QUIT\r\n")  # pipelined behind the dot, no reply read
    client.close()


@pytest.mark.parametrize("vanish", [close_after_dot, reset_after_dot, quit_and_close])
def test_a_client_gone_during_the_spool_write_affects_no_other_delivery(
    s3: TcpProxy,
    sink: Settings,
    archiver: Archiver,
    sent: list[SpoolSegment],
    vanish: Callable[[RawSmtp], None],
) -> None:
    # more times than the sink has committers: each must survive
    for _ in range(4):
        token = f"vanish{uuid.uuid4().hex[:10]}"
        s3.hold()
        client = RawSmtp(sink.smtp_port)
        client.start_data(message(token))
        client.sock.sendall(b".\r\n")
        s3.wait_held()  # the delivery is being written to the spool
        vanish(client)
        round_trip(sink)
        s3.release()

        deliver_at_once(sink, f"after-{token}")

        # written, and handed on for filing, although nobody heard the 250
        ((segment, _),) = spooled(archiver)[sha256(message(token))]
        wait_until(lambda key=segment.key: key in {s.key for s in sent}, REPLY_TIMEOUT)


def test_a_client_gone_in_the_middle_of_data_leaves_nothing_and_affects_no_one(
    sink: Settings, archiver: Archiver
) -> None:
    token = f"partial{uuid.uuid4().hex[:10]}"
    raw = message(token)
    for vanish in (RawSmtp.close, RawSmtp.reset):
        client = RawSmtp(sink.smtp_port)
        client.start_data(raw[: len(raw) // 2])
        vanish(client)
        round_trip(sink)

    deliver_at_once(sink, f"after{uuid.uuid4().hex[:10]}")

    kept = [e for entries in spooled(archiver).values() for _, e in entries]
    assert not [e for e in kept if token.encode() in e.raw]


def test_hundreds_of_idle_connections_do_not_delay_a_delivery(sink: Settings) -> None:
    idle = [RawSmtp(sink.smtp_port) for _ in range(300)]
    try:
        for i, client in enumerate(idle):
            assert client.reply() == 220
            if i % 3 == 1:
                assert client.command(b"EHLO idle.example") == 250
            elif i % 3 == 2:
                client.sock.sendall(b"MAIL FROM:<half-a-comm")  # a command never finished

        deliver_at_once(sink, f"beside-idle-{uuid.uuid4().hex[:10]}")
    finally:
        for client in idle:
            client.close()
    deliver_at_once(sink, f"after-idle-{uuid.uuid4().hex[:10]}")


def test_250_is_withheld_while_the_spool_write_is_in_progress(
    s3: TcpProxy, sink: Settings, archiver: Archiver
) -> None:
    raw = message(f"withheld{uuid.uuid4().hex[:10]}")
    s3.hold()
    client = RawSmtp(sink.smtp_port)
    try:
        client.start_data(raw)
        client.sock.sendall(b".\r\n")
        s3.wait_held()
        round_trip(sink)  # the sink is serving others meanwhile

        assert not client.answered()  # S3 has not confirmed the write: no reply yet

        s3.release()

        assert client.reply() == 250  # within REPLY_TIMEOUT
        assert sha256(raw) in spooled(archiver)
    finally:
        client.close()


class Dying(BaseException):
    """Not an Exception: no committer can carry on after it."""


def test_a_spool_that_can_write_nothing_more_stops_the_sink_with_an_error(
    sink_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve() (what `mailvault smtp` runs; SpoolStopped makes it exit 2) answers 451 and
    returns with the error instead of listening on while no delivery can be made durable."""
    settings = sink_settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": free_port()})
    archiver = bootstrap.archiver(settings)

    def dying(data: bytes) -> SpoolSegment:
        raise Dying("the committer's thread is gone")

    monkeypatch.setattr(archiver.store, "write_spool", dying)
    replies: list[int] = []

    def deliver() -> None:
        wait_until(lambda: _listening(settings.smtp_port), REPLY_TIMEOUT)
        with smtplib.SMTP("127.0.0.1", settings.smtp_port, timeout=REPLY_TIMEOUT) as smtp:
            try:
                smtp.sendmail("a@example.com", ["audit@example.com"], message("dying"))
            except smtplib.SMTPDataError as exc:
                replies.append(exc.smtp_code)

    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    client = threading.Thread(target=deliver)
    client.start()
    # Should serve() not return by itself, SIGTERM ends it (and the test fails, not hangs).
    watchdog = threading.Timer(60, os.kill, (os.getpid(), signal.SIGTERM))
    watchdog.start()
    try:
        with pytest.raises(SpoolStopped, match="Dying: the committer's thread is gone"):
            serve(archiver, settings, lambda _: None)
    finally:
        watchdog.cancel()
        client.join(REPLY_TIMEOUT)
        archiver.close()
        for signum, handler in handlers.items():  # serve() installed its own
            signal.signal(signum, handler)
    assert replies == [451]
    assert not _listening(settings.smtp_port)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT).close()
    except OSError:
        return False
    return True
