"""A RedisSessionStore on the real Redis under a prefix of its own, removed afterwards, and a
clock that tests move by hand."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from archiver.adapters.redis_sessions import RedisSessionStore
from archiver.settings import Settings


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@contextmanager
def throwaway_session_store(settings: Settings) -> Iterator[RedisSessionStore]:
    prefix = f"mailvault-test-{uuid.uuid4().hex[:8]}:"
    store = RedisSessionStore.from_url(settings.redis_url, prefix)
    try:
        yield store
    finally:
        keys = list(store.client.scan_iter(match=prefix + "*"))
        if keys:
            store.client.delete(*keys)
        store.client.close()
