"""The sign-in service against a real OpenLDAP of this module's own (its groups are changed by
the tests), the real SeaweedFS (users) and the real Redis (failed sign-ins)."""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from argon2 import PasswordHasher
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from archiver import bootstrap
from archiver.access.lockout import LockoutPolicy
from archiver.access.signin import PrincipalCache, SignInService
from archiver.access.users import UserDirectory
from archiver.adapters.ldap import LdapConfig, LdapProvider
from archiver.adapters.redis_limits import RedisSignInLimits
from archiver.errors import AccountDisabled, AccountLocked, BackendUnavailable, SignInFailed
from archiver.settings import Settings
from tests.support.dovecot import free_port
from tests.support.signin import throwaway_limits
from tests.support.slapd import (
    GROUPS,
    PEOPLE,
    READER_DN,
    READER_PASSWORD,
    ROOT_DN,
    ROOT_PASSWORD,
    Directory,
    Slapd,
    User,
    running_slapd,
)
from tests.support.slapd import (
    ldap_config as support_config,
)

pytestmark = pytest.mark.services

WANG = User("wang", "wang-密码", "王磊", "wang@example.com", ("legal", "sales"))
ALICE = User("alice", "alice-ldap-pw", "Alice in LDAP", "alice@example.com", ("compliance",))
# bob keeps legal non-empty when wang leaves it (groupOfNames needs a member)
BOB = User("bob", "bob-pw", "Bob", "bob@example.com", ("legal",))
DIRECTORY = Directory(users=(WANG, ALICE, BOB), groups=("legal", "sales", "compliance"))
ROLE_MAP = {f"cn=legal,{GROUPS}": ["legal"], f"cn=compliance,{GROUPS}": ["compliance_officer"]}
DEPARTMENT_MAP = {f"cn=sales,{GROUPS}": ["销售部"]}
LOCAL_PASSWORD = "a local passphrase"
ADDRESS = "192.0.2.9"
FAST = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


@pytest.fixture(scope="module")
def server() -> Iterator[Slapd]:
    with running_slapd(DIRECTORY) as slapd:
        yield slapd


def ldap_config(server: Slapd, **overrides: Any) -> LdapConfig:
    maps = {"role_map": ROLE_MAP, "department_map": DEPARTMENT_MAP}
    return support_config(server, **(maps | overrides))


def membership(server: Slapd, change: str, group: str, user: User) -> None:
    """Add the user to the group or remove them, as a directory administrator would."""
    ldif = f"dn: cn={group},{GROUPS}\nchangetype: modify\n{change}: member\nmember: {user.dn}\n"
    subprocess.run(
        ["ldapmodify", "-x", "-H", server.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
        input=ldif,
        text=True,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def limits(settings: Settings) -> Iterator[RedisSignInLimits]:
    with throwaway_limits(settings) as limits:
        yield limits


@pytest.fixture
def directory(settings: Settings, backends: None, limits: RedisSignInLimits) -> UserDirectory:
    store = bootstrap.json_store(settings)
    store.PREFIX = f"meta/test-ldap-signin-{uuid.uuid4().hex}/"
    return UserDirectory(
        store,
        limits,
        hasher=PasswordHasher(**FAST),
        lockout=LockoutPolicy(account_max_failures=3),
    )


def service(directory: UserDirectory, provider: LdapProvider) -> SignInService:
    return SignInService(directory, [provider], cache=PrincipalCache(0))


def test_an_ldap_sign_in_creates_the_shadow_account_and_group_changes_apply_at_the_next(
    server: Slapd, directory: UserDirectory
) -> None:
    signin = service(directory, LdapProvider(ldap_config(server)))
    first = signin.authenticate("Wang", WANG.password, ADDRESS)
    assert {r.name for r in first.roles} == {"legal"}
    assert first.departments == {"销售部"}
    user = directory.get("wang")
    assert (user.provider, user.external_id, user.display_name) == ("ldap", WANG.dn, "王磊")
    assert user.password_hash is None
    stored = directory.store.get_json("access/users/wang")
    assert stored is not None and stored["password_hash"] is None
    assert signin.principal("wang") == first
    try:
        membership(server, "add", "compliance", WANG)
        membership(server, "delete", "legal", WANG)
        assert signin.principal("wang") == first  # the directory is only asked at sign-in
        again = signin.authenticate("wang", WANG.password, ADDRESS)
        assert {r.name for r in again.roles} == {"compliance_officer"}
        assert signin.principal("wang") == again
        assert directory.get("wang").directory_roles == ("compliance_officer",)
    finally:
        membership(server, "add", "legal", WANG)
        membership(server, "delete", "compliance", WANG)


def test_a_disabled_shadow_account_is_refused_though_ldap_accepts_the_password(
    server: Slapd, directory: UserDirectory
) -> None:
    signin = service(directory, LdapProvider(ldap_config(server)))
    signin.authenticate("wang", WANG.password, ADDRESS)
    directory.set_disabled("wang", True)
    with pytest.raises(AccountDisabled):
        signin.authenticate("wang", WANG.password, ADDRESS)
    assert signin.principal("wang") is None


def test_a_local_account_is_never_tried_on_ldap(server: Slapd, directory: UserDirectory) -> None:
    directory.add("alice", LOCAL_PASSWORD, roles=["auditor"])
    signin = service(directory, LdapProvider(ldap_config(server)))
    with pytest.raises(SignInFailed):  # the directory's alice and her password: not this alice
        signin.authenticate("alice", ALICE.password, ADDRESS)
    # a directory that cannot be reached proves it is not asked: no BackendUnavailable
    unreachable = LdapProvider(ldap_config(server, url=f"ldap://127.0.0.1:{free_port()}"))
    offline = service(directory, unreachable)
    assert {r.name for r in offline.authenticate("alice", LOCAL_PASSWORD, ADDRESS).roles} == {
        "auditor"
    }
    with pytest.raises(SignInFailed):
        offline.authenticate("alice", ALICE.password, ADDRESS)
    assert directory.get("alice").is_local


def test_ldap_unreachable_is_unavailable_and_not_counted(
    server: Slapd, directory: UserDirectory
) -> None:
    unreachable = LdapProvider(ldap_config(server, url=f"ldap://127.0.0.1:{free_port()}"))
    for _ in range(directory.lockout.account_max_failures + 1):
        with pytest.raises(BackendUnavailable):
            service(directory, unreachable).authenticate("wang", WANG.password, ADDRESS)
    assert directory.lock_status("wang") is None
    signin = service(directory, LdapProvider(ldap_config(server)))
    assert signin.authenticate("wang", WANG.password, ADDRESS).username == "wang"


def test_failed_ldap_sign_ins_lock_the_account_like_local_ones(
    server: Slapd, directory: UserDirectory
) -> None:
    signin = service(directory, LdapProvider(ldap_config(server)))
    for _ in range(directory.lockout.account_max_failures - 1):
        with pytest.raises(SignInFailed):
            signin.authenticate("wang", "wrong", ADDRESS)
    with pytest.raises(AccountLocked):
        signin.authenticate("wang", "wrong", ADDRESS)
    with pytest.raises(AccountLocked):
        signin.authenticate("wang", WANG.password, ADDRESS)
    directory.guard.unlock("wang")
    assert signin.authenticate("wang", WANG.password, ADDRESS).username == "wang"


def test_bootstrap_builds_the_service_with_ldap_when_configured(
    server: Slapd, settings: Settings, directory: UserDirectory
) -> None:
    assert bootstrap.sign_in_service(settings, directory).providers == ()
    configured = settings.model_copy(
        update={
            "ldap_url": server.url,
            "ldap_bind_dn": READER_DN,
            "ldap_bind_password": READER_PASSWORD,
            "ldap_user_base": PEOPLE,
            "ldap_role_map": ROLE_MAP,
            "principal_cache_seconds": 1.5,
        }
    )
    signin = bootstrap.sign_in_service(configured, directory)
    assert [p.name for p in signin.providers] == ["ldap"]
    assert signin.cache.ttl == 1.5
    assert {r.name for r in signin.authenticate("wang", WANG.password, ADDRESS).roles} == {"legal"}


def test_concurrent_first_sign_ins_create_one_shadow_account(
    server: Slapd, directory: UserDirectory
) -> None:
    signin = service(directory, LdapProvider(ldap_config(server)))
    start = threading.Barrier(6)

    def sign_in() -> str:
        start.wait()
        return signin.authenticate("wang", WANG.password, ADDRESS).username

    with ThreadPoolExecutor(6) as pool:
        names = list(pool.map(lambda _: sign_in(), range(6)))
    assert names == ["wang"] * 6
    assert [u.username for u in directory.list()] == ["wang"]
    assert directory.get("wang").directory_roles == ("legal",)


@pytest.fixture(scope="module")
def refusing(server: Slapd, settings: Settings, backends: None) -> Iterator[SignInService]:
    """One service for all the examples (no lockout): local alice, wang's shadow account."""
    with throwaway_limits(settings) as limits:
        store = bootstrap.json_store(settings)
        store.PREFIX = f"meta/test-ldap-refusals-{uuid.uuid4().hex}/"
        directory = UserDirectory(
            store,
            limits,
            hasher=PasswordHasher(**FAST),
            lockout=LockoutPolicy(account_max_failures=10**9, address_max_failures=10**9),
        )
        directory.add("alice", LOCAL_PASSWORD)
        signin = service(directory, LdapProvider(ldap_config(server)))
        signin.authenticate("wang", WANG.password, ADDRESS)
        yield signin


@hsettings(max_examples=40, deadline=None)
@given(
    username=st.one_of(
        st.sampled_from(["alice", "wang", "bob", "ghost", "Wang ", "*", "wang)(uid=*"]),
        st.text(max_size=20),
    ),
    password=st.one_of(
        st.sampled_from([LOCAL_PASSWORD, WANG.password, ALICE.password, BOB.password]),
        st.text(max_size=12),
    ),
)
def test_every_refusal_is_the_same_whichever_provider_refused(
    refusing: SignInService, username: str, password: str
) -> None:
    """Local alice (the directory has an alice too), LDAP users with and without a shadow
    account, unknown and injected names, against the real directory, S3 and Redis."""
    rightful = {"alice": LOCAL_PASSWORD, "wang": WANG.password, "bob": BOB.password}
    try:
        principal = refusing.authenticate(username, password, ADDRESS)
    except SignInFailed as refused:
        assert type(refused) is SignInFailed
        assert str(refused) == "sign-in failed: wrong username or password"
        assert rightful.get(username.strip().lower()) != password
        return
    assert rightful[principal.username] == password
