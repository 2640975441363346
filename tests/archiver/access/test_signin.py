"""SignInService over in-memory users, limits and directories (tests/support/fakes.py): which
provider is asked, shadow accounts, one lockout for all, the same refusal for everyone, and the
principal cache's bounded staleness. The real slapd, S3 and Redis: tests/archiver/adapters/
test_ldap_signin.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from archiver.access.identity import Identity
from archiver.access.lockout import LockoutPolicy
from archiver.access.model import BUILTIN_ROLES, Permission, Principal, Role
from archiver.access.signin import PrincipalCache, SignInService
from archiver.access.users import USERS, UserDirectory
from archiver.errors import (
    AccountDisabled,
    AccountLocked,
    AddressBlocked,
    BackendUnavailable,
    InvalidUser,
    SignInFailed,
)
from tests.support.fakes import InMemoryIdentityProvider, InMemoryJsonStore, InMemorySignInLimits

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
LDAP_PASSWORD = "ldap-secret-1"
ADDRESS = "192.0.2.7"
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
TTL = 2.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def identity(username: str, **changes: object) -> Identity:
    values: dict[str, object] = {
        "username": username,
        "display_name": username.title(),
        "email": f"{username}@example.com",
        "roles": frozenset({"legal"}),
        "departments": frozenset({"法务部"}),
        "provider": "ldap",
        "external_id": f"uid={username},ou=people,dc=example,dc=com",
    }
    return Identity.model_validate(values | changes)


class World:
    """A sign-in service with one local user (carol) and a directory knowing zhangsan, carol
    (another person of the same name) and alias (whom the directory calls carol)."""

    def __init__(self, **lockout: object) -> None:
        self.store = InMemoryJsonStore()
        self.limits = InMemorySignInLimits()
        self.clock = Clock()
        self.monotonic = Monotonic()
        self.directory = UserDirectory(
            self.store,
            self.limits,
            hasher=FAST,
            lockout=LockoutPolicy.model_validate(lockout),
            clock=self.clock,
        )
        self.directory.add("carol", PASSWORD, roles=["admin"])
        self.ldap = InMemoryIdentityProvider("ldap")
        self.ldap.add(identity("zhangsan"), LDAP_PASSWORD)
        self.ldap.add(identity("carol"), LDAP_PASSWORD)
        self.ldap.add(identity("carol"), LDAP_PASSWORD, typed="alias")
        self.service = SignInService(
            self.directory,
            [self.ldap],
            cache=PrincipalCache(TTL, monotonic=self.monotonic),
        )

    def sign_in(self, username: str, password: str, address: str = ADDRESS) -> Principal:
        return self.service.authenticate(username, password, address)

    def ldap_asked(self) -> int:
        return self.ldap.faults.calls.count("authenticate")


@pytest.fixture
def world() -> World:
    return World()


def role_names(principal: Principal | None) -> set[str]:
    assert principal is not None
    return {r.name for r in principal.roles}


# -- who is asked ---------------------------------------------------------------------------------


def test_a_local_user_signs_in_with_its_password_and_ldap_is_not_asked(world: World) -> None:
    assert role_names(world.sign_in("Carol ", PASSWORD)) == {"admin"}
    assert world.ldap_asked() == 0


def test_a_local_name_is_never_tried_on_ldap(world: World) -> None:
    """carol is local; the directory has a carol too, with another password: the local account
    wins, and the directory's password does not sign anyone in as carol."""
    with pytest.raises(SignInFailed):
        world.sign_in("carol", LDAP_PASSWORD)
    assert world.ldap_asked() == 0
    assert world.directory.get("carol").is_local


def test_ldap_cannot_sign_in_a_local_account_through_another_name(world: World) -> None:
    # the directory answers "carol" for the name typed, "alias": still not the local carol
    with pytest.raises(SignInFailed) as refused:
        world.sign_in("alias", LDAP_PASSWORD)
    assert "local account" in refused.value.detail
    assert world.directory.get("carol").is_local
    assert world.directory.get("carol").directory_roles == ()


def test_the_first_ldap_sign_in_creates_a_shadow_account_without_a_password(
    world: World,
) -> None:
    principal = world.sign_in("ZhangSan", LDAP_PASSWORD)
    assert principal.username == "zhangsan"
    assert role_names(principal) == {"legal"}
    assert principal.departments == {"法务部"}
    user = world.directory.get("zhangsan")
    assert (user.provider, user.external_id) == ("ldap", identity("zhangsan").external_id)
    assert (user.display_name, user.email) == ("Zhangsan", "zhangsan@example.com")
    assert user.password_hash is None and user.roles == ()
    assert (world.store.get_json(USERS + "zhangsan") or {}).get("password_hash") is None


def test_each_sign_in_refreshes_the_shadow_account_from_the_directory(world: World) -> None:
    world.sign_in("zhangsan", LDAP_PASSWORD)
    world.directory.change_roles("zhangsan", add=["auditor"])  # granted locally: kept
    world.ldap.add(
        identity(
            "zhangsan",
            roles=frozenset({"compliance_officer"}),
            departments=frozenset(),
            display_name="张三",
        ),
        LDAP_PASSWORD,
    )
    principal = world.sign_in("zhangsan", LDAP_PASSWORD)
    assert role_names(principal) == {"compliance_officer", "auditor"}  # legal is gone
    assert principal.departments == frozenset()
    user = world.directory.get("zhangsan")
    assert user.display_name == "张三" and user.directory_roles == ("compliance_officer",)


def test_an_unchanged_directory_entry_writes_nothing(world: World) -> None:
    world.sign_in("zhangsan", LDAP_PASSWORD)
    writes = world.store.faults.calls.count("put_json_if")
    world.sign_in("zhangsan", LDAP_PASSWORD)
    assert world.store.faults.calls.count("put_json_if") == writes


def test_a_disabled_shadow_account_cannot_sign_in_though_ldap_accepts(world: World) -> None:
    world.sign_in("zhangsan", LDAP_PASSWORD)
    world.directory.set_disabled("zhangsan", True)
    with pytest.raises(AccountDisabled):
        world.sign_in("zhangsan", LDAP_PASSWORD)
    with pytest.raises(SignInFailed):  # said "disabled" only with the right password
        world.sign_in("zhangsan", "wrong")
    world.monotonic.now += TTL
    assert world.service.principal("zhangsan") is None
    world.directory.set_disabled("zhangsan", False)
    assert world.sign_in("zhangsan", LDAP_PASSWORD).username == "zhangsan"


def test_no_local_password_ever_signs_in_a_shadow_account(world: World) -> None:
    world.sign_in("zhangsan", LDAP_PASSWORD)
    with pytest.raises(InvalidUser, match="signs in through ldap"):
        world.directory.set_password("zhangsan", "a new local passphrase")
    with pytest.raises(SignInFailed):  # the local-only sign-in refuses it whatever the password
        world.directory.authenticate("zhangsan", LDAP_PASSWORD, ADDRESS)
    assert world.directory.get("zhangsan").password_hash is None


def test_a_name_reused_by_another_directory_entry_is_refused(world: World) -> None:
    world.sign_in("zhangsan", LDAP_PASSWORD)
    world.ldap.add(identity("zhangsan", external_id="uid=zhangsan,ou=new,dc=example"), "pw2")
    with pytest.raises(SignInFailed) as refused:
        world.sign_in("zhangsan", "pw2")
    assert "remove it" in refused.value.detail


def test_a_directory_name_that_cannot_be_a_user_name_is_refused(world: World) -> None:
    world.ldap.add(identity("star*user"), "star-pw")
    with pytest.raises(SignInFailed):
        world.sign_in("star*user", "star-pw")


def test_providers_are_tried_in_order_and_a_shadow_only_by_its_own() -> None:
    world = World()
    oidc = InMemoryIdentityProvider("oidc")
    oidc.add(identity("dave", provider="oidc", external_id="sub-1"), "oidc-pw")
    oidc.add(identity("zhangsan", provider="oidc", external_id="sub-2"), "oidc-pw")
    service = SignInService(world.directory, [world.ldap, oidc])
    assert service.authenticate("dave", "oidc-pw", ADDRESS).username == "dave"
    assert world.directory.get("dave").provider == "oidc"
    service.authenticate("zhangsan", LDAP_PASSWORD, ADDRESS)  # ldap first
    with pytest.raises(SignInFailed):  # zhangsan is ldap's now: oidc is not asked
        service.authenticate("zhangsan", "oidc-pw", ADDRESS)
    assert oidc.faults.calls.count("authenticate") == 1
    with pytest.raises(ValueError, match="unique"):
        SignInService(world.directory, [world.ldap, InMemoryIdentityProvider("ldap")])
    with pytest.raises(ValueError, match="local"):
        SignInService(world.directory, [InMemoryIdentityProvider("local")])


def test_an_unreachable_provider_ends_the_sign_in_uncounted() -> None:
    world = World(account_max_failures=2, address_max_failures=2)
    oidc = InMemoryIdentityProvider("oidc")
    oidc.add(identity("zhangsan", provider="oidc"), LDAP_PASSWORD)
    service = SignInService(world.directory, [world.ldap, oidc])
    world.ldap.faults.unavailable = True
    for _ in range(3):
        with pytest.raises(BackendUnavailable):  # not "wrong password", and oidc not asked
            service.authenticate("zhangsan", LDAP_PASSWORD, ADDRESS)
    assert oidc.faults.calls == []
    world.ldap.faults.unavailable = False
    assert service.authenticate("zhangsan", LDAP_PASSWORD, ADDRESS).username == "zhangsan"
    assert world.directory.get("zhangsan").provider == "ldap"


# -- one lockout ----------------------------------------------------------------------------------


def test_failures_count_alike_across_providers_and_lock_the_account() -> None:
    world = World(account_max_failures=3)
    world.sign_in("zhangsan", LDAP_PASSWORD)
    for _ in range(2):
        with pytest.raises(SignInFailed):
            world.sign_in("zhangsan", "wrong")
    with pytest.raises(AccountLocked):
        world.sign_in("zhangsan", "wrong")
    asked = world.ldap_asked()
    with pytest.raises(AccountLocked):  # the right password, and ldap is not even asked
        world.sign_in("zhangsan", LDAP_PASSWORD)
    assert world.ldap_asked() == asked
    world.clock.now += timedelta(minutes=15)
    assert world.sign_in("zhangsan", LDAP_PASSWORD).username == "zhangsan"


def test_an_address_is_blocked_by_failures_of_local_and_ldap_names() -> None:
    world = World(account_max_failures=100, address_max_failures=4)
    for name in ["carol", "zhangsan", "ghost", "carol"]:
        with pytest.raises(SignInFailed):
            world.sign_in(name, "wrong")
    for name, password in [("carol", PASSWORD), ("zhangsan", LDAP_PASSWORD)]:
        with pytest.raises(AddressBlocked):
            world.sign_in(name, password)
        assert world.sign_in(name, password, "192.0.2.8").username == name


# -- the same refusal for everyone ----------------------------------------------------------------

REFUSED_WORLD = World(account_max_failures=10**9, address_max_failures=10**9)
REFUSED_WORLD.sign_in("zhangsan", LDAP_PASSWORD)  # one shadow account exists already
PASSWORDS = {"carol": PASSWORD, "zhangsan": LDAP_PASSWORD, "alias": LDAP_PASSWORD}


@hsettings(max_examples=150, deadline=None)
@given(
    username=st.one_of(
        st.sampled_from(["carol", "zhangsan", "alias", "ghost", "Carol", " ZHANGSAN "]),
        st.text(max_size=30),
    ),
    password=st.one_of(st.sampled_from([PASSWORD, LDAP_PASSWORD]), st.text(max_size=20)),
)
def test_unknown_users_and_wrong_passwords_get_the_same_refusal_from_every_provider(
    username: str, password: str
) -> None:
    """A local user, a shadow account, a directory user never seen, a local name the directory
    also knows, an unknown name: a refused sign-in is one SignInFailed with one message."""
    name = username.strip().lower()
    try:
        principal = REFUSED_WORLD.sign_in(username, password)
    except SignInFailed as refused:
        assert str(refused) == "sign-in failed: wrong username or password"
        assert type(refused) is SignInFailed
        assert not (name in ("carol", "zhangsan") and password == PASSWORDS[name])
        return
    assert principal.username in ("carol", "zhangsan")
    assert password == PASSWORDS[principal.username]


# -- principals -----------------------------------------------------------------------------------


def test_principal_of_unknown_disabled_and_with_a_deleted_role(world: World) -> None:
    world.directory.save_role(Role(name="reader", permissions=frozenset({Permission.SEARCH})))
    world.directory.add("erin", PASSWORD, roles=["reader", "auditor"], departments=["销售部"])
    assert world.service.principal("nobody") is None
    assert world.service.principal("Not A Name!") is None
    erin = world.service.principal("Erin")
    assert role_names(erin) == {"reader", "auditor"} and erin is not None
    assert erin.departments == {"销售部"} and erin.may(Permission.SEARCH)
    world.directory.change_roles("erin", remove=["reader"])
    world.directory.delete_role("reader")
    world.monotonic.now += TTL
    erin = world.service.principal("erin")
    assert role_names(erin) == {"auditor"} and erin is not None
    assert not erin.may(Permission.SEARCH)
    world.directory.set_disabled("erin", True)
    world.monotonic.now += TTL
    assert world.service.principal("erin") is None


def test_a_deleted_role_still_named_by_a_user_grants_nothing(world: World) -> None:
    world.directory.save_role(Role(name="reader", permissions=frozenset({Permission.SEARCH})))
    world.sign_in("zhangsan", LDAP_PASSWORD)
    world.ldap.add(identity("zhangsan", roles=frozenset({"reader"})), LDAP_PASSWORD)
    assert world.service.authenticate("zhangsan", LDAP_PASSWORD, ADDRESS).may(Permission.SEARCH)
    world.store.delete("access/roles/reader")  # the mapping still names it
    world.monotonic.now += TTL
    principal = world.service.principal("zhangsan")
    assert principal is not None and principal.roles == ()
    assert principal.permissions == frozenset()


def test_principals_are_cached_for_at_most_the_ttl(world: World) -> None:
    world.directory.save_role(Role(name="reader", permissions=frozenset({Permission.SEARCH})))
    world.directory.add("erin", PASSWORD, roles=["reader"])
    assert role_names(world.service.principal("erin")) == {"reader"}
    calls = len(world.store.faults.calls)
    for _ in range(50):
        assert role_names(world.service.principal("erin")) == {"reader"}
    assert len(world.store.faults.calls) == calls  # served from memory: no store request
    world.directory.set_disabled("erin", True)
    world.monotonic.now += TTL - 0.01
    assert world.service.principal("erin") is not None  # stale, within the bound
    world.monotonic.now += 0.01
    assert world.service.principal("erin") is None


def test_the_role_cache_expires_with_the_ttl_too(world: World) -> None:
    reader = Role(name="reader", permissions=frozenset({Permission.SEARCH}))
    world.directory.save_role(reader)
    world.directory.add("erin", PASSWORD, roles=["reader"])
    world.directory.add("finn", PASSWORD, roles=["reader"])
    assert world.service.principal("erin") is not None  # roles read now
    world.monotonic.now += TTL / 2
    world.directory.save_role(reader.model_copy(update={"permissions": frozenset()}))
    finn = world.service.principal("finn")  # user read now, roles from the cache
    assert finn is not None and finn.may(Permission.SEARCH)
    world.monotonic.now += TTL / 2  # the roles are TTL old: finn's entry expires with them
    finn = world.service.principal("finn")
    assert finn is not None and not finn.may(Permission.SEARCH)


def test_no_cache_with_a_ttl_of_zero(world: World) -> None:
    service = SignInService(world.directory, cache=PrincipalCache(0))
    world.directory.add("erin", PASSWORD, roles=["auditor"])
    assert service.principal("erin") is not None
    world.directory.set_disabled("erin", True)
    assert service.principal("erin") is None


def test_the_cache_holds_a_bounded_number_of_principals() -> None:
    cache = PrincipalCache(60, size=3, monotonic=Monotonic())
    for name in ["a", "b", "c", "d"]:
        cache.keep(name, Principal(username=name), cache.monotonic())
    assert cache.principal("a") == (False, None)
    assert cache.principal("d") == (True, Principal(username="d"))


def test_built_in_roles_resolve_through_the_service(world: World) -> None:
    principal = world.service.principal("carol")
    assert principal is not None and principal.roles == (BUILTIN_ROLES["admin"],)


def test_forget_applies_a_change_made_in_this_process_at_once(world: World) -> None:
    world.directory.add("erin", PASSWORD, roles=["auditor"])
    assert world.service.principal("erin") is not None
    world.directory.set_disabled("erin", True)
    world.service.forget("Erin")
    assert world.service.principal("erin") is None
    world.directory.save_role(Role(name="reader", permissions=frozenset({Permission.SEARCH})))
    world.directory.change_roles("carol", add=["reader"])
    assert role_names(world.service.principal("carol")) == {"admin"}  # cached, roles too
    world.service.forget()
    assert role_names(world.service.principal("carol")) == {"admin", "reader"}
