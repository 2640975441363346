"""SignInLimits in Redis: a sorted set of failure times per key (a sliding window) and a block
key whose value is when the block ends."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import redis

from archiver.adapters.redis_errors import redis_errors
from archiver.errors import BackendFailed, BackendUnavailable


def _ms(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds() * 1000))


class RedisSignInLimits:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def _failures(self, key: str) -> str:
        return f"{self.prefix}failures:{key}"

    def _block(self, key: str) -> str:
        return f"{self.prefix}block:{key}"

    def add_failure(self, key: str, now: datetime, window: timedelta) -> int:
        name, at = self._failures(key), now.timestamp()
        with redis_errors():
            # one MULTI: concurrent failures each count, none is lost between add and count
            pipe = self.client.pipeline(transaction=True)
            pipe.zadd(name, {uuid.uuid4().hex: at})
            pipe.zremrangebyscore(name, "-inf", at - window.total_seconds())
            pipe.zcard(name)
            pipe.pexpire(name, _ms(window))
            count: int = pipe.execute()[2]
        return count

    def block(self, key: str, until: datetime, now: datetime) -> None:
        with redis_errors():
            pipe = self.client.pipeline(transaction=True)
            pipe.set(self._block(key), repr(until.timestamp()), px=_ms(until - now))
            pipe.delete(self._failures(key))
            pipe.execute()

    def blocked_until(self, key: str, now: datetime) -> datetime | None:
        with redis_errors():
            value = self.client.get(self._block(key))
        if value is None:
            return None
        until = datetime.fromtimestamp(float(value), UTC)
        return until if until > now else None

    def clear(self, key: str) -> None:
        with redis_errors():
            self.client.delete(self._failures(key), self._block(key))

    def health(self) -> dict[str, str]:
        try:
            with redis_errors():
                self.client.ping()
        except (BackendUnavailable, BackendFailed) as exc:
            return {"status": "unavailable", "error": str(exc)}
        return {"status": "ok"}
