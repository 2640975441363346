"""Redis client errors as the archive's typed errors, for every Redis adapter."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from archiver.errors import BackendFailed, BackendUnavailable


@contextmanager
def redis_errors() -> Iterator[None]:
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BackendUnavailable("redis", f"{type(exc).__name__}: {exc}") from exc
    except redis.RedisError as exc:  # wrong password, a read-only replica, a bug
        raise BackendFailed("redis", f"{type(exc).__name__}: {exc}") from exc
