"""The journaling SMTP sink (``mailvault smtp``): MTAs send a copy of every message here.

Durability contract: ``250`` is answered only once the raw bytes and the envelope are in S3, in
a spool segment (archiver/pipeline/spool.py: deliveries arriving together share one segment, one S3
request). If that fails the answer is ``451`` and the sending MTA keeps the message queued.
Filing and indexing happen afterwards in the Celery worker (archive_spool, one task per
SMTP_BATCH_WINDOW of segments); the task waiting to be sent is only an optimisation: when it is
lost (Redis down, a crash) the reconciler files the segments left in the spool.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import queue
import random
import re
import signal
import ssl
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, syntax
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session as SmtpSession

from archiver.errors import SpoolStopped
from archiver.mime import journal
from archiver.models import Envelope, Source, SpoolSegment
from archiver.pipeline.archiver import Archiver
from archiver.pipeline.spool import GroupCommit, SpoolEntry
from archiver.settings import Settings

log = logging.getLogger(__name__)

Enqueue = Callable[[list[SpoolSegment]], None]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFERRED = "451 4.3.0 Archive storage unavailable, try again later"
NOT_ALLOWED = "550 5.7.1 Client host not allowed to deliver to this archive"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
_STOP_GRACE = 10.0  # seconds a stopping sink waits for the replies of deliveries in flight


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# <local@domain> with optional parameters: what every MTA sends in MAIL and RCPT
_PLAIN_PATH = re.compile(
    rf"[ \t]*<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>"
    r"(?:[ \t]+(.*))?\Z"
)


class JournalSMTP(SMTP):
    """aiosmtpd's SMTP with a line limit fit for evidence: a long line is archived, not refused
    (RFC 5321 allows 1000 octets, but real mail breaks that and the archive must keep it).

    Two internals of aiosmtpd have no public equivalent: the connection's StreamReader
    (`_reader`) and the path parser `_getaddr`; pyproject.toml pins the versions they are known
    in, and tests/ingest/smtp/test_aiosmtpd_internals.py says so when they change."""

    line_length_limit = 1 << 20
    event_handler: JournalHandler

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA with the body read in large pieces instead of line by line (its line
        loop took about a third of the sink's CPU on ordinary mail). The same content: RFC 5321
        dot-unstuffing, 552 beyond the size limit; lines of any length are kept. A connection
        lost meanwhile cancels this (aiosmtpd then closes the writer)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None and self.session is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content = await read_data(self._reader, self.data_size_limit)
        envelope, self.envelope = self.envelope, SmtpEnvelope()  # the next transaction's
        if content is None:
            await self.push("552 Error: Too much mail data")
            return
        envelope.content = envelope.original_content = content
        with self.event_handler.transaction():
            await self.push(await self.event_handler.handle_DATA(self, self.session, envelope))

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """A plain <local@domain> path without aiosmtpd's full RFC 5322 parse, which costs about
        a tenth of the sink's CPU (it also builds a class per call); anything else goes to it."""
        match = _PLAIN_PATH.match(arg)
        local = match[1].rpartition("@")[0] if match else ""
        if match is None or (self.local_part_limit and len(local) > self.local_part_limit):
            return super()._getaddr(arg)
        return match[1], match[2] or ""


_END_OF_DATA = b"\r\n.\r\n"


async def read_data(reader: asyncio.StreamReader, limit: int | None) -> bytes | None:
    """The message after DATA, up to the line holding a lone dot, with the dots that start a
    line removed (RFC 5321 4.5.2); None when it exceeds limit (read to its end regardless, so
    the session can go on). Searching for ".<CRLF>" (C speed) skips most lines at once."""
    received = bytearray(b"\r\n")  # the DATA command's line end: a lone dot may come first
    end = len(_END_OF_DATA)
    dropped = 0  # bytes of a message already known to be too large, not kept
    while not received.endswith(_END_OF_DATA):
        try:
            piece = await reader.readuntil(b".\r\n")
        except asyncio.LimitOverrunError as exc:  # megabytes without ".<CRLF>" (attachments)
            piece = await reader.read(exc.consumed)
        received += piece
        if limit and dropped + len(received) - end > limit + end:  # too large, end mark or not
            dropped += len(received) - end
            del received[:-end]
    if limit and dropped + len(received) - end > limit:
        return None
    return bytes(received[:-3].replace(b"\r\n.", b"\r\n")[2:])


class JournalHandler:
    """aiosmtpd handler hooks. Accepted deliveries are group-committed to the spool by threads
    (S3 calls block); the event loop keeps serving other connections meanwhile."""

    def __init__(
        self,
        archiver: Archiver,
        settings: Settings,
        enqueue: Enqueue,
        *,
        committers: int | None = None,
        on_stopped: Callable[[SpoolStopped], None] | None = None,
    ) -> None:
        self.settings = settings
        self.networks = _networks(settings.smtp_allowed_networks)
        self.journal_senders = {_reverse_path(a) for a in settings.smtp_journal_senders}
        self.journal_networks = _networks(settings.smtp_journal_networks)
        self.spool = GroupCommit(
            archiver.store.write_spool,
            committers=committers or settings.smtp_spool_committers,
            linger=settings.smtp_spool_linger,
            on_stopped=on_stopped,
        )
        self.batcher = Batcher(
            enqueue,
            settings.smtp_batch_window,
            settings.smtp_batch_size,
            back_to_back=settings.smtp_hold_filing_back_to_back,
            max_hold=settings.smtp_hold_filing_max,
            inline_bytes=settings.smtp_inline_bytes,
        )
        # when each connection last had a 250 (gone with the connection)
        self._answered: weakref.WeakKeyDictionary[SmtpSession, float] = weakref.WeakKeyDictionary()
        self._delivering: set[asyncio.Task[str]] = set()  # see handle_DATA
        self._replying = 0  # transactions between their final dot and their reply
        self._replied = threading.Condition()

    def close(self) -> None:
        self.spool.close()
        self.batcher.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Around a transaction's DATA hook and its reply, for wait_replied."""
        with self._replied:
            self._replying += 1
        try:
            yield
        finally:
            with self._replied:
                self._replying -= 1
                self._replied.notify_all()

    def wait_replied(self, timeout: float) -> bool:
        """Until no transaction awaits its reply (false after timeout): stopping then drops no
        250 already earned, and no 451 an MTA should hear."""
        with self._replied:
            return self._replied.wait_for(lambda: self._replying == 0, timeout)

    # -- hooks (aiosmtpd calls these by name) -------------------------------------------------

    async def handle_EHLO(
        self,
        server: SMTP,
        session: SmtpSession,
        envelope: SmtpEnvelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        # aiosmtpd reads commands one at a time from a stream, so pipelined commands already
        # work; it just does not say so.
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(
        self,
        server: SMTP,
        session: SmtpSession,
        envelope: SmtpEnvelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if not self.allowed(session):
            log.warning("smtp client refused", extra={"client": _client(session)})
            return NOT_ALLOWED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        answered = self._answered.get(session)
        if answered is not None:
            self.batcher.next_mail_after(time.monotonic() - answered)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: SmtpSession,
        envelope: SmtpEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not self.allowed(session):
            return NOT_ALLOWED
        if len(envelope.rcpt_tos) >= self.settings.smtp_max_recipients:
            return TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: SmtpEnvelope) -> str:
        raw: bytes = envelope.original_content or b""
        queue_id = _queue_id()
        source = Source(
            kind="smtp",
            detail=queue_id,
            received_at=datetime.now(UTC),
            envelope=Envelope(
                mail_from=envelope.mail_from or "",
                rcpt_to=list(envelope.rcpt_tos),
                client_address=_client(session),
                helo=session.host_name or "",
                tls=session.ssl is not None,
            ),
        )
        entries = self.entries(raw, source)
        # Shielded: a client that vanishes now cancels this hook, not its delivery, which is
        # being written anyway; it is logged and handed on for filing like any other.
        delivery = asyncio.ensure_future(self._deliver(entries, session))
        self._delivering.add(delivery)
        delivery.add_done_callback(self._delivering.discard)
        return await asyncio.shield(delivery)

    async def _deliver(self, entries: list[SpoolEntry], session: SmtpSession) -> str:
        """Spool the entries; the reply for the delivery."""
        source = entries[-1].source
        facts = {
            "queue_id": source.detail,
            "size": len(entries[-1].raw),
            "client": _client(session),
        }
        start = time.perf_counter()
        try:
            segment = await asyncio.wrap_future(self.spool.submit(entries))
        except Exception as exc:  # any storage failure: the sender must keep the message
            log.error(
                "smtp message deferred",
                extra={**facts, "result": 451, "error": f"{type(exc).__name__}: {exc}"},
            )
            return DEFERRED
        log.info(
            "smtp message accepted",
            extra={
                **facts,
                "sha256": entries[-1].sha256,
                "journaled": [e.sha256 for e in entries[:-1]],
                "recipients": len(source.envelope.rcpt_to if source.envelope else []),
                "segment": segment.key,
                "result": 250,
                "store_ms": round((time.perf_counter() - start) * 1000, 1),
            },
        )
        # Filing is the worker's business: handed to the batcher, and a lost send is
        # recovered by the reconciler from the spool.
        self.batcher.add(segment, len(entries))
        self._answered[session] = time.monotonic()  # see Batcher: is the MTA queueing?
        return f"250 2.0.0 OK queued as {source.detail}"

    def entries(self, raw: bytes, source: Source) -> list[SpoolEntry]:
        """What to spool for a delivery: the message, and for a journal report from a trusted
        journaling server the journaled message first, with the reported envelope."""
        assert source.envelope is not None
        report = journal.unwrap(raw) if self.settings.smtp_unwrap_journal else None
        if report is not None and not self.journaling_server(source.envelope):
            log.warning(
                "journal report from an untrusted sender kept whole, not unwrapped",
                extra={
                    "queue_id": source.detail,
                    "mail_from": source.envelope.mail_from,
                    "client": source.envelope.client_address,
                },
            )
            report = None
        if report is None:
            return [SpoolEntry(raw, source)]
        inner = SpoolEntry(
            report.inner,
            source.model_copy(
                update={
                    "detail": f"{source.detail}/journal",
                    "envelope": source.envelope.model_copy(
                        update={"mail_from": report.sender, "rcpt_to": report.rcpt_to}
                    ),
                    "attributes": {**report.attributes(), "journal_report": "inner"},
                }
            ),
        )
        outer = source.model_copy(update={"attributes": {"journal_inner": inner.sha256}})
        return [inner, SpoolEntry(raw, outer)]

    def allowed(self, session: SmtpSession) -> bool:
        return _within(_client(session), self.networks)

    def journaling_server(self, envelope: Envelope) -> bool:
        """Whether a journal report delivered under this envelope may be unwrapped: it asserts
        another message's envelope, so only the configured journaling servers are believed.
        Every condition configured must hold (MAIL FROM among SMTP_JOURNAL_SENDERS, the client
        in SMTP_JOURNAL_NETWORKS); with neither configured nobody is."""
        if not self.journal_senders and not self.journal_networks:
            return False
        if self.journal_senders and _reverse_path(envelope.mail_from) not in self.journal_senders:
            return False
        return not self.journal_networks or _within(envelope.client_address, self.journal_networks)


def _networks(cidrs: list[str]) -> list[Network]:
    return [ipaddress.ip_network(n, strict=False) for n in cidrs]


def _within(client: str, networks: list[Network]) -> bool:
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def _reverse_path(address: str) -> str:
    """A MAIL FROM address compared case-insensitively; "<>" (the null sender) is ""."""
    return address.strip().strip("<>").lower()


class Batcher:
    """Gathers written segments into one filing task per window (or per `size` messages): the
    worker files them with one bulk request instead of a task per delivery. Up to
    `inline_bytes` of each batch's segments travel inside its tasks (the worker need not read
    them back); the memory a long hold keeps is bounded by it too.

    Accepting comes first. While the MTAs have queues for the sink, the tasks are held back,
    for at most `max_hold` seconds: on a shared machine indexing would take the CPU that
    accepting needs, the spool keeps the mail safe meanwhile, and the worker files the backlog
    (in full-size tasks) once the burst is over. An MTA with a queue sends its next message the
    moment it has our 250; so the sink is saturated while, over the last window, the median
    time from a 250 to the same connection's next MAIL is under `back_to_back` seconds.
    `back_to_back` 0 never holds."""

    def __init__(
        self,
        send: Enqueue,
        window: float,
        size: int,
        *,
        back_to_back: float = 0.0,
        max_hold: float = 0.0,
        inline_bytes: int = 0,
    ) -> None:
        self.send = send
        self.inline_bytes = inline_bytes
        self.window = window
        self.size = max(1, size)
        self.back_to_back = back_to_back
        self.max_hold = max_hold
        self._gaps: deque[tuple[float, float]] = deque()  # (when, seconds from 250 to MAIL)
        self._gaps_lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[SpoolSegment, int] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="smtp-enqueue", daemon=True)
        self._thread.start()

    def add(self, segment: SpoolSegment, messages: int) -> None:
        self._queue.put((segment, messages))

    def next_mail_after(self, seconds: float) -> None:
        """A connection sent MAIL this long after its previous message's 250."""
        if self.back_to_back:
            with self._gaps_lock:
                self._gaps.append((time.monotonic(), seconds))

    def close(self) -> None:
        """Send what is gathered, then stop."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            gathered, stop = self._gather(first)
            for task in _tasks(gathered, self.size):
                self._flush(task)
            if stop:
                return

    def _gather(
        self, first: tuple[SpoolSegment, int]
    ) -> tuple[dict[str, tuple[SpoolSegment, int]], bool]:
        gathered: dict[str, tuple[SpoolSegment, int]] = {}
        messages, since, inline = 0, time.monotonic(), 0
        item: tuple[SpoolSegment, int] | None = first
        deadline = since + self.window
        while True:
            if item is not None:
                if item[0].key not in gathered:  # bytes beyond the budget: the worker reads S3
                    inline += len(item[0].data or b"")
                    if inline > self.inline_bytes:
                        item[0].data = None
                known = gathered.get(item[0].key, (item[0], 0))[1]
                gathered[item[0].key] = (item[0], known + item[1])
                messages += item[1]
            left = deadline - time.monotonic()
            if left <= 0 or messages >= self.size:
                if not self._saturated(since):
                    return gathered, False
                if left <= 0:
                    deadline = time.monotonic() + self.window
                    left = self.window
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                item = None
                continue
            if item is None:
                return gathered, True

    def _saturated(self, holding_since: float) -> bool:
        now = time.monotonic()
        if not self.back_to_back or now - holding_since >= self.max_hold:
            return False
        with self._gaps_lock:
            while self._gaps and self._gaps[0][0] < now - self.window:
                self._gaps.popleft()
            gaps = sorted(gap for _, gap in self._gaps)
        return len(gaps) >= 2 and gaps[len(gaps) // 2] < self.back_to_back

    def _flush(self, batch: list[SpoolSegment]) -> None:
        try:
            self.send(batch)
        except Exception as exc:  # the spool keeps the work; the reconciler will file it
            log.warning(
                "could not queue filing; the reconciler will file these",
                extra={"segments": [s.key for s in batch][:5], "error": str(exc)},
            )


def _tasks(gathered: dict[str, tuple[SpoolSegment, int]], size: int) -> list[list[SpoolSegment]]:
    """The segments in tasks of at most `size` messages (a segment is never split)."""
    tasks: list[list[SpoolSegment]] = [[]]
    filled = 0
    for segment, count in gathered.values():
        if tasks[-1] and filled + count > size:
            tasks.append([])
            filled = 0
        tasks[-1].append(segment)
        filled += count
    return tasks


def _client(session: SmtpSession) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) else str(peer or "")


def _queue_id() -> str:
    """Sortable by time, unique per transaction: milliseconds, then randomness (not secret: a
    label for log lines, so the cheap generator)."""
    return f"{int(time.time() * 1000):011X}{random.getrandbits(24):06X}"


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.smtp_tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.smtp_tls_cert, settings.smtp_tls_key)
    return context


def authenticator(settings: Settings) -> Callable[..., AuthResult] | None:
    if not settings.smtp_auth_user:
        return None
    user = settings.smtp_auth_user.encode()
    password = settings.smtp_auth_password.encode()

    def check(
        server: SMTP, session: SmtpSession, envelope: SmtpEnvelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and hmac.compare_digest(data.login, user)
            and hmac.compare_digest(data.password, password)
        )
        # handled=False: aiosmtpd answers the failure (535); its default, True, means the
        # authenticator has answered already, and the client would wait for a reply forever.
        return AuthResult(success=ok, handled=False)

    return check


def smtp_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiosmtpd's SMTP: limits, SMTPUTF8, STARTTLS, AUTH."""
    context = tls_context(settings)
    auth = authenticator(settings)
    return {
        "data_size_limit": settings.max_message_bytes,  # announced as SIZE; 552 beyond
        "enable_SMTPUTF8": True,
        "decode_data": False,  # bytes as sent (also makes aiosmtpd announce 8BITMIME)
        "hostname": settings.smtp_hostname or None,
        "tls_context": context,
        "require_starttls": settings.smtp_require_tls,
        "authenticator": auth,
        "auth_required": auth is not None,
        # AUTH only over TLS when TLS is configured; on a loopback-only sink without a
        # certificate it may be used in the clear.
        "auth_require_tls": context is not None,
    }


class SinkController(Controller):
    """Runs the sink's event loop in a thread (the CLI and the tests use it)."""

    def __init__(self, handler: JournalHandler, settings: Settings, **kwargs: Any) -> None:
        options = smtp_options(settings)
        super().__init__(
            handler,
            hostname=settings.smtp_host,  # the listen address; the announced name is below
            port=settings.smtp_port,
            server_hostname=options.pop("hostname"),
            **options,
            **kwargs,
        )

    def factory(self) -> SMTP:
        return JournalSMTP(self.handler, **self.SMTP_kwargs)


def sink_settings(
    settings: Settings, *, host: str | None = None, port: int | None = None
) -> Settings:
    """The sink's settings with listen address overrides."""
    updates: dict[str, Any] = {"smtp_host": host, "smtp_port": port}
    return settings.model_copy(update={k: v for k, v in updates.items() if v is not None})


def serve(archiver: Archiver, settings: Settings, enqueue: Enqueue) -> None:
    """Run until SIGTERM or SIGINT; in-flight transactions finish before the stores close.
    Raises SpoolStopped when the spool can make nothing durable any more: better no sink (MTAs
    keep the mail queued, a supervisor sees the exit) than one that leaves them waiting."""
    stop = threading.Event()
    stopped: list[SpoolStopped] = []

    def spool_stopped(error: SpoolStopped) -> None:
        stopped.append(error)
        stop.set()

    handler = JournalHandler(archiver, settings, enqueue, on_stopped=spool_stopped)
    controller = SinkController(handler, settings)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    controller.start()
    log.info(
        "smtp sink listening",
        extra={"host": settings.smtp_host, "port": settings.smtp_port},
    )
    try:
        stop.wait()
    finally:
        handler.wait_replied(_STOP_GRACE)
        controller.stop()  # drops the connections
        handler.close()
    if stopped:
        raise stopped[0]
