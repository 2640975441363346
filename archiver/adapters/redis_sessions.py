"""SessionStore in Redis: one hash per session under the SHA-256 of its id, and a set per user
of their session keys (for revoke_all). The multi-key steps run as Lua scripts, which Redis
executes atomically: a session being touched, created or revoked never half-survives another."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import redis

from archiver.access.sessions import SessionRecord
from archiver.adapters.redis_errors import redis_errors

# KEYS: session, user set. ARGV: ttl, then field/value pairs.
_CREATE = """
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], KEYS[1])
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
"""
# KEYS: session. ARGV: last_seen, ttl. A plain HSET would bring a revoked session back.
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
# KEYS: session. ARGV: user set prefix.
_DELETE = """
local user = redis.call('HGET', KEYS[1], 'username')
redis.call('DEL', KEYS[1])
if user then redis.call('SREM', ARGV[1] .. user, KEYS[1]) end
"""
# KEYS: user set. Entries whose sessions expired already are gone: not counted.
_DELETE_USER = """
local n = 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do n = n + redis.call('DEL', key) end
redis.call('DEL', KEYS[1])
return n
"""


class RedisSessionStore:
    def __init__(self, client: redis.Redis, prefix: str = "mailvault:") -> None:
        self.client = client
        self._sessions = f"{prefix}session:"
        self._users = f"{prefix}user-sessions:"
        self._create = client.register_script(_CREATE)
        self._touch = client.register_script(_TOUCH)
        self._delete = client.register_script(_DELETE)
        self._delete_user = client.register_script(_DELETE_USER)

    @classmethod
    def from_url(cls, url: str, prefix: str = "mailvault:") -> RedisSessionStore:
        return cls(redis.Redis.from_url(url, socket_timeout=5, decode_responses=True), prefix)

    def session_key(self, key: str) -> str:
        """The Redis key a session is kept under (for tests and operators)."""
        return self._sessions + key

    def create(self, key: str, record: SessionRecord, ttl_seconds: int) -> None:
        fields = record.model_dump(mode="json")
        pairs = [item for pair in fields.items() for item in pair]
        with redis_errors():
            self._create(
                keys=[self._sessions + key, self._users + record.username],
                args=[ttl_seconds, *pairs],
            )

    def get(self, key: str) -> SessionRecord | None:
        with redis_errors():
            fields = cast(dict[str, Any], self.client.hgetall(self._sessions + key))
        # a hash missing fields is a session revoked mid-touch: treat as gone
        if not fields or set(SessionRecord.model_fields) - set(fields):
            return None
        return SessionRecord.model_validate(fields)

    def touch(self, key: str, last_seen: datetime, ttl_seconds: int) -> bool:
        with redis_errors():
            done = self._touch(
                keys=[self._sessions + key], args=[last_seen.isoformat(), ttl_seconds]
            )
        return bool(done)

    def delete(self, key: str) -> None:
        with redis_errors():
            self._delete(keys=[self._sessions + key], args=[self._users])

    def delete_user(self, username: str) -> int:
        with redis_errors():
            return int(cast(int, self._delete_user(keys=[self._users + username])))
