"""Sign-in limits in the real Redis under a prefix of their own, removed afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from archiver.adapters.redis_limits import RedisSignInLimits
from archiver.settings import Settings


@contextmanager
def throwaway_limits(settings: Settings) -> Iterator[RedisSignInLimits]:
    client = redis.Redis.from_url(settings.redis_url)
    prefix = f"mailvault-test:{uuid.uuid4().hex}:"
    try:
        yield RedisSignInLimits(client, prefix)
    finally:
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
