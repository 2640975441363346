"""The journaling SMTP sink (``mailvault smtp``): MTAs send a copy of every message here.

Durability contract: ``250`` is answered only once the raw bytes, the envelope record and the
pending mark are in S3 (archiver/reconcile.py: accept_for_indexing). If that fails the answer is
``451`` and the sending MTA keeps the message queued. Parsing and indexing happen afterwards in
the Celery worker, in batches (one archive_batch task per SMTP_BATCH_WINDOW of accepted mail);
the batch waiting to be sent is only an optimisation: when it is lost (Redis down, a crash) the
pending marks let the reconciler index those messages later.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import queue
import secrets
import signal
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session as SmtpSession

from archiver import journal
from archiver.models import Envelope, Source
from archiver.pipeline import Archiver
from archiver.reconcile import accept_for_indexing
from archiver.settings import Settings

log = logging.getLogger(__name__)

Enqueue = Callable[[list[str]], None]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFERRED = "451 4.3.0 Archive storage unavailable, try again later"
NOT_ALLOWED = "550 5.7.1 Client host not allowed to deliver to this archive"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"


class JournalSMTP(SMTP):
    """aiosmtpd's SMTP with a line limit fit for evidence: a long line is archived, not refused
    (RFC 5321 allows 1000 octets, but real mail breaks that and the archive must keep it)."""

    line_length_limit = 1 << 20


class JournalHandler:
    """aiosmtpd handler hooks. S3 calls block, so they run in a thread pool; the event loop keeps
    serving other connections meanwhile."""

    def __init__(
        self,
        archiver: Archiver,
        settings: Settings,
        enqueue: Enqueue,
        *,
        threads: int | None = None,
    ) -> None:
        self.archiver = archiver
        self.settings = settings
        self.networks: list[Network] = [
            ipaddress.ip_network(n, strict=False) for n in settings.smtp_allowed_networks
        ]
        threads = threads or settings.smtp_store_threads
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="smtp-store")
        # marks are written while the bytes are (see accept_for_indexing); a pool of their own,
        # so a store never waits for a thread its own siblings hold
        self.marks = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="smtp-mark")
        self.batcher = Batcher(enqueue, settings.smtp_batch_window, settings.smtp_batch_size)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.marks.shutdown(wait=True)
        self.batcher.close()

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
        facts = {"queue_id": queue_id, "size": len(raw), "client": _client(session)}
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            stored = await loop.run_in_executor(self.pool, self.store, raw, source)
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
                "sha256": stored[-1],
                "journaled": stored[:-1],
                "recipients": len(envelope.rcpt_tos),
                "result": 250,
                "store_ms": round((time.perf_counter() - start) * 1000, 1),
            },
        )
        # Indexing is the worker's business: handed to the batcher, and a lost send is
        # recovered by the reconciler from the pending marks.
        self.batcher.add(stored)
        return f"250 2.0.0 OK queued as {queue_id}"

    # -- blocking work (thread pool) ----------------------------------------------------------

    def store(self, raw: bytes, source: Source) -> list[str]:
        """Store the message (and, for a journal report, the journaled message first, with the
        reported envelope). Returns the sha256s stored, the delivered message last."""
        report = journal.unwrap(raw) if self.settings.smtp_unwrap_journal else None
        if report is None:
            return [accept_for_indexing(self.archiver, raw, source, self.marks)]
        assert source.envelope is not None
        inner_source = source.model_copy(
            update={
                "detail": f"{source.detail}/journal",
                "envelope": source.envelope.model_copy(
                    update={"mail_from": report.sender, "rcpt_to": report.rcpt_to}
                ),
                "attributes": {**report.attributes(), "journal_report": "inner"},
            }
        )
        inner = accept_for_indexing(self.archiver, report.inner, inner_source, self.marks)
        outer_source = source.model_copy(update={"attributes": {"journal_inner": inner}})
        return [inner, accept_for_indexing(self.archiver, raw, outer_source, self.marks)]

    def allowed(self, session: SmtpSession) -> bool:
        try:
            address = ipaddress.ip_address(_client(session))
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


class Batcher:
    """Gathers accepted sha256s into one indexing task per window (or per `size` messages):
    the worker indexes a batch with one bulk request instead of one task per message."""

    def __init__(self, send: Enqueue, window: float, size: int) -> None:
        self.send = send
        self.window = window
        self.size = max(1, size)
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="smtp-enqueue", daemon=True)
        self._thread.start()

    def add(self, shas: list[str]) -> None:
        for sha256 in shas:
            self._queue.put(sha256)

    def close(self) -> None:
        """Send what is gathered, then stop."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            batch, stop = self._gather(first)
            self._flush(batch)
            if stop:
                return

    def _gather(self, first: str) -> tuple[list[str], bool]:
        batch = [first]
        deadline = time.monotonic() + self.window
        while len(batch) < self.size and (left := deadline - time.monotonic()) > 0:
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _flush(self, batch: list[str]) -> None:
        try:
            self.send(batch)
        except Exception as exc:  # the marks keep the work; the reconciler will do it
            log.warning(
                "could not queue indexing; the reconciler will index these",
                extra={"messages": len(batch), "sha256s": batch[:5], "error": str(exc)},
            )


def _client(session: SmtpSession) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) else str(peer or "")


def _queue_id() -> str:
    """Sortable by time, unique per transaction: milliseconds, then randomness."""
    return f"{int(time.time() * 1000):011X}{secrets.token_hex(3).upper()}"


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
        return AuthResult(success=ok)

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
    """The sink's settings: listen address overrides, and an S3 connection pool as large as the
    stores and marks in flight (urllib3 otherwise drops and reopens the connections beyond it)."""
    updates: dict[str, Any] = {"smtp_host": host, "smtp_port": port}
    updates = {k: v for k, v in updates.items() if v is not None}
    updates["store_threads"] = max(settings.store_threads, 2 * settings.smtp_store_threads)
    return settings.model_copy(update=updates)


def serve(archiver: Archiver, settings: Settings, enqueue: Enqueue) -> None:
    """Run until SIGTERM or SIGINT; in-flight transactions finish before the stores close."""
    handler = JournalHandler(archiver, settings, enqueue)
    controller = SinkController(handler, settings)
    stop = threading.Event()
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
        controller.stop()
        handler.close()
