"""API tokens for scripts: `mv_<random>`, shown once, kept only as the SHA-256 of the secret.

A token carries 256 random bits, so a plain SHA-256 is enough: Argon2 and friends slow down
guessing a low-entropy secret (a password) from its hash, but nobody can enumerate 2^256
candidates however fast the hash is — and a fast hash keeps the check on every scripted
request cheap. The record is stored under that hash, so finding a token is one GET.

A token acts for its owner with at most the permissions it was created with, and never more
than the owner has now (Principal.token_permissions intersects them on each request): a user
who loses a role loses it in their tokens as well. Tokens expire (a maximum lifetime is set by
the operator), can be revoked, and are made only from a signed-in session, never by a token,
so a stolen token cannot extend itself.

A token found valid is remembered for `cache_seconds` (the same bound as the principal cache,
archiver/access/signin.py): a scripted client's requests then cost no S3 read each. A revocation
made in this process applies at once; one made in another process within that bound.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timedelta
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from archiver.access.model import Clock, Permission, Principal, utc_now
from archiver.access.sessions import SECRET_BYTES, secret_hash
from archiver.errors import InvalidToken, TokenNotFound
from archiver.ports import JsonStore

TOKEN_PREFIX = "mv_"
_BY_HASH = "api-tokens/by-hash/"
_BY_OWNER = "api-tokens/by-owner/"
_LAST_USED = "api-tokens/last-used/"
_CACHE_SIZE = 4096
ID_CHARS = 16  # the public id: a prefix of the hash (64 bits: unique per owner in practice)


class ApiToken(BaseModel):
    """A token as its owner sees it: never the secret."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str = Field(min_length=1, max_length=100)
    owner: str
    permissions: frozenset[Permission]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def valid_at(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


class NewToken(BaseModel):
    secret: str  # shown once, at creation
    token: ApiToken


def _owner_key(owner: str) -> str:
    return _BY_OWNER + quote(owner, safe="") + "/"


class ApiTokens:
    def __init__(
        self,
        store: JsonStore,
        max_lifetime: timedelta,
        clock: Clock = utc_now,
        last_used_every: timedelta = timedelta(minutes=1),
        cache_seconds: float = 0.0,
    ) -> None:
        self._store = store
        self._max_lifetime = max_lifetime
        self._clock = clock
        # last use is written at most this often per token (and process): not a PUT per request
        self._last_used_every = last_used_every
        self._last_written: dict[str, datetime] = {}
        self._cache_seconds = cache_seconds
        self._valid: dict[str, tuple[float, ApiToken]] = {}  # hash -> (read at, token)

    def create(
        self,
        owner: Principal,
        name: str,
        permissions: frozenset[Permission],
        expires_at: datetime,
    ) -> NewToken:
        now = self._clock()
        if owner.token_permissions is not None:
            raise InvalidToken("tokens are made from a signed-in session, not by another token")
        if not permissions:
            raise InvalidToken("a token needs at least one permission")
        beyond = permissions - owner.permissions
        if beyond:
            names = ", ".join(sorted(beyond))
            raise InvalidToken(f"{owner.username!r} does not have the permissions: {names}")
        if expires_at.tzinfo is None:
            raise InvalidToken("the expiry needs a time zone")
        if expires_at <= now:
            raise InvalidToken("the expiry is in the past")
        if expires_at > now + self._max_lifetime:
            raise InvalidToken(f"tokens live at most {self._max_lifetime.days} days")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
        hashed = secret_hash(secret)
        token = ApiToken(
            id=hashed[:ID_CHARS],
            name=name,
            owner=owner.username,
            permissions=permissions,
            created_at=now,
            expires_at=expires_at,
        )
        # the owner's entry first: a token that exists is always listed, so always revocable
        self._store.put_json(_owner_key(owner.username) + hashed, {})
        self._store.put_json(_BY_HASH + hashed, token.model_dump(mode="json"))
        return NewToken(secret=secret, token=token)

    def authenticate(self, secret: str) -> ApiToken | None:
        """The token this secret is, if it is valid now (its use noted); None otherwise."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        hashed = secret_hash(secret)
        token = self._cached(hashed)
        if token is None:
            found = self._store.get_json(_BY_HASH + hashed)
            if found is None:
                return None
            token = ApiToken.model_validate(found)
            self._remember(hashed, token)
        now = self._clock()
        if not token.valid_at(now):
            return None
        self._note_use(hashed, now)
        return token.model_copy(update={"last_used_at": now})

    def of(self, owner: str) -> list[ApiToken]:
        """The owner's tokens, revoked and expired ones too, newest first."""
        tokens = [t for _, t in self._owned(owner)]
        return sorted(tokens, key=lambda t: t.created_at, reverse=True)

    def revoke(self, owner: str, token_id: str) -> ApiToken:
        for hashed, token in self._owned(owner):
            if token.id == token_id:
                if token.revoked_at is None:
                    token = token.model_copy(update={"revoked_at": self._clock()})
                    stored = token.model_copy(update={"last_used_at": None})
                    self._store.put_json(_BY_HASH + hashed, stored.model_dump(mode="json"))
                self._valid.pop(hashed, None)
                return token
        raise TokenNotFound(owner, token_id)

    def _owned(self, owner: str) -> list[tuple[str, ApiToken]]:
        found = []
        for key in self._store.list_keys(_owner_key(owner)):
            hashed = key.rsplit("/", 1)[-1]
            value = self._store.get_json(_BY_HASH + hashed)
            if value is None:  # creation stopped between the two writes: no token
                continue
            used = self._store.get_json(_LAST_USED + hashed)
            token = ApiToken.model_validate(value)
            if used is not None:
                last_used = datetime.fromisoformat(used["at"])
                token = token.model_copy(update={"last_used_at": last_used})
            found.append((hashed, token))
        return found

    def _cached(self, hashed: str) -> ApiToken | None:
        found = self._valid.get(hashed)
        if found is None or time.monotonic() - found[0] > self._cache_seconds:
            return None
        return found[1]

    def _remember(self, hashed: str, token: ApiToken) -> None:
        if self._cache_seconds <= 0:
            return
        if len(self._valid) >= _CACHE_SIZE:  # bounded: forget the oldest half
            for key, _ in sorted(self._valid.items(), key=lambda kv: kv[1][0])[: _CACHE_SIZE // 2]:
                del self._valid[key]
        self._valid[hashed] = (time.monotonic(), token)

    def _note_use(self, hashed: str, now: datetime) -> None:
        # Kept apart from the token's record: a late write of the last use can never undo a
        # revocation written meanwhile.
        last = self._last_written.get(hashed)
        if last is not None and now - last < self._last_used_every:
            return
        self._store.put_json(_LAST_USED + hashed, {"at": now.isoformat()})
        self._last_written[hashed] = now
