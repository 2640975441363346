"""RedisSignInLimits against the real Redis, and the in-memory fake held to the same script:
a sliding window of failures, blocks that end at their time and reset the count, clear."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from archiver.adapters.redis_limits import RedisSignInLimits
from archiver.errors import BackendFailed
from archiver.ports import SignInLimits
from archiver.settings import Settings
from tests.support.fakes import InMemorySignInLimits
from tests.support.signin import throwaway_limits

pytestmark = pytest.mark.services

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=60)


@pytest.fixture(params=["redis", "fake"])
def limits(request: pytest.FixtureRequest, settings: Settings) -> Iterator[SignInLimits]:
    if request.param == "fake":
        yield InMemorySignInLimits()
        return
    with throwaway_limits(settings) as limits:
        yield limits


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_failures_are_counted_in_a_sliding_window_per_key(limits: SignInLimits) -> None:
    assert [limits.add_failure("a", at(s), WINDOW) for s in (0, 10, 59)] == [1, 2, 3]
    assert limits.add_failure("b", at(59), WINDOW) == 1
    assert limits.add_failure("a", at(60), WINDOW) == 3  # the one at 0 left the window
    assert limits.add_failure("a", at(200), WINDOW) == 1
    assert limits.add_failure("a", at(200), WINDOW) == 2  # two at the same instant are two


def test_a_block_ends_at_its_time_and_starts_the_count_afresh(limits: SignInLimits) -> None:
    for s in range(3):
        limits.add_failure("a", at(s), WINDOW)
    assert limits.blocked_until("a", at(3)) is None
    limits.block("a", at(100), at(3))
    assert limits.blocked_until("a", at(99.5)) == at(100)
    assert limits.blocked_until("a", at(100)) is None
    assert limits.blocked_until("b", at(50)) is None
    assert limits.add_failure("a", at(4), WINDOW) == 1


def test_clear_forgets_failures_and_lifts_the_block(limits: SignInLimits) -> None:
    limits.add_failure("a", at(0), WINDOW)
    limits.block("a", at(100), at(0))
    limits.clear("a")
    limits.clear("never-seen")
    assert limits.blocked_until("a", at(1)) is None
    assert limits.add_failure("a", at(1), WINDOW) == 1


def test_a_request_redis_refuses_is_a_permanent_error(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    prefix = f"mailvault-test:{uuid.uuid4().hex}:"
    client.set(f"{prefix}failures:a", "not a sorted set", ex=60)
    try:
        with pytest.raises(BackendFailed, match=r"redis failed .*WRONGTYPE"):
            RedisSignInLimits(client, prefix).add_failure("a", T0, WINDOW)
    finally:
        client.delete(f"{prefix}failures:a")
        client.close()
