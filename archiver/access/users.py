"""Users: accounts and custom roles in the JSON store, Argon2id passwords, sign-in with lockout
of accounts and client addresses after repeated failures (archiver/access/lockout.py).

A user is either local (``provider == "local"``: it signs in with the password hashed here) or
the shadow account of someone a sign-in provider vouched for (LDAP; archiver/access/signin.py):
no password hash at all, the directory's name, email, roles and departments refreshed at each
sign-in, and whatever an administrator sets here (disabled, roles granted locally) on top.

Every change to a user or role is a compare-and-swap on the stored version (JsonStore.put_json_if):
two administrators editing the same user at once cannot lose one another's change.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from archiver.access.identity import Identity
from archiver.access.lockout import LockoutPolicy, SignInGuard, normalise_username
from archiver.access.model import BUILTIN_ROLES, Clock, Principal, Role, utc_now
from archiver.errors import (
    AccountDisabled,
    ConcurrentEdit,
    InvalidTagging,
    InvalidUser,
    SignInFailed,
    UserExists,
    UserNotFound,
)
from archiver.ports import JsonStore, SignInLimits
from archiver.tagging.model import department_tag, departments_of

log = logging.getLogger(__name__)

USERS = "access/users/"
ROLES = "access/roles/"
USERNAME = r"^[a-z0-9][a-z0-9._@-]{0,63}$"
LOCAL = "local"  # the provider of a user whose password is checked here
FIRST_ADMIN = "admin"
# Compare-and-swap attempts of one change before ConcurrentEdit reaches the caller.
_CAS_ATTEMPTS = 5
# An unknown user name costs one verification against this, as a known one costs one against
# its hash: sign-in takes as long whether or not the user exists.
_DUMMY_PASSWORD = secrets.token_urlsafe(24)


class User(BaseModel):
    model_config = ConfigDict(frozen=True)

    username: str = Field(pattern=USERNAME)
    display_name: str = Field("", max_length=200)
    email: str = Field("", max_length=320)
    roles: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    disabled: bool = False
    # None for a shadow account: no password of the archive's can ever sign it in
    password_hash: str | None = Field(None, repr=False)
    password_changed_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    # Who checks the credentials: "local", or the name of the provider of a shadow account.
    provider: str = LOCAL
    external_id: str = ""  # the provider's id of the person (LDAP entry DN, OIDC sub)
    # What the provider's group mapping granted at the last sign-in, replaced at each one;
    # `roles` and `departments` are what an administrator granted here, kept across sign-ins.
    directory_roles: tuple[str, ...] = ()
    directory_departments: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _password_only_for_local_users(self) -> User:
        if self.provider == LOCAL and not self.password_hash:
            raise ValueError("a local user needs a password hash")
        if self.provider != LOCAL and self.password_hash is not None:
            raise ValueError("a shadow account of a sign-in provider has no password here")
        return self

    @property
    def is_local(self) -> bool:
        return self.provider == LOCAL

    @property
    def all_roles(self) -> tuple[str, ...]:
        return tuple(sorted({*self.roles, *self.directory_roles}))

    @property
    def all_departments(self) -> tuple[str, ...]:
        return tuple(sorted({*self.departments, *self.directory_departments}))

    def public(self) -> dict[str, object]:
        """What may be shown (the CLI, the API): everything but the password hash."""
        return self.model_dump(mode="json", exclude={"password_hash"})


class PasswordPolicy(BaseModel):
    """Length is what makes a password strong; no composition rules (NIST SP 800-63B). The
    upper bound keeps one sign-in from hashing megabytes."""

    min_length: int = 12
    max_length: int = 1024

    def check(self, password: str, username: str) -> None:
        if len(password) < self.min_length:
            raise InvalidUser("password", f"shorter than {self.min_length} characters")
        if len(password) > self.max_length:
            raise InvalidUser("password", f"longer than {self.max_length} characters")
        if not password.strip():
            raise InvalidUser("password", "only white space")
        if password.casefold() == username.casefold():
            raise InvalidUser("password", "the same as the user name")


def generate_password() -> str:
    """A one-time password: 144 random bits, URL-safe (24 characters)."""
    return secrets.token_urlsafe(18)


class UserDirectory:
    """Users and custom roles, and sign-in against them."""

    def __init__(
        self,
        store: JsonStore,
        limits: SignInLimits,
        *,
        hasher: PasswordHasher | None = None,
        password_policy: PasswordPolicy | None = None,
        lockout: LockoutPolicy | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.limits = limits
        self.hasher = hasher or PasswordHasher()  # Argon2id, RFC 9106's low-memory profile
        self.password_policy = password_policy or PasswordPolicy()
        self.lockout = lockout or LockoutPolicy()
        self.clock = clock
        self.guard = SignInGuard(limits, self.lockout, clock)
        self._dummy_hash = self.hasher.hash(_DUMMY_PASSWORD)

    # -- roles -------------------------------------------------------------------------------

    def roles(self) -> dict[str, Role]:
        """Every role by name: the built-in ones and the custom ones stored."""
        found = dict(BUILTIN_ROLES)
        for key in self.store.list_keys(ROLES):
            value = self.store.get_json(key)
            if value is not None:
                role = Role.model_validate(value)
                found.setdefault(role.name, role)  # a built-in name is never replaced
        return found

    def save_role(self, role: Role) -> Role:
        """Create or replace a custom role. Built-in roles cannot be redefined."""
        if role.name in BUILTIN_ROLES:
            raise InvalidUser("role", f"{role.name!r} is a built-in role and cannot be changed")
        custom = role.model_copy(update={"builtin": False})
        key = ROLES + custom.name
        for _ in range(_CAS_ATTEMPTS):
            found = self.store.get_json_versioned(key)
            try:
                self.store.put_json_if(
                    key, custom.model_dump(mode="json"), etag=found[1] if found else None
                )
            except ConcurrentEdit:
                continue
            return custom
        raise ConcurrentEdit(f"role {custom.name!r}")

    def delete_role(self, name: str) -> None:
        """Remove a custom role no user holds."""
        if name in BUILTIN_ROLES:
            raise InvalidUser("role", f"{name!r} is a built-in role and cannot be removed")
        holders = [u.username for u in self.list() if name in u.roles]
        if holders:
            raise InvalidUser("role", f"{name!r} is held by {', '.join(holders)}")
        self.store.delete(ROLES + name)

    def _known_roles(self, names: Iterable[str]) -> tuple[str, ...]:
        wanted, known = sorted({n.strip() for n in names}), self.roles()
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise InvalidUser("role", f"unknown role {', '.join(map(repr, unknown))}")
        return tuple(wanted)

    # -- users -------------------------------------------------------------------------------

    def add(
        self,
        username: str,
        password: str,
        *,
        roles: Sequence[str] = (),
        departments: Sequence[str] = (),
        display_name: str = "",
        email: str = "",
    ) -> User:
        name = normalise_username(username)
        self.password_policy.check(password, name)
        now = self.clock()
        try:
            user = User(
                username=name,
                display_name=display_name.strip(),
                email=email.strip(),
                roles=self._known_roles(roles),
                departments=_departments(departments),
                password_hash=self.hasher.hash(password),
                password_changed_at=now,
                created_at=now,
                updated_at=now,
            )
        except ValidationError as exc:
            raise InvalidUser("user", _first_error(exc)) from exc
        try:
            self.store.put_json_if(USERS + name, user.model_dump(mode="json"), etag=None)
        except ConcurrentEdit as exc:
            raise UserExists(name) from exc
        return user

    def get(self, username: str) -> User:
        return self._versioned(normalise_username(username))[0]

    def list(self) -> list[User]:
        found = (self.store.get_json(k) for k in self.store.list_keys(USERS))
        return sorted(
            (User.model_validate(v) for v in found if v is not None), key=lambda u: u.username
        )

    def exists_any(self) -> bool:
        return bool(self.store.list_keys(USERS))

    def set_password(self, username: str, password: str) -> User:
        name = normalise_username(username)
        self.local_user(name)  # before hashing: a shadow account is refused at once
        self.password_policy.check(password, name)
        hashed = self.hasher.hash(password)  # once, outside the retry loop: it is slow

        def change(user: User) -> User:
            _refuse_shadow(user)  # checked again on the version written
            return user.model_copy(
                update={"password_hash": hashed, "password_changed_at": self.clock()}
            )

        return self.update(name, change)

    def local_user(self, username: str) -> User:
        """The user, if it signs in with a password of the archive's; InvalidUser for a shadow
        account, whose password is its directory's (and UserNotFound for no user)."""
        user = self.get(username)
        _refuse_shadow(user)
        return user

    def set_disabled(self, username: str, disabled: bool) -> User:
        return self.update(username, lambda u: u.model_copy(update={"disabled": disabled}))

    def change_roles(
        self,
        username: str,
        *,
        set_to: Sequence[str] | None = None,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> User:
        """Replace the roles (set_to), or add and remove some; every named role must exist."""
        self._known_roles([*(set_to or ()), *add])

        def change(user: User) -> User:
            current = set(user.roles if set_to is None else set_to)
            roles = (current | set(add)) - set(remove)
            return user.model_copy(update={"roles": tuple(sorted(roles))})

        return self.update(username, change)

    def set_departments(self, username: str, departments: Sequence[str]) -> User:
        normalised = _departments(departments)
        return self.update(username, lambda u: u.model_copy(update={"departments": normalised}))

    def update(self, username: str, change: Callable[[User], User]) -> User:
        """Apply `change` to the stored user and save it only if nobody saved in between;
        otherwise reload and apply it again (a few times, then ConcurrentEdit)."""
        name = normalise_username(username)
        for _ in range(_CAS_ATTEMPTS):
            user, etag = self._versioned(name)
            changed = change(user).model_copy(
                update={"username": user.username, "updated_at": self.clock()}
            )
            try:
                self.store.put_json_if(USERS + name, changed.model_dump(mode="json"), etag=etag)
            except ConcurrentEdit:
                continue
            return changed
        raise ConcurrentEdit(f"user {name!r}")

    def _versioned(self, name: str) -> tuple[User, str]:
        found = self.store.get_json_versioned(USERS + name) if _valid_name(name) else None
        if found is None:
            raise UserNotFound(name)
        return User.model_validate(found[0]), found[1]

    def shadow_sign_in(self, identity: Identity) -> User:
        """The shadow account of someone a provider has just vouched for, created or refreshed
        (name, email, external id, the roles and departments of the directory's groups).

        Which wins when names meet: an existing local account is only ever checked locally, so
        the directory can never sign in as it (SignInFailed here) — else whoever controls an
        LDAP entry of the same name (a directory admin, a newly hired namesake) would take over
        the archive account, its local roles included. Likewise a shadow account belongs to the
        provider and directory entry (external_id) that created it: a different provider, or a
        new entry reusing the name, is refused until an administrator removes the old account.
        AccountDisabled for a disabled one: the directory accepted the password, the archive
        does not."""
        name = normalise_username(identity.username)
        if not _valid_name(name):
            raise SignInFailed(
                name[:64],
                f"the directory's name {identity.username!r} cannot be an archive user name",
            )
        for _ in range(_CAS_ATTEMPTS):
            found = self.find(name)
            if found is None:
                user, etag = self._new_shadow(name, identity), None
            else:
                user, etag = found
                _check_owner(user, identity)
                if user.disabled:
                    raise AccountDisabled(user.username)
            refreshed = user.model_copy(
                update={
                    "display_name": identity.display_name.strip()[:200],
                    "email": identity.email.strip() if len(identity.email) <= 320 else "",
                    "external_id": identity.external_id,
                    "directory_roles": tuple(sorted(identity.roles)),
                    "directory_departments": valid_departments(identity.departments),
                }
            )
            if etag is not None and refreshed == user:
                return user  # nothing changed in the directory: no write
            refreshed = refreshed.model_copy(update={"updated_at": self.clock()})
            try:
                self.store.put_json_if(USERS + name, refreshed.model_dump(mode="json"), etag=etag)
            except ConcurrentEdit:
                continue  # a first sign-in at the same moment, or an administrator's edit
            return refreshed
        raise ConcurrentEdit(f"user {name!r}")

    def _new_shadow(self, name: str, identity: Identity) -> User:
        now = self.clock()
        return User(
            username=name,
            provider=identity.provider,
            external_id=identity.external_id,
            created_at=now,
            updated_at=now,
        )

    def create_first_admin(self) -> str | None:
        """Create `admin` (role admin) with a one-time password, returned, when there is no
        user at all yet; None otherwise (so a second `mailvault init` creates nothing)."""
        if self.exists_any():
            return None
        password = generate_password()
        try:
            self.add(FIRST_ADMIN, password, roles=["admin"], display_name="Administrator")
        except UserExists:  # another init won the race
            return None
        return password

    def principal(self, user: User, roles: dict[str, Role] | None = None) -> Principal:
        """The principal of a user: the roles granted here and by its directory's groups, a
        role deleted (or never defined) since it was granted granting nothing. `roles`: every
        role by name, when the caller has them already (self.roles() otherwise)."""
        known = self.roles() if roles is None else roles
        return Principal(
            username=user.username,
            roles=tuple(known[r] for r in user.all_roles if r in known),
            departments=frozenset(user.all_departments),
        )

    # -- sign-in -----------------------------------------------------------------------------

    def lock_status(self, username: str) -> datetime | None:
        """When the account's lockout ends, if it is locked."""
        return self.guard.lock_status(username)

    def unlock(self, username: str) -> None:
        self.get(username)  # refuse unknown names: an administrator mistyped
        self.guard.unlock(username)

    def authenticate(self, username: str, password: str, client_address: str) -> Principal:
        """The principal of the local user whose password this is (no other provider: see
        archiver/access/signin.py for the sign-in that tries LDAP as well).

        Raises AddressBlocked or AccountLocked while too many sign-ins failed recently,
        SignInFailed for a wrong user name or password (alike, in what is said and in time
        taken), AccountDisabled for the right password of a disabled account."""

        def check() -> Principal:
            name = normalise_username(username)
            return self.principal(self.check_password(self.find(name), name, password))

        return self.guard.attempt(username, client_address, check)

    def find(self, name: str) -> tuple[User, str] | None:
        """The user stored under this (normalised) name and its version; None when there is
        none, or the name could not be one."""
        try:
            return self._versioned(name)
        except UserNotFound:
            return None

    def check_password(self, found: tuple[User, str] | None, name: str, password: str) -> User:
        """The local user `found` (from find(name)) if this is its password; SignInFailed
        otherwise, for no user, and for a shadow account (its password is its directory's).
        AccountDisabled for the right password of a disabled user. No lockout here: that is
        the caller's (SignInGuard)."""
        user, etag = found if found is not None else (None, None)
        # verified first, for a user that does not exist as well: the same time either way
        hashed = user.password_hash if user is not None and user.password_hash else None
        verified = self._verify(hashed or self._dummy_hash, password)
        if user is not None and not user.is_local:
            raise SignInFailed(name[:64], f"signs in through {user.provider}, not locally")
        if user is None or etag is None or hashed is None or not verified:
            raise SignInFailed(name[:64])
        if user.disabled:
            raise AccountDisabled(user.username)
        if user.password_hash and self.hasher.check_needs_rehash(user.password_hash):
            self._rehash(user, etag, password)
        return user

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self.hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    def _rehash(self, user: User, etag: str, password: str) -> None:
        """Store the hash under the current parameters. Only if the user is unchanged since it
        was read: a concurrent edit (a new password, say) wins, and the next sign-in rehashes."""
        rehashed = user.model_copy(update={"password_hash": self.hasher.hash(password)})
        with contextlib.suppress(ConcurrentEdit):
            self.store.put_json_if(
                USERS + user.username, rehashed.model_dump(mode="json"), etag=etag
            )


def _check_owner(user: User, identity: Identity) -> None:
    if user.is_local:
        raise SignInFailed(
            user.username,
            f"a local account: only its local password signs it in, not {identity.provider}",
        )
    if user.provider != identity.provider:
        raise SignInFailed(
            user.username, f"the shadow account of {user.provider}, not of {identity.provider}"
        )
    if user.external_id and user.external_id != identity.external_id:
        raise SignInFailed(
            user.username,
            f"the shadow account of {user.external_id!r}, not of {identity.external_id!r}: "
            "remove it if the name now belongs to someone else",
        )


def valid_departments(names: Iterable[str]) -> tuple[str, ...]:
    """The department names that can be tags, normalised; the others (a mistyped department
    map) are dropped and logged: they could never match any mail."""
    kept: list[str] = []
    for name in names:
        try:
            kept.extend(_departments([name]))
        except InvalidUser as exc:
            log.warning("department %r from the directory ignored: %s", name, exc.detail)
    return tuple(sorted(set(kept)))


def _refuse_shadow(user: User) -> None:
    if not user.is_local:
        raise InvalidUser(
            "password",
            f"{user.username!r} signs in through {user.provider}: its password is set there, "
            "not in the archive",
        )


def _valid_name(name: str) -> bool:
    return re.fullmatch(USERNAME, name) is not None


def _departments(names: Iterable[str]) -> tuple[str, ...]:
    try:
        return tuple(departments_of(department_tag(n) for n in names))
    except InvalidTagging as exc:
        raise InvalidUser("department", exc.detail) from exc


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}"
