"""Run the journaling sink in-process for a test, and a plain "witness" SMTP server that records
exactly what it was sent (to compare with what the archive kept)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.controller import Controller

from archiver.errors import SpoolSegmentNotFound
from archiver.models import Envelope, Source, SpoolSegment
from archiver.pipeline.archiver import Archiver
from archiver.pipeline.spool import SpoolEntry, decode_segment, encode_segment
from archiver.settings import Settings
from ingest.smtp import Enqueue, JournalHandler, SinkController
from tests.support.postfix import free_port


@contextmanager
def running_sink(
    archiver: Archiver, settings: Settings, enqueue: Enqueue, **overrides: Any
) -> Iterator[Settings]:
    """The sink on a free loopback port; yields its settings (smtp_port set)."""
    settings = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": free_port(), **overrides}
    )
    handler = JournalHandler(archiver, settings, enqueue, committers=2)
    controller = SinkController(handler, settings)
    controller.start()
    try:
        yield settings
    finally:
        controller.stop()
        handler.close()


def smtp_delivery(token: str, *rcpt_to: str) -> tuple[bytes, Source]:
    """A small message carrying token, with the envelope an MTA delivered it under."""
    raw = f"From: a@example.com\r\nSubject: {token}\r\n\r\nbody {token}\r\n".encode()
    envelope = Envelope(mail_from="a@example.com", rcpt_to=list(rcpt_to))
    return raw, Source(kind="smtp", detail=token, received_at=datetime.now(UTC), envelope=envelope)


def spool(archiver: Archiver, *deliveries: tuple[bytes, Source]) -> SpoolSegment:
    """Write a segment as the sink does after accepting these deliveries (no task sent)."""
    entries = [SpoolEntry(raw, source) for raw, source in deliveries]
    return archiver.store.write_spool(encode_segment(entries))


def spooled(archiver: Archiver) -> dict[str, list[tuple[SpoolSegment, SpoolEntry]]]:
    """What the spool holds now (accepted, not yet filed), by message sha256."""
    found: dict[str, list[tuple[SpoolSegment, SpoolEntry]]] = defaultdict(list)
    for segment in archiver.store.spooled():
        try:
            data = archiver.store.read_spool(segment)
        except SpoolSegmentNotFound:
            continue  # filed and dropped since it was listed
        for entry in decode_segment(segment.key, data):
            found[entry.sha256].append((segment, entry))
    return found


@dataclass
class Received:
    mail_from: str
    rcpt_to: list[str]
    data: bytes


@dataclass
class Witness:
    port: int
    messages: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.arrived:
            self.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"witness got {len(self.messages)} of {count} messages")
            return list(self.messages)


@contextmanager
def witness() -> Iterator[Witness]:
    recorder = Witness(free_port())
    controller = Controller(recorder, hostname="127.0.0.1", port=recorder.port)
    controller.start()
    try:
        yield recorder
    finally:
        controller.stop()
