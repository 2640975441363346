"""Local users against the real SeaweedFS (users, roles) and the real Redis (failed sign-ins):
Argon2id passwords, compare-and-swap edits, sign-in outcomes, lockout of accounts and addresses."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from archiver import bootstrap
from archiver.access.lockout import LockoutPolicy
from archiver.access.model import BUILTIN_ROLES, Permission, Role
from archiver.access.users import (
    ROLES,
    PasswordPolicy,
    UserDirectory,
    generate_password,
)
from archiver.adapters.redis_limits import RedisSignInLimits
from archiver.adapters.s3 import S3JsonStore
from archiver.errors import (
    AccountDisabled,
    AccountLocked,
    AddressBlocked,
    BackendUnavailable,
    InvalidUser,
    SignInFailed,
    UserExists,
    UserNotFound,
)
from archiver.settings import Settings
from tests.support.postfix import free_port
from tests.support.signin import throwaway_limits

pytestmark = pytest.mark.services

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
ADDRESS = "192.0.2.7"
# cheap parameters for tests: the production defaults cost ~64 MiB and tens of ms per hash
FAST = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class CountingHasher(PasswordHasher):
    def __init__(self, **params: int) -> None:
        super().__init__(**params)
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified.append(str(hash))
        return super().verify(hash, password)


@pytest.fixture
def limits(settings: Settings) -> Iterator[RedisSignInLimits]:
    with throwaway_limits(settings) as limits:
        yield limits


@pytest.fixture
def store(settings: Settings, backends: None) -> S3JsonStore:
    """The session bucket, under a prefix of this test's own: an empty directory."""
    store = bootstrap.json_store(settings)
    store.PREFIX = f"meta/test-users-{uuid.uuid4().hex}/"
    return store


@pytest.fixture
def clock() -> Clock:
    return Clock()


def directory_over(
    store: S3JsonStore,
    limits: RedisSignInLimits,
    clock: Clock,
    hasher: PasswordHasher | None = None,
    **lockout: object,
) -> UserDirectory:
    return UserDirectory(
        store,
        limits,
        hasher=hasher or PasswordHasher(**FAST),
        lockout=LockoutPolicy.model_validate(lockout),
        clock=clock,
    )


@pytest.fixture
def directory(store: S3JsonStore, limits: RedisSignInLimits, clock: Clock) -> UserDirectory:
    return directory_over(store, limits, clock)


# -- passwords -----------------------------------------------------------------------------------

HASHER = PasswordHasher(**FAST)
passwords = st.text(min_size=1, max_size=64)


@given(password=passwords, other=passwords)
@hsettings(max_examples=60, deadline=None)
def test_a_hash_verifies_its_password_and_no_other(password: str, other: str) -> None:
    hashed = HASHER.hash(password)
    assert hashed.startswith("$argon2id$") and HASHER.hash(password) != hashed  # salted
    assert HASHER.verify(hashed, password)
    if other != password:
        with pytest.raises(VerifyMismatchError):
            HASHER.verify(hashed, other)


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short", "shorter than 12"),
        ("            ", "white space"),
        ("Alice.Example", "the same as the user name"),
        ("x" * 1025, "longer than 1024"),
    ],
)
def test_the_password_policy_refuses_weak_passwords(password: str, why: str) -> None:
    with pytest.raises(InvalidUser, match=why):
        PasswordPolicy().check(password, "alice.example")
    PasswordPolicy().check("a" * 12, "alice.example")
    PasswordPolicy().check("长密码" * 4, "alice.example")  # characters, not bytes


def test_generated_passwords_are_long_random_and_accepted() -> None:
    generated = {generate_password() for _ in range(50)}
    assert len(generated) == 50
    for password in generated:
        PasswordPolicy().check(password, "admin")


# -- users and roles -----------------------------------------------------------------------------


def test_a_user_is_stored_with_a_hash_only_and_listed_without_it(
    directory: UserDirectory,
) -> None:
    user = directory.add(
        " Alice ",
        PASSWORD,
        roles=["legal"],
        departments=["技术部", " 财务部 "],
        display_name="爱丽丝",
        email="alice@example.com",
    )
    assert user.username == "alice" and user.departments == ("技术部", "财务部")
    stored = directory.store.get_json("access/users/alice")
    assert stored is not None and PASSWORD not in str(stored)
    assert directory.get("ALICE") == user
    assert [u.public() for u in directory.list()] == [user.public()]
    assert "password_hash" not in user.public() and "password_hash" not in repr(user)
    with pytest.raises(UserExists):
        directory.add("alice", "another password")
    with pytest.raises(UserNotFound):
        directory.get("bob")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"roles": ["nonexistent"]}, "unknown role 'nonexistent'"),
        ({"username": "has space"}, "username"),
        ({"username": "x" * 65}, "username"),
        ({"departments": ["a//b"]}, "empty path segment"),
        ({"password": "short"}, "shorter than 12"),
    ],
)
def test_invalid_users_are_refused_and_nothing_is_stored(
    directory: UserDirectory, change: dict[str, object], why: str
) -> None:
    args: dict[str, object] = {"username": "carol", "password": PASSWORD} | change
    with pytest.raises(InvalidUser, match=why):
        directory.add(**args)  # type: ignore[arg-type]
    assert directory.list() == []


def test_custom_roles_are_stored_and_built_in_roles_cannot_be_overwritten(
    directory: UserDirectory,
) -> None:
    reviewer = Role(name="reviewer", permissions=frozenset({Permission.SEARCH}), builtin=True)
    saved = directory.save_role(reviewer)
    assert saved.builtin is False and directory.roles()["reviewer"] == saved
    for name in BUILTIN_ROLES:
        with pytest.raises(InvalidUser, match="built-in"):
            directory.save_role(Role(name=name, permissions=frozenset(Permission)))
        with pytest.raises(InvalidUser, match="built-in"):
            directory.delete_role(name)
    # even one written behind the directory's back does not replace the built-in role
    directory.store.put_json(ROLES + "admin", {"name": "admin", "permissions": ["view_raw"]})
    assert directory.roles()["admin"] == BUILTIN_ROLES["admin"]

    directory.add("dave", PASSWORD, roles=["reviewer"])
    with pytest.raises(InvalidUser, match="held by dave"):
        directory.delete_role("reviewer")
    directory.change_roles("dave", remove=["reviewer"])
    directory.delete_role("reviewer")
    assert "reviewer" not in directory.roles()


def test_role_changes_set_add_and_remove_and_refuse_unknown_roles(
    directory: UserDirectory,
) -> None:
    directory.add("erin", PASSWORD, roles=["auditor"])
    assert directory.change_roles("erin", add=["legal"]).roles == ("auditor", "legal")
    assert directory.change_roles("erin", remove=["auditor"]).roles == ("legal",)
    assert directory.change_roles("erin", set_to=["admin"]).roles == ("admin",)
    with pytest.raises(InvalidUser, match="unknown role"):
        directory.change_roles("erin", add=["ghost"])
    assert directory.get("erin").roles == ("admin",)
    with pytest.raises(UserNotFound):
        directory.change_roles("nobody", add=["legal"])


def test_concurrent_edits_of_one_user_lose_no_change(directory: UserDirectory) -> None:
    names = [f"role-{i}" for i in range(4)]
    for name in names:
        directory.save_role(Role(name=name, permissions=frozenset({Permission.SEARCH})))
    directory.add("frank", PASSWORD)
    barrier = threading.Barrier(len(names) + 1)
    errors: list[Exception] = []

    def grant(role: str) -> None:
        barrier.wait()
        try:
            directory.change_roles("frank", add=[role])
        except Exception as exc:
            errors.append(exc)

    def disable() -> None:
        barrier.wait()
        directory.set_disabled("frank", True)

    threads = [threading.Thread(target=grant, args=(n,)) for n in names]
    threads.append(threading.Thread(target=disable))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    user = directory.get("frank")
    assert user.roles == tuple(names) and user.disabled


def test_the_principal_carries_the_roles_and_the_department_scope(
    directory: UserDirectory,
) -> None:
    directory.add("grace", PASSWORD, roles=["department_lead"], departments=["技术部"])
    principal = directory.authenticate("grace", PASSWORD, ADDRESS)
    assert principal.username == "grace" and principal.may(Permission.VIEW)
    assert principal.scope().tags == {"department/技术部"}
    assert not principal.may(Permission.EXPORT)


def test_the_first_admin_is_created_once_with_a_one_time_password(
    directory: UserDirectory,
) -> None:
    password = directory.create_first_admin()
    assert password is not None
    assert directory.create_first_admin() is None
    assert [(u.username, u.roles) for u in directory.list()] == [("admin", ("admin",))]
    principal = directory.authenticate("admin", password, ADDRESS)
    assert principal.may(Permission.MANAGE_USERS) and not principal.may(Permission.VIEW)


def test_no_first_admin_when_any_user_exists(directory: UserDirectory) -> None:
    directory.add("helen", PASSWORD)
    assert directory.create_first_admin() is None
    with pytest.raises(UserNotFound):
        directory.get("admin")


# -- sign-in ----------------------------------------------------------------------------------


def test_a_changed_password_replaces_the_old_one(directory: UserDirectory) -> None:
    directory.add("ivan", PASSWORD)
    directory.set_password("ivan", "a brand new passphrase")
    assert directory.authenticate("ivan", "a brand new passphrase", ADDRESS).username == "ivan"
    with pytest.raises(SignInFailed):
        directory.authenticate("ivan", PASSWORD, ADDRESS)
    with pytest.raises(InvalidUser):
        directory.set_password("ivan", "short")


def test_unknown_user_and_wrong_password_fail_alike_and_cost_one_verification_each(
    store: S3JsonStore, limits: RedisSignInLimits, clock: Clock
) -> None:
    hasher = CountingHasher(**FAST)
    directory = directory_over(store, limits, clock, hasher)
    directory.add("judy", PASSWORD)
    failures = []
    for username in ["judy", "nobody", "Not A Valid Name!", "x" * 500]:
        hasher.verified.clear()
        with pytest.raises(SignInFailed) as failed:
            directory.authenticate(username, "wrong password!", ADDRESS)
        failures.append(str(failed.value))
        assert len(hasher.verified) == 1, username  # unknown: the dummy hash, same parameters
        assert hasher.verified[0].startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert len(set(failures)) == 1 and "wrong username or password" in failures[0]


@pytest.mark.parametrize("right_password", [True, False])
def test_a_disabled_user_cannot_sign_in_and_is_told_only_with_the_right_password(
    directory: UserDirectory, right_password: bool
) -> None:
    directory.add("kim", PASSWORD)
    directory.set_disabled("kim", True)
    password = PASSWORD if right_password else "wrong password!"
    with pytest.raises(
        AccountDisabled if right_password else SignInFailed, match=r"disabled|wrong"
    ):
        directory.authenticate("kim", password, ADDRESS)
    directory.set_disabled("kim", False)
    assert directory.authenticate("kim", PASSWORD, ADDRESS).username == "kim"


def fail_sign_ins(directory: UserDirectory, username: str, times: int) -> None:
    for _ in range(times):
        with pytest.raises(SignInFailed):
            directory.authenticate(username, "wrong password!", ADDRESS)


def test_a_locked_account_is_refused_even_with_the_right_password_and_says_until_when(
    store: S3JsonStore, limits: RedisSignInLimits, clock: Clock
) -> None:
    directory = directory_over(store, limits, clock, account_max_failures=3)
    directory.add("leo", PASSWORD)
    fail_sign_ins(directory, "leo", 2)
    with pytest.raises(AccountLocked) as third:
        directory.authenticate("leo", "wrong password!", ADDRESS)
    until = T0 + timedelta(minutes=15)
    assert third.value.until == until
    clock.advance(60)
    with pytest.raises(AccountLocked, match=r"locked .* until 2026-03-01T09:15:00\+00:00"):
        directory.authenticate("leo", PASSWORD, ADDRESS)
    assert directory.lock_status("leo") == until
    directory.unlock("leo")
    assert directory.lock_status("leo") is None
    assert directory.authenticate("leo", PASSWORD, ADDRESS).username == "leo"


def test_a_successful_sign_in_starts_the_failure_count_afresh(
    store: S3JsonStore, limits: RedisSignInLimits, clock: Clock
) -> None:
    directory = directory_over(store, limits, clock, account_max_failures=3)
    directory.add("lena", PASSWORD)
    for _ in range(3):
        fail_sign_ins(directory, "lena", 2)
        assert directory.authenticate("lena", PASSWORD, ADDRESS).username == "lena"


def test_an_unknown_account_locks_like_a_known_one(
    store: S3JsonStore, limits: RedisSignInLimits, clock: Clock
) -> None:
    directory = directory_over(store, limits, clock, account_max_failures=2)
    with pytest.raises(SignInFailed):
        directory.authenticate("ghost", "wrong password!", ADDRESS)
    with pytest.raises(AccountLocked):
        directory.authenticate("ghost", "wrong password!", ADDRESS)


def test_a_lock_ends_by_itself_after_the_lockout(
    store: S3JsonStore, limits: RedisSignInLimits, clock: Clock
) -> None:
    directory = directory_over(store, limits, clock, account_max_failures=1)
    directory.add("mia", PASSWORD)
    with pytest.raises(AccountLocked):
        directory.authenticate("mia", "wrong password!", ADDRESS)
    clock.advance(15 * 60 - 1)
    with pytest.raises(AccountLocked):
        directory.authenticate("mia", PASSWORD, ADDRESS)
    clock.advance(1)
    assert directory.authenticate("mia", PASSWORD, ADDRESS).username == "mia"


def test_an_address_with_too_many_failures_is_blocked_for_every_account(
    store: S3JsonStore, limits: RedisSignInLimits, clock: Clock
) -> None:
    directory = directory_over(
        store, limits, clock, account_max_failures=100, address_max_failures=4
    )
    directory.add("nina", PASSWORD)
    for i in range(3):
        with pytest.raises(SignInFailed):
            directory.authenticate(f"user{i}", "wrong password!", ADDRESS)
    with pytest.raises(SignInFailed):  # the fourth failure blocks the address
        directory.authenticate("user3", "wrong password!", ADDRESS)
    with pytest.raises(AddressBlocked, match=f"from {ADDRESS}; try again after") as blocked:
        directory.authenticate("nina", PASSWORD, ADDRESS)
    assert blocked.value.until == T0 + timedelta(minutes=15)
    assert directory.authenticate("nina", PASSWORD, "192.0.2.8").username == "nina"
    clock.advance(15 * 60)
    assert directory.authenticate("nina", PASSWORD, ADDRESS).username == "nina"


def test_a_password_hashed_with_old_parameters_is_rehashed_on_sign_in(
    store: S3JsonStore, limits: RedisSignInLimits, clock: Clock
) -> None:
    old = directory_over(store, limits, clock)
    old.add("omar", PASSWORD)
    new = directory_over(
        store, limits, clock, PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    )
    assert "m=8,t=1" in new.get("omar").password_hash
    new.authenticate("omar", PASSWORD, ADDRESS)
    assert "m=16,t=2" in new.get("omar").password_hash
    assert old.authenticate("omar", PASSWORD, ADDRESS).username == "omar"  # still verifies


def test_sign_in_without_redis_is_a_transient_backend_error(
    store: S3JsonStore, clock: Clock
) -> None:
    dead = RedisSignInLimits(redis.Redis(port=free_port(), socket_connect_timeout=1), "x:")
    directory = directory_over(store, dead, clock)  # type: ignore[arg-type]
    with pytest.raises(BackendUnavailable, match="redis"):
        directory.authenticate("anyone", PASSWORD, ADDRESS)
    assert dead.health()["status"] == "unavailable"


# -- lockout counting as a model ----------------------------------------------------------------

MAX, WINDOW, LOCKOUT = 3, 60, 120


# the store and limits fixtures are shared by a test's examples: each example starts afresh
def model_directory(
    store: S3JsonStore, limits: RedisSignInLimits, **lockout: object
) -> tuple[Clock, UserDirectory]:
    clock = Clock()
    return clock, directory_over(store, limits, clock, **lockout)


MODEL_RUNS = hsettings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
events = st.lists(
    st.one_of(st.just("ok"), st.just("bad"), st.just("bad"), st.integers(1, 150)),
    min_size=1,
    max_size=30,
)


@given(sequence=events)
@MODEL_RUNS
def test_an_account_locks_exactly_when_the_failures_in_the_window_reach_the_threshold(
    store: S3JsonStore, limits: RedisSignInLimits, sequence: list[str | int]
) -> None:
    clock, directory = model_directory(
        store,
        limits,
        account_max_failures=MAX,
        account_window=timedelta(seconds=WINDOW),
        account_lockout=timedelta(seconds=LOCKOUT),
        address_max_failures=10**6,
    )
    if directory.exists_any():
        directory.unlock("pat")
    else:
        directory.add("pat", PASSWORD)
    failures: list[datetime] = []
    locked_until: datetime | None = None
    for event in sequence:
        if isinstance(event, int):
            clock.advance(event)
            continue
        now = clock.now
        password = PASSWORD if event == "ok" else "wrong password!"
        if locked_until is not None and now < locked_until:
            with pytest.raises(AccountLocked):
                directory.authenticate("pat", password, ADDRESS)
            continue
        if event == "ok":
            assert directory.authenticate("pat", password, ADDRESS).username == "pat"
            failures = []
            continue
        failures = [t for t in failures if t > now - timedelta(seconds=WINDOW)] + [now]
        if len(failures) >= MAX:
            locked_until, failures = now + timedelta(seconds=LOCKOUT), []
            with pytest.raises(AccountLocked):
                directory.authenticate("pat", password, ADDRESS)
        else:
            with pytest.raises(SignInFailed):
                directory.authenticate("pat", password, ADDRESS)


ADDRESS_MAX = 4
attempts = st.tuples(
    st.sampled_from(["quinn", "ruth", "nobody"]), st.sampled_from([True, False, False])
)
# failures weighted up: crossing the threshold needs several within one window
address_events = st.lists(
    st.one_of(attempts, attempts, attempts, st.integers(1, 150)), min_size=1, max_size=30
)


@given(sequence=address_events)
@MODEL_RUNS
def test_an_address_is_blocked_exactly_when_its_failures_in_the_window_reach_the_threshold(
    store: S3JsonStore, limits: RedisSignInLimits, sequence: list[tuple[str, bool] | int]
) -> None:
    """Failures of any account count for the address; a success resets only the account."""
    clock, directory = model_directory(
        store,
        limits,
        account_max_failures=10**6,
        address_max_failures=ADDRESS_MAX,
        address_window=timedelta(seconds=WINDOW),
        address_block=timedelta(seconds=LOCKOUT),
    )
    address = f"198.51.100.{uuid.uuid4().int % 250}"
    for name in ("quinn", "ruth"):
        try:
            directory.get(name)
        except UserNotFound:  # the first example: hypothesis runs them all on one store
            directory.add(name, PASSWORD)
    limits.clear(f"address:{address}")
    failures: list[datetime] = []
    blocked_until: datetime | None = None
    for event in sequence:
        if isinstance(event, int):
            clock.advance(event)
            continue
        (username, right), now = event, clock.now
        password = PASSWORD if right else "wrong password!"
        if blocked_until is not None and now < blocked_until:
            with pytest.raises(AddressBlocked):
                directory.authenticate(username, password, address)
            continue
        if right and username != "nobody":
            assert directory.authenticate(username, password, address).username == username
            continue
        failures = [t for t in failures if t > now - timedelta(seconds=WINDOW)] + [now]
        if len(failures) >= ADDRESS_MAX:
            blocked_until, failures = now + timedelta(seconds=LOCKOUT), []
        with pytest.raises(SignInFailed):
            directory.authenticate(username, password, address)
