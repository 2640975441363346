"""LDAP sign-in against a real OpenLDAP (tests/support/slapd.py): search, bind, groups, mapping,
refusals, timeouts."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver import bootstrap
from archiver.access.identity import Identity
from archiver.adapters.ldap import LdapConfig, LdapProvider, normal_dn
from archiver.errors import BackendFailed, BackendUnavailable, SignInFailed
from archiver.ports import IdentityProvider
from archiver.settings import Settings
from tests.support.dovecot import free_port
from tests.support.fakes import InMemoryIdentityProvider
from tests.support.slapd import (
    DIRECTORY,
    GROUPS,
    PEOPLE,
    READER_DN,
    READER_PASSWORD,
    Slapd,
    ldap_config,
)

ROLE_MAP = {
    f"cn=legal,{GROUPS}": ["legal"],
    # spelt differently from the directory: DNs compare normalised
    f"CN=Compliance, OU=Groups, {GROUPS.split(',', 1)[1]}": ["compliance_officer", "auditor"],
}
DEPARTMENT_MAP = {f"cn=legal,{GROUPS}": ["法务部"], f"cn=sales,{GROUPS}": ["销售部"]}
USERS = {u.uid: u for u in DIRECTORY.users}


def config(server: Slapd, **overrides: Any) -> LdapConfig:
    maps = {"role_map": ROLE_MAP, "department_map": DEPARTMENT_MAP}
    return ldap_config(server, **(maps | overrides))


@pytest.fixture(scope="module", params=["memberOf", "group search"])
def provider(request: pytest.FixtureRequest, slapd: Slapd) -> LdapProvider:
    """Both ways of finding groups must give the same answers."""
    group_base = "" if request.param == "memberOf" else GROUPS
    return LdapProvider(config(slapd, group_base=group_base))


def test_sign_in_maps_groups_to_roles_and_departments(provider: LdapProvider) -> None:
    zhang = USERS["zhangsan"]
    identity = provider.authenticate("zhangsan", zhang.password)
    assert identity == Identity(
        username="zhangsan",
        display_name="张三",
        email="zhangsan@example.com",
        roles=frozenset({"legal"}),
        departments=frozenset({"法务部", "销售部"}),
        provider="ldap",
        external_id=zhang.dn,
        groups=(f"cn=legal,{GROUPS}", f"cn=sales,{GROUPS}"),
    )
    alice = provider.authenticate("alice", USERS["alice"].password)
    assert alice.roles == {"compliance_officer", "auditor"}
    assert alice.departments == frozenset()


def test_username_is_the_directorys_spelling(provider: LdapProvider) -> None:
    # uid matches case-insensitively: one account, not one per spelling
    assert provider.authenticate("ZhangSan", USERS["zhangsan"].password).username == "zhangsan"


def test_user_in_no_mapped_group_signs_in_with_no_roles(provider: LdapProvider) -> None:
    identity = provider.authenticate("nobody", USERS["nobody"].password)
    assert identity.roles == frozenset()
    assert identity.departments == frozenset()
    assert identity.groups == (f"cn=unmapped,{GROUPS}",)


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("zhangsan", "wrong"),  # wrong password
        ("zhangsan", USERS["alice"].password),  # another user's password
        ("zhangsan", USERS["zhangsan"].password + " "),
        ("ghost", "anything"),  # unknown user
        ("ghost", READER_PASSWORD),
        ("reader", READER_PASSWORD),  # the search account is not a user under PEOPLE
        # filter injection: each would widen the filter to match every entry
        ("*", USERS["zhangsan"].password),
        ("*)(uid=*", USERS["zhangsan"].password),
        ("zhangsan)(|(uid=*", USERS["zhangsan"].password),
        ("star*", USERS["star*user"].password),  # * is no wildcard
        ("star\\2auser", USERS["star*user"].password),  # an escape typed in is literal too
        ("zhang\x00san", USERS["zhangsan"].password),
    ],
)
def test_refused(provider: LdapProvider, username: str, password: str) -> None:
    with pytest.raises(SignInFailed) as refused:
        provider.authenticate(username, password)
    assert refused.value.username == username


@pytest.mark.parametrize("username", ["star*user", "o(brien)"])
def test_metacharacters_in_a_real_name_are_matched_literally(
    provider: LdapProvider, username: str
) -> None:
    assert provider.authenticate(username, USERS[username].password).username == username


@pytest.mark.parametrize("username", ["zhangsan", "ghost", "*", ""])
def test_empty_password_refused_before_any_bind(slapd: Slapd, username: str) -> None:
    # an unbound port: reaching for the directory at all would answer BackendUnavailable
    provider = LdapProvider(config(slapd, url=f"ldap://127.0.0.1:{free_port()}"))
    with pytest.raises(SignInFailed) as refused:
        provider.authenticate(username, "")
    assert "empty password" in refused.value.detail


def test_empty_password_refused_by_a_directory_that_would_accept_it(slapd: Slapd) -> None:
    with pytest.raises(SignInFailed) as refused:
        LdapProvider(config(slapd)).authenticate("zhangsan", "")
    assert "empty password" in refused.value.detail


def test_why_an_empty_password_must_be_refused(slapd: Slapd) -> None:
    """The test directory, like Active Directory, answers success to a user's DN with an empty
    password: an unauthenticated bind (RFC 4513 5.1.2), as anonymous."""
    done = subprocess.run(
        ["ldapwhoami", "-x", "-H", slapd.url, "-D", USERS["zhangsan"].dn, "-w", ""],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "anonymous"


@pytest.mark.parametrize("password", ["\x00", "pw\x07", "\ufdd0", "\ue000"])
def test_password_that_cannot_be_sent_is_a_wrong_password(slapd: Slapd, password: str) -> None:
    # SASLprep (RFC 4013) forbids these; such a password cannot be anyone's
    with pytest.raises(SignInFailed):
        LdapProvider(config(slapd)).authenticate("zhangsan", password)


@pytest.mark.parametrize("whose", ["zhangsan", "alice"])
def test_a_filter_matching_several_entries_signs_no_one_in(slapd: Slapd, whose: str) -> None:
    # never guess whose password it is: the right one for either of them is not enough
    provider = LdapProvider(config(slapd, user_filter="(|(uid={username})(uid=alice))"))
    with pytest.raises(SignInFailed):
        provider.authenticate("zhangsan", USERS[whose].password)


def test_wrong_search_account_is_a_configuration_error(slapd: Slapd) -> None:
    provider = LdapProvider(config(slapd, bind_password="not-it"))
    with pytest.raises(BackendFailed, match="search account"):
        provider.authenticate("zhangsan", USERS["zhangsan"].password)


def test_anonymous_search(slapd: Slapd) -> None:
    provider = LdapProvider(config(slapd, bind_dn="", bind_password=""))
    identity = provider.authenticate("zhangsan", USERS["zhangsan"].password)
    assert identity.roles == {"legal"}


def test_missing_user_base_is_a_configuration_error(slapd: Slapd) -> None:
    provider = LdapProvider(config(slapd, user_base="ou=nowhere,dc=example,dc=com"))
    with pytest.raises(BackendFailed, match="noSuchObject"):
        provider.authenticate("zhangsan", USERS["zhangsan"].password)


@pytest.mark.parametrize("how", ["starttls", "ldaps"])
def test_tls_with_the_directorys_ca(slapd: Slapd, how: str) -> None:
    url = slapd.url if how == "starttls" else slapd.ldaps_url
    provider = LdapProvider(
        config(slapd, url=url, start_tls=how == "starttls", ca_file=slapd.ca_file)
    )
    assert provider.authenticate("alice", USERS["alice"].password).username == "alice"


@pytest.mark.parametrize("how", ["starttls", "ldaps"])
def test_tls_refuses_a_server_it_cannot_verify(slapd: Slapd, how: str) -> None:
    # the system CAs do not know the test CA
    url = slapd.url if how == "starttls" else slapd.ldaps_url
    provider = LdapProvider(config(slapd, url=url, start_tls=how == "starttls"))
    with pytest.raises(BackendFailed, match="certificate is not trusted"):
        provider.authenticate("alice", USERS["alice"].password)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers: a hung server.
    Closed (resetting what waits in the backlog) after 10 s, so a client without timeouts fails
    the test rather than hanging it."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as sock:
        hang_up = threading.Timer(10, sock.close)
        hang_up.start()
        yield int(sock.getsockname()[1])
        hang_up.cancel()


@pytest.mark.parametrize("down", ["refused", "hung"])
def test_directory_down_is_unavailable_within_the_timeout(
    slapd: Slapd, silent_port: int, down: str
) -> None:
    port = free_port() if down == "refused" else silent_port
    provider = LdapProvider(config(slapd, url=f"ldap://127.0.0.1:{port}", timeout=1.0))
    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        provider.authenticate("zhangsan", USERS["zhangsan"].password)
    assert time.monotonic() - started < 3.0


usernames = st.one_of(
    st.text(max_size=40),
    st.text(alphabet='*()\\\x00=|&!<>~,;+"# zhangsan张三', max_size=30),
    st.sampled_from(sorted(USERS)),
    st.tuples(st.sampled_from(sorted(USERS)), st.text(alphabet="*()\\\x00 ", min_size=1)).map(
        "".join
    ),
)


passwords = st.one_of(st.text(max_size=20), st.sampled_from([u.password for u in USERS.values()]))


@settings(max_examples=200, deadline=None)
@given(username=usernames, password=passwords)
def test_arbitrary_names_never_sign_in_without_the_password(
    slapd: Slapd, username: str, password: str
) -> None:
    """Any name (any Unicode, filter metacharacters, wildcards after real names), with random or
    real passwords: only a real account with its own password signs in, and nothing but the
    typed refusal is ever raised."""
    provider = LdapProvider(config(slapd))
    try:
        identity = provider.authenticate(username, password)
    except SignInFailed:
        return
    user = USERS[identity.username]
    assert password == user.password
    # the name typed is the account's, as the directory matches uid (case, outer spaces)
    assert " ".join(username.split()).casefold() == user.uid.casefold()


def test_every_user_signs_in_with_their_password(slapd: Slapd) -> None:
    """The property above is not vacuous: the right password does sign in."""
    provider = LdapProvider(config(slapd))
    for user in DIRECTORY.users:
        assert provider.authenticate(user.uid, user.password).username == user.uid


def fake_directory(server: Slapd) -> InMemoryIdentityProvider:
    """The fake loaded with what the real provider answers for each user of DIRECTORY."""
    fake = InMemoryIdentityProvider()
    real = LdapProvider(config(server))
    for user in DIRECTORY.users:
        fake.add(real.authenticate(user.uid, user.password), user.password)
    return fake


@pytest.fixture(scope="module", params=["ldap", "fake"])
def either(request: pytest.FixtureRequest, slapd: Slapd) -> IdentityProvider:
    return LdapProvider(config(slapd)) if request.param == "ldap" else fake_directory(slapd)


@pytest.mark.parametrize(
    ("username", "password", "signs_in_as"),
    [
        ("zhangsan", USERS["zhangsan"].password, "zhangsan"),
        ("ZHANGSAN", USERS["zhangsan"].password, "zhangsan"),
        ("  zhangsan ", USERS["zhangsan"].password, "zhangsan"),
        ("star*user", USERS["star*user"].password, "star*user"),
        ("zhangsan", "wrong", None),
        ("zhangsan", "", None),
        ("ghost", "x", None),
        ("zhang*", USERS["zhangsan"].password, None),
        ("zhang san", USERS["zhangsan"].password, None),
    ],
)
def test_the_fake_answers_as_the_directory_does(
    either: IdentityProvider, username: str, password: str, signs_in_as: str | None
) -> None:
    """tests/support/fakes.py InMemoryIdentityProvider keeps to LdapProvider's semantics."""
    if signs_in_as is None:
        with pytest.raises(SignInFailed):
            either.authenticate(username, password)
    else:
        assert either.authenticate(username, password).username == signs_in_as


def test_config_rejects_templates_without_placeholders(slapd: Slapd) -> None:
    with pytest.raises(ValueError, match="username"):
        config(slapd, user_filter="(uid=alice)")
    with pytest.raises(ValueError, match="dn"):
        config(slapd, group_filter="(member=cn=x)")
    with pytest.raises(ValueError, match="not a DN"):
        config(slapd, role_map={"legal group": ["legal"]})


def test_normal_dn() -> None:
    assert normal_dn("CN=Legal, OU=Groups,dc=Example") == "cn=legal,ou=groups,dc=example"


def test_bootstrap_provider_from_settings(slapd: Slapd) -> None:
    assert bootstrap.ldap_provider(Settings(ldap_url="")) is None
    env_settings = Settings.model_validate(
        {
            "ldap_url": slapd.url,
            "ldap_bind_dn": READER_DN,
            "ldap_bind_password": READER_PASSWORD,
            "ldap_user_base": PEOPLE,
            "ldap_role_map": ROLE_MAP,
        }
    )
    provider = bootstrap.ldap_provider(env_settings)
    assert provider is not None
    assert provider.authenticate("zhangsan", USERS["zhangsan"].password).roles == {"legal"}


def test_role_map_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "MAILVAULT_LDAP_ROLE_MAP", '{"cn=legal,ou=groups,dc=example,dc=com": ["legal"]}'
    )
    assert Settings().ldap_role_map == {"cn=legal,ou=groups,dc=example,dc=com": ["legal"]}
