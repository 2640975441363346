"""API tokens against the real S3 JSON store: one-time secret, stored as a hash, expiry,
revocation, and never more permissions than the owner has (hypothesis over permission sets)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver import bootstrap
from archiver.access.model import BUILTIN_ROLES, Permission, Principal
from archiver.access.sessions import secret_hash
from archiver.access.tokens import TOKEN_PREFIX, ApiTokens
from archiver.errors import InvalidToken, TokenNotFound
from archiver.ports import JsonStore
from archiver.settings import Settings
from tests.support.sessions import FakeClock

pytestmark = pytest.mark.services

MAX = timedelta(days=90)
DAY = timedelta(days=1)
LEGAL = BUILTIN_ROLES["legal"]


@pytest.fixture(scope="module")
def store(settings: Settings, backends: None) -> JsonStore:
    return bootstrap.json_store(settings)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tokens(store: JsonStore, clock: FakeClock) -> ApiTokens:
    return ApiTokens(store, MAX, clock)


def _user(*roles: str) -> Principal:
    name = f"user-{uuid.uuid4().hex[:8]}@例子.cn"  # quoted in the S3 key
    return Principal(username=name, roles=tuple(BUILTIN_ROLES[r] for r in roles))


def test_a_token_is_found_by_its_secret_which_is_stored_nowhere(
    tokens: ApiTokens, store: JsonStore, clock: FakeClock
) -> None:
    owner = _user("legal")
    created = tokens.create(owner, "nightly export", frozenset({Permission.EXPORT}), clock() + DAY)
    assert created.secret.startswith(TOKEN_PREFIX) and len(created.secret) >= 46
    found = tokens.authenticate(created.secret)
    assert found is not None and found.owner == owner.username
    assert found.permissions == {Permission.EXPORT} and found.last_used_at == clock()
    hashed = secret_hash(created.secret)
    keys = store.list_keys("api-tokens/")
    assert f"api-tokens/by-hash/{hashed}" in keys
    for key in keys:
        assert created.secret not in str(store.get_json(key))
    assert tokens.authenticate(created.secret[:-1] + "x") is None
    assert tokens.authenticate(created.secret.removeprefix(TOKEN_PREFIX)) is None
    assert tokens.authenticate("") is None


def test_expired_and_revoked_tokens_are_refused(tokens: ApiTokens, clock: FakeClock) -> None:
    owner = _user("legal")
    short = tokens.create(owner, "short", frozenset({Permission.SEARCH}), clock() + DAY)
    kept = tokens.create(owner, "kept", frozenset({Permission.SEARCH}), clock() + 2 * DAY)
    clock.advance(DAY - timedelta(seconds=1))
    assert tokens.authenticate(short.secret) is not None
    clock.advance(timedelta(seconds=1))
    assert tokens.authenticate(short.secret) is None
    revoked = tokens.revoke(owner.username, kept.token.id)
    assert revoked.revoked_at == clock()
    assert tokens.authenticate(kept.secret) is None
    assert tokens.revoke(owner.username, kept.token.id).revoked_at == revoked.revoked_at
    listed = {t.name: t for t in tokens.of(owner.username)}
    assert listed["kept"].revoked_at == clock() and listed["short"].last_used_at is not None


def test_only_the_owner_can_revoke_a_token(tokens: ApiTokens, clock: FakeClock) -> None:
    owner, other = _user("legal"), _user("legal")
    created = tokens.create(owner, "mine", frozenset({Permission.SEARCH}), clock() + DAY)
    with pytest.raises(TokenNotFound):
        tokens.revoke(other.username, created.token.id)
    with pytest.raises(TokenNotFound):
        tokens.revoke(owner.username, "0" * 16)
    assert tokens.authenticate(created.secret) is not None
    assert tokens.of(other.username) == []


def test_the_last_use_is_written_at_most_once_a_minute(
    tokens: ApiTokens, store: JsonStore, clock: FakeClock
) -> None:
    owner = _user("legal")
    created = tokens.create(owner, "busy", frozenset({Permission.SEARCH}), clock() + DAY)
    tokens.authenticate(created.secret)
    first = clock()
    clock.advance(timedelta(seconds=30))
    tokens.authenticate(created.secret)
    assert tokens.of(owner.username)[0].last_used_at == first
    clock.advance(timedelta(seconds=30))
    tokens.authenticate(created.secret)
    assert tokens.of(owner.username)[0].last_used_at == clock()


@pytest.mark.parametrize(
    ("days", "detail"), [(-1, "in the past"), (0, "in the past"), (91, "at most 90 days")]
)
def test_expiry_is_required_in_the_future_and_within_the_maximum(
    tokens: ApiTokens, clock: FakeClock, days: int, detail: str
) -> None:
    with pytest.raises(InvalidToken, match=detail):
        tokens.create(_user("legal"), "t", frozenset({Permission.SEARCH}), clock() + days * DAY)


def test_an_expiry_without_a_time_zone_is_refused(tokens: ApiTokens, clock: FakeClock) -> None:
    naive = (clock() + DAY).replace(tzinfo=None)
    with pytest.raises(InvalidToken, match="time zone"):
        tokens.create(_user("legal"), "t", frozenset({Permission.SEARCH}), naive)


def test_a_token_cannot_make_tokens(tokens: ApiTokens, clock: FakeClock) -> None:
    acting = _user("legal").model_copy(update={"token_permissions": frozenset(Permission)})
    with pytest.raises(InvalidToken, match="signed-in session"):
        tokens.create(acting, "t", frozenset({Permission.SEARCH}), clock() + DAY)


ROLE_NAMES = sorted(BUILTIN_ROLES)


@settings(max_examples=40, deadline=None)
@given(roles=st.sets(st.sampled_from(ROLE_NAMES)), data=st.data())
def test_a_token_gets_exactly_what_it_asks_if_the_owner_has_it_and_nothing_otherwise(
    store: JsonStore, roles: set[str], data: st.DataObject
) -> None:
    clock = FakeClock()
    tokens = ApiTokens(store, MAX, clock)
    owner = _user(*sorted(roles))
    # half the time within the owner's permissions, otherwise anything (mostly beyond them)
    within = sorted(owner.permissions) or list(Permission)
    pool = within if data.draw(st.booleans(), "within") else list(Permission)
    asked = data.draw(st.frozensets(st.sampled_from(pool)), "asked")
    if not asked or not asked <= owner.permissions:
        with pytest.raises(InvalidToken):
            tokens.create(owner, "t", asked, clock() + DAY)
        assert tokens.of(owner.username) == []
        return
    created = tokens.create(owner, "t", asked, clock() + DAY)
    found = tokens.authenticate(created.secret)
    assert found is not None and found.permissions == asked
    acting = owner.model_copy(update={"token_permissions": found.permissions})
    assert acting.permissions == asked
    # the owner losing a role later takes its permissions from the token too
    fewer = acting.model_copy(update={"roles": acting.roles[1:]})
    assert fewer.permissions == asked & Principal(username="x", roles=acting.roles[1:]).permissions


def test_a_cached_token_is_revoked_at_once_here_and_within_the_bound_elsewhere(
    store: JsonStore, clock: FakeClock
) -> None:
    here = ApiTokens(store, MAX, clock, cache_seconds=60)
    elsewhere = ApiTokens(store, MAX, clock, cache_seconds=60)  # another API process
    owner = _user("legal")
    first = here.create(owner, "a", frozenset({Permission.SEARCH}), clock() + DAY)
    second = here.create(owner, "b", frozenset({Permission.SEARCH}), clock() + DAY)
    for token in (first, second):
        assert here.authenticate(token.secret) is not None
    here.revoke(owner.username, first.token.id)
    assert here.authenticate(first.secret) is None  # revoked in this process: at once
    elsewhere.revoke(owner.username, second.token.id)
    # revoked by another process: this one trusts its copy until the bound passes
    assert here.authenticate(second.secret) is not None
    uncached = ApiTokens(store, MAX, clock, cache_seconds=0)
    assert uncached.authenticate(second.secret) is None
    clock.advance(DAY)  # a cached token still expires on time
    assert here.authenticate(second.secret) is None
