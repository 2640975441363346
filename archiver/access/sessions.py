"""Browser sessions: server-side, revocable, with an idle and an absolute timeout.

The cookie carries a random 256-bit session id; the store keeps only its SHA-256, so a copy of
the store (a Redis dump, a replica) holds no session a thief could use. The id is high-entropy,
so a plain hash is enough: nobody can guess ids to try against a leaked hash.

Each session has its own CSRF token (a synchronizer token: random, kept with the session and
handed to the browser at sign-in). We chose that over an HMAC of the session id because it needs
no server-wide secret to configure, share between workers and rotate, it dies with the session,
and a leaked CSRF token says nothing about the session id. On its own it is worthless: it is
only accepted together with the session's cookie.

Expiry is decided here against an injected clock (tests move time instead of sleeping); the
store's own TTLs are only the backstop that removes what nobody looks up again.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from archiver.access.model import Clock, utc_now

if TYPE_CHECKING:
    from archiver.ports import SessionStore

SECRET_BYTES = 32  # 256 bits, for session ids and CSRF tokens


def secret_hash(secret: str) -> str:
    """The stored form of a high-entropy secret (session id, API token): its SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so the time taken says nothing about how much matched."""
    if not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


class SessionRecord(BaseModel):
    """What the store keeps for one session (under the hash of its id)."""

    model_config = ConfigDict(frozen=True)

    username: str
    created_at: datetime
    last_seen: datetime
    csrf_token: str


@dataclass(frozen=True)
class SessionTimeouts:
    idle: timedelta = timedelta(minutes=30)  # refreshed by every use
    absolute: timedelta = timedelta(hours=12)  # from sign-in; never extended

    def __post_init__(self) -> None:
        if self.idle <= timedelta(0) or self.absolute <= timedelta(0):
            raise ValueError("session timeouts must be positive")


@dataclass(frozen=True)
class NewSession:
    """A session just created: the id goes into the cookie and is never seen again here."""

    session_id: str
    record: SessionRecord


@dataclass(frozen=True)
class ActiveSession:
    key: str  # the hash of the id: what revoke and the store know the session by
    record: SessionRecord

    @property
    def username(self) -> str:
        return self.record.username

    @property
    def csrf_token(self) -> str:
        return self.record.csrf_token


class Sessions:
    def __init__(
        self, store: SessionStore, timeouts: SessionTimeouts, clock: Clock = utc_now
    ) -> None:
        self._store = store
        self._timeouts = timeouts
        self._clock = clock

    def create(self, username: str) -> NewSession:
        now = self._clock()
        session_id = secrets.token_urlsafe(SECRET_BYTES)
        record = SessionRecord(
            username=username,
            created_at=now,
            last_seen=now,
            csrf_token=secrets.token_urlsafe(SECRET_BYTES),
        )
        self._store.create(secret_hash(session_id), record, self._ttl(record, now))
        return NewSession(session_id, record)

    def lookup(self, session_id: str) -> ActiveSession | None:
        """The live session with this id, its idle timeout refreshed; None when unknown,
        expired or revoked (an expired one is removed on the way)."""
        if not session_id:
            return None
        key = secret_hash(session_id)
        record = self._store.get(key)
        if record is None:
            return None
        now = self._clock()
        if self._expired(record, now):
            self._store.delete(key)
            return None
        touched = record.model_copy(update={"last_seen": now})
        if not self._store.touch(key, now, self._ttl(touched, now)):
            return None  # revoked between the read and the touch
        return ActiveSession(key, touched)

    def revoke(self, session: ActiveSession) -> None:
        """Sign out: the cookie's id no longer finds anything."""
        self._store.delete(session.key)

    def revoke_all(self, username: str) -> int:
        """End every session of a user (password changed, account disabled); how many."""
        return self._store.delete_user(username)

    def _expired(self, record: SessionRecord, now: datetime) -> bool:
        return (
            now - record.last_seen >= self._timeouts.idle
            or now - record.created_at >= self._timeouts.absolute
        )

    def _ttl(self, record: SessionRecord, now: datetime) -> int:
        """Seconds until the session expires, for the store's TTL backstop (at least 1)."""
        left = min(
            record.last_seen + self._timeouts.idle, record.created_at + self._timeouts.absolute
        )
        return max(1, math.ceil((left - now).total_seconds()))
