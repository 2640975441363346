"""Lockout of accounts and client addresses after repeated failed sign-ins, for every provider.

One ``SignInGuard`` wraps a credential check, whoever does it (the local password, LDAP, OIDC
later): the same counters, thresholds and answers apply however a name signs in, so trying a
password against one provider and then another does not double the attempts an attacker gets.

Failed sign-ins are counted in SignInLimits (Redis) per account and per client address; the
account counter runs for unknown user names as well, so a lockout tells nobody whether a user
exists. Only SignInFailed counts: a directory that cannot be reached (BackendUnavailable) says
nothing about the password, and a disabled account (AccountDisabled) had the right one.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel

from archiver.access.model import Clock, utc_now
from archiver.errors import AccountLocked, AddressBlocked, SignInFailed
from archiver.ports import SignInLimits

T = TypeVar("T")


class LockoutPolicy(BaseModel):
    account_max_failures: int = 5
    account_window: timedelta = timedelta(minutes=15)
    account_lockout: timedelta = timedelta(minutes=15)
    address_max_failures: int = 20
    address_window: timedelta = timedelta(minutes=15)
    address_block: timedelta = timedelta(minutes=15)


def normalise_username(username: str) -> str:
    return username.strip().lower()


def account_key(username: str) -> str:
    name = normalise_username(username)
    if len(name) > 64 or not name.isprintable():  # whatever a client sends, a bounded key
        name = "sha256-" + hashlib.sha256(name.encode()).hexdigest()[:32]
    return f"account:{name}"


def address_key(address: str) -> str:
    try:
        return f"address:{ipaddress.ip_address(address.strip())}"
    except ValueError:
        return "address:sha256-" + hashlib.sha256(address.encode()).hexdigest()[:32]


class SignInGuard:
    """Refuses sign-ins of locked accounts and blocked addresses, counts failures, locks."""

    def __init__(
        self, limits: SignInLimits, policy: LockoutPolicy | None = None, clock: Clock = utc_now
    ) -> None:
        self.limits = limits
        self.policy = policy or LockoutPolicy()
        self.clock = clock

    def attempt(self, username: str, client_address: str, check: Callable[[], T]) -> T:
        """What `check` answers, unless the address or account is blocked.

        Raises AddressBlocked or AccountLocked while too many sign-ins failed recently (even
        before `check` runs: a locked account's password is not tried at all); a SignInFailed
        of `check` is counted and raised again, or becomes AccountLocked when it reaches the
        threshold. Anything else `check` raises passes through uncounted."""
        now = self.clock()
        account, address = account_key(username), address_key(client_address)
        shown = normalise_username(username)[:64]
        if until := self.limits.blocked_until(address, now):
            raise AddressBlocked(client_address, until)
        if until := self.limits.blocked_until(account, now):
            self._count_address_failure(address, now)
            raise AccountLocked(shown, until)
        try:
            result = check()
        except SignInFailed:
            self._count_address_failure(address, now)
            failures = self.limits.add_failure(account, now, self.policy.account_window)
            if failures >= self.policy.account_max_failures:
                until = now + self.policy.account_lockout
                self.limits.block(account, until, now)
                raise AccountLocked(shown, until) from None
            raise
        self.limits.clear(account)
        return result

    def lock_status(self, username: str) -> datetime | None:
        """When the account's lockout ends, if it is locked."""
        return self.limits.blocked_until(account_key(username), self.clock())

    def unlock(self, username: str) -> None:
        self.limits.clear(account_key(username))

    def _count_address_failure(self, address: str, now: datetime) -> None:
        if self.limits.add_failure(address, now, self.policy.address_window) >= (
            self.policy.address_max_failures
        ):
            self.limits.block(address, now + self.policy.address_block, now)
