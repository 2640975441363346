"""Run the journaling sink in-process for a test, and a plain "witness" SMTP server that records
exactly what it was sent (to compare with what the archive kept)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller

from archiver.pipeline import Archiver
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
    handler = JournalHandler(archiver, settings, enqueue, threads=8)
    controller = SinkController(handler, settings)
    controller.start()
    try:
        yield settings
    finally:
        controller.stop()
        handler.close()


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
