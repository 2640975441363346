"""Sessions against the real Redis: lookup, idle and absolute expiry (moved by an injected
clock, never slept), revoke, revoke_all, and only hashes of session ids in Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver import bootstrap
from archiver.access.sessions import SessionRecord, Sessions, SessionTimeouts, secret_hash
from archiver.adapters.redis_sessions import RedisSessionStore
from archiver.errors import BackendUnavailable
from archiver.ports import SessionStore
from archiver.settings import Settings
from tests.support.fakes import InMemorySessionStore
from tests.support.sessions import FakeClock, throwaway_session_store

pytestmark = pytest.mark.services

IDLE, ABSOLUTE = timedelta(minutes=30), timedelta(hours=12)
SECOND = timedelta(seconds=1)


@pytest.fixture
def store(settings: Settings) -> Iterator[RedisSessionStore]:
    with throwaway_session_store(settings) as store:
        yield store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sessions(store: RedisSessionStore, clock: FakeClock) -> Sessions:
    return Sessions(store, SessionTimeouts(IDLE, ABSOLUTE), clock)


def test_a_new_session_is_found_by_its_id_with_its_own_csrf_token(sessions: Sessions) -> None:
    first, second = sessions.create("alice"), sessions.create("alice")
    found = sessions.lookup(first.session_id)
    assert found is not None and found.username == "alice"
    assert found.csrf_token == first.record.csrf_token
    assert len({first.session_id, second.session_id, found.csrf_token}) == 3
    assert len(first.session_id) >= 43  # 256 bits, url-safe base64
    assert sessions.lookup("not-a-session") is None
    assert sessions.lookup("") is None


def test_redis_holds_the_hash_of_the_id_never_the_id(
    sessions: Sessions, store: RedisSessionStore
) -> None:
    created = sessions.create("alice")
    sessions.lookup(created.session_id)
    keys = [k for k in store.client.scan_iter(match="mailvault-test-*")]
    assert store.session_key(secret_hash(created.session_id)) in keys
    everything = " ".join(keys)
    # every kind of value: other tests of this session leave sign-in counters (strings) too
    read = {
        "hash": lambda key: store.client.hvals(key),
        "set": lambda key: store.client.smembers(key),
        "string": lambda key: [store.client.get(key)],
        "list": lambda key: store.client.lrange(key, 0, -1),
        "zset": lambda key: store.client.zrange(key, 0, -1),
    }
    for key in keys:
        kind = store.client.type(key)
        everything += " " + " ".join(map(str, read.get(kind, lambda _: [])(key)))
    assert created.session_id not in everything


def test_each_use_refreshes_the_idle_timeout_and_idleness_ends_the_session(
    sessions: Sessions, store: RedisSessionStore, clock: FakeClock
) -> None:
    created = sessions.create("alice")
    key = store.session_key(secret_hash(created.session_id))
    for _ in range(4):  # two hours of use, each gap just under the idle timeout
        clock.advance(IDLE - SECOND)
        assert sessions.lookup(created.session_id) is not None
        # the backstop follows: a full idle timeout again from now
        assert IDLE.total_seconds() - 5 < store.client.ttl(key) <= IDLE.total_seconds()
    clock.advance(IDLE)
    assert sessions.lookup(created.session_id) is None
    assert not store.client.exists(key)  # removed, not just refused
    clock.advance(-IDLE)  # even going back in time does not bring it back
    assert sessions.lookup(created.session_id) is None


def test_the_absolute_timeout_ends_a_session_however_busy(
    sessions: Sessions, store: RedisSessionStore, clock: FakeClock
) -> None:
    created = sessions.create("alice")
    key = store.session_key(secret_hash(created.session_id))
    step = timedelta(minutes=20)
    for _ in range(int(ABSOLUTE / step) - 1):
        clock.advance(step)
        assert sessions.lookup(created.session_id) is not None
    # twenty minutes left: the TTL is not the idle timeout any more but what is left
    assert 0 < store.client.ttl(key) <= step.total_seconds()
    clock.advance(step)
    assert sessions.lookup(created.session_id) is None


def test_sign_out_revokes_and_a_late_touch_does_not_bring_it_back(
    sessions: Sessions, store: RedisSessionStore, clock: FakeClock
) -> None:
    created = sessions.create("alice")
    found = sessions.lookup(created.session_id)
    assert found is not None
    sessions.revoke(found)
    assert sessions.lookup(created.session_id) is None
    assert not store.touch(found.key, clock(), 60)
    assert store.get(found.key) is None and not store.client.exists(store.session_key(found.key))


def test_revoke_all_ends_every_session_of_one_user_only(sessions: Sessions) -> None:
    alices = [sessions.create("alice") for _ in range(3)]
    bob = sessions.create("bob")
    assert sessions.revoke_all("alice") == 3
    assert all(sessions.lookup(s.session_id) is None for s in alices)
    assert sessions.lookup(bob.session_id) is not None
    assert sessions.revoke_all("alice") == 0
    after = sessions.create("alice")  # signing in again works
    assert sessions.lookup(after.session_id) is not None


def test_revoke_all_does_not_count_sessions_that_already_ended(
    sessions: Sessions, clock: FakeClock
) -> None:
    ended = sessions.create("alice")
    clock.advance(IDLE)
    assert sessions.lookup(ended.session_id) is None
    sessions.create("alice")
    assert sessions.revoke_all("alice") == 1


def test_redis_down_is_a_transient_backend_error(clock: FakeClock) -> None:
    down = RedisSessionStore.from_url("redis://127.0.0.1:1/0")
    with pytest.raises(BackendUnavailable) as caught:
        Sessions(down, SessionTimeouts(IDLE, ABSOLUTE), clock).create("alice")
    assert caught.value.backend == "redis"


@settings(max_examples=200, deadline=None)
@given(gaps=st.lists(st.integers(min_value=0, max_value=3 * 3600), min_size=1, max_size=30))
def test_a_session_lives_while_every_gap_is_short_and_the_total_is_too(gaps: list[int]) -> None:
    clock = FakeClock()
    sessions = Sessions(InMemorySessionStore(), SessionTimeouts(IDLE, ABSOLUTE), clock)
    created = sessions.create("alice")
    elapsed = 0
    alive = True
    for gap in gaps:
        clock.advance(timedelta(seconds=gap))
        elapsed += gap
        alive = alive and gap < IDLE.total_seconds() and elapsed < ABSOLUTE.total_seconds()
        assert (sessions.lookup(created.session_id) is not None) == alive


@pytest.fixture(params=["redis", "memory"])
def any_store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[SessionStore]:
    if request.param == "memory":
        yield InMemorySessionStore()
        return
    with throwaway_session_store(settings) as store:
        yield store


def test_the_fake_session_store_keeps_to_the_redis_stores_semantics(
    any_store: SessionStore, clock: FakeClock
) -> None:
    record = SessionRecord(username="王五", created_at=clock(), last_seen=clock(), csrf_token="c")
    any_store.create("k1", record, 60)
    any_store.create("k2", record, 60)
    any_store.create("k3", record.model_copy(update={"username": "bob"}), 60)
    assert any_store.get("k1") == record and any_store.get("nope") is None
    later = clock() + SECOND
    assert any_store.touch("k1", later, 60)
    assert any_store.get("k1") == record.model_copy(update={"last_seen": later})
    any_store.delete("k1")
    any_store.delete("k1")  # deleting what is gone is no error
    assert any_store.get("k1") is None and not any_store.touch("k1", later, 60)
    assert any_store.get("k1") is None
    assert any_store.delete_user("王五") == 1 and any_store.get("k2") is None
    assert any_store.get("k3") is not None and any_store.delete_user("nobody") == 0


def test_bootstrap_builds_sessions_from_the_settings(settings: Settings, clock: FakeClock) -> None:
    with throwaway_session_store(settings) as probe:
        prefix = probe.session_key("").removesuffix("session:")
    timeouts = {"session_idle_minutes": 2, "session_absolute_hours": 1}
    configured = settings.model_copy(update={"session_key_prefix": prefix, **timeouts})
    sessions = bootstrap.sessions(configured, clock=clock)
    store = bootstrap.session_store(configured)
    try:
        created = sessions.create("alice")
        assert 0 < store.client.ttl(store.session_key(secret_hash(created.session_id))) <= 120
        clock.advance(timedelta(minutes=2))
        assert sessions.lookup(created.session_id) is None
    finally:
        sessions.revoke_all("alice")
        store.client.close()
