"""The Celery broker in Redis, as the Status page sees it: reachable, queue lengths, memory."""

from __future__ import annotations

from typing import Any

import redis

from archiver.adapters.redis_errors import redis_errors

# kombu's Redis transport keeps a queue's priorities in lists of their own, "<queue>\x06\x16<p>"
# for each of its default priority steps but 0 (which is the queue's own name)
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)


class RedisBroker:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def health(self) -> dict[str, Any]:
        try:
            self.client.ping()
        except redis.RedisError as exc:
            return {"status": "unavailable", "error": f"{type(exc).__name__}: {exc}"}
        return {"status": "ok"}

    def queue_length(self, queue: str) -> int:
        names = [queue, *(f"{queue}{_PRIORITY_SEPARATOR}{p}" for p in _PRIORITY_STEPS)]
        with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.llen(name)
            return sum(int(n) for n in pipe.execute())

    def memory_bytes(self) -> int:
        with redis_errors():
            info: dict[str, Any] = self.client.info("memory")
        return int(info["used_memory"])
