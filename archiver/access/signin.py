"""One sign-in for local users and for the people of a directory (LDAP now, OIDC later).

``SignInService`` is both the Authenticator and the PrincipalSource of archiver/ports.py.

Sign-in (``authenticate``), inside one SignInGuard (archiver/access/lockout.py), so every provider
shares the same per-account and per-address lockout:

1. The name is looked up among the users (one read). A local user is checked against its
   Argon2id hash and against nothing else: no provider is ever asked about a local name (the
   safe choice; UserDirectory.shadow_sign_in says why).
2. A shadow account is checked by the provider that owns it, and only by that one.
3. Any other name is tried against the providers in their configured order; the first that
   vouches for it wins. A provider that cannot be reached ends the search with
   BackendUnavailable (not counted as a failure): a later provider must not sign in a name an
   earlier one might own.
4. The Identity a provider answers becomes, or refreshes, the user's shadow account
   (UserDirectory.shadow_sign_in), whose principal is returned.

Every refusal of a password, by whichever provider, is the same SignInFailed (the detail, for
the log, says which); a disabled account is AccountDisabled, said only after the right password.
What is not hidden: how long a refusal takes says whether the name was checked locally (an
Argon2id verification) or by a directory (a round trip there); equalising that would cost an
Argon2id hash of every directory sign-in, and which names a directory holds is no secret of
the archive's to keep.
An OIDC provider would be one more IdentityProvider in the list (archiver/access/identity.py):
its callback hands the code where a password goes, and everything here applies unchanged.

``principal`` runs on every API request, so it is served from a small in-process cache (see
PrincipalCache for how stale it may be and why).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from archiver.access.identity import Identity
from archiver.access.lockout import SignInGuard, normalise_username
from archiver.access.model import Principal, Role
from archiver.access.users import LOCAL, User, UserDirectory
from archiver.errors import BackendError, SignInFailed
from archiver.ports import IdentityProvider


class PrincipalCache:
    """Principals by username (None: no such user, or disabled) for `ttl` seconds, at most
    `size` of them (least recently used dropped first), and every role by name for as long.

    Why a cache, and why this one: resolving a principal reads the user and lists and reads
    every custom role (2 + k S3 requests, a few ms each), on every request. Users and roles
    change rarely and by hand; a change must still take effect quickly everywhere, including
    in the other API processes, which no in-process invalidation reaches. So entries simply
    expire: a principal served at time t was read from the store at or after t - ttl (an
    entry's expiry is counted from the older of its two reads, the user's and the roles'),
    and a disabled user, a removed role or a role taken away stops working within `ttl`
    seconds (2 by default, MAILVAULT_PRINCIPAL_CACHE_SECONDS; 0 turns the cache off). The
    bound on size bounds memory whatever names requests carry; unknown names are cached as
    None as well, so a client repeating one cannot make every request reach S3."""

    def __init__(
        self, ttl: float, size: int = 4096, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.size = size
        self.monotonic = monotonic
        self._principals: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()
        self._roles: tuple[float, float, dict[str, Role]] | None = None  # (read at, expiry, ...)
        self._lock = threading.Lock()

    def principal(self, name: str) -> tuple[bool, Principal | None]:
        """(True, the principal) when cached and fresh; (False, None) otherwise."""
        now = self.monotonic()
        with self._lock:
            found = self._principals.get(name)
            if found is None or found[0] <= now:
                return False, None
            self._principals.move_to_end(name)
            return True, found[1]

    def roles(self, read: Callable[[], dict[str, Role]]) -> tuple[float, dict[str, Role]]:
        """Every role by name and when it was read: from the cache, or `read` now."""
        now = self.monotonic()
        with self._lock:
            if self._roles is not None and self._roles[1] > now:
                return self._roles[0], self._roles[2]
        roles = read()
        with self._lock:
            self._roles = (now, now + self.ttl, roles)
        return now, roles

    def keep(self, name: str, principal: Principal | None, read_at: float) -> None:
        """Cache what was read from the store at `read_at` (the older read's time)."""
        if self.ttl <= 0:
            return
        with self._lock:
            self._principals[name] = (read_at + self.ttl, principal)
            self._principals.move_to_end(name)
            while len(self._principals) > self.size:
                self._principals.popitem(last=False)

    def forget(self, name: str) -> None:
        with self._lock:
            self._principals.pop(name, None)

    def clear(self) -> None:
        with self._lock:
            self._principals.clear()
            self._roles = None


class SignInService:
    """Authenticator and PrincipalSource over the user directory and the sign-in providers."""

    def __init__(
        self,
        directory: UserDirectory,
        providers: Sequence[IdentityProvider] = (),
        *,
        guard: SignInGuard | None = None,
        cache: PrincipalCache | None = None,
    ) -> None:
        names = [p.name for p in providers]
        if LOCAL in names or len(set(names)) != len(names):
            raise ValueError(f"provider names must be unique and not {LOCAL!r}: {names}")
        self.directory = directory
        self.providers = tuple(providers)
        self.guard = guard or directory.guard
        self.cache = cache or PrincipalCache(ttl=2.0)

    # -- Authenticator -------------------------------------------------------------------------

    def authenticate(self, username: str, password: str, client_address: str) -> Principal:
        """The principal of whoever this password vouches for (see the module's doc): raises
        AddressBlocked / AccountLocked while blocked, SignInFailed for a wrong name or password
        (whichever provider was asked), AccountDisabled for the right password of a disabled
        account, BackendUnavailable (or BackendFailed) when a provider could not answer."""
        return self.guard.attempt(
            username, client_address, lambda: self._sign_in(username, password)
        )

    def _sign_in(self, username: str, password: str) -> Principal:
        name = normalise_username(username)
        read_at = self.cache.monotonic()
        found = self.directory.find(name)
        if (found is not None and found[0].is_local) or (found is None and not self.providers):
            user = self.directory.check_password(found, name, password)
        else:
            identity = self._vouched(username, password, found[0] if found else None)
            user = self.directory.shadow_sign_in(identity)
        return self._principal_of(user, read_at)

    def _vouched(self, username: str, password: str, shadow: User | None) -> Identity:
        """What the provider owning `shadow`, or else the first provider that knows the name,
        says about this password."""
        name = normalise_username(username)[:64]
        if shadow is not None:
            owner = [p for p in self.providers if p.name == shadow.provider]
            if not owner:
                raise SignInFailed(name, f"its provider {shadow.provider!r} is not configured")
            return owner[0].authenticate(username, password)
        refusals: list[str] = []
        for provider in self.providers:
            try:
                return provider.authenticate(username, password)
            except SignInFailed as refused:
                refusals.append(f"{provider.name}: {refused.detail}")
            except BackendError:
                raise  # an earlier provider's silence is no refusal: never ask a later one
        raise SignInFailed(name, "; ".join(refusals))

    # -- PrincipalSource -----------------------------------------------------------------------

    def principal(self, username: str) -> Principal | None:
        """Who the user is now; None for an unknown or disabled user. At most PrincipalCache's
        ttl seconds stale."""
        name = normalise_username(username)
        hit, principal = self.cache.principal(name)
        if hit:
            return principal
        read_at = self.cache.monotonic()
        found = self.directory.find(name)
        if found is None or found[0].disabled:
            self.cache.keep(name, None, read_at)
            return None
        return self._principal_of(found[0], read_at)

    def forget(self, username: str | None = None) -> None:
        """Drop the cached principal of a user (all of them, roles too, when None): for the
        edge that has just changed users or roles in this process, so its own change applies
        at once here (other processes see it within the ttl)."""
        if username is None:
            self.cache.clear()
        else:
            self.cache.forget(normalise_username(username))

    def _principal_of(self, user: User, read_at: float) -> Principal:
        roles_read_at, roles = self.cache.roles(self.directory.roles)
        principal = self.directory.principal(user, roles)
        self.cache.keep(user.username, principal, min(read_at, roles_read_at))
        return principal
