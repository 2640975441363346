"""Compare-and-swap in the S3 JSON store against the real SeaweedFS: of writers that read the
same version, exactly one wins; of writers creating the same key, exactly one wins."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest

from archiver import bootstrap
from archiver.adapters.s3 import S3JsonStore
from archiver.errors import ConcurrentEdit
from archiver.settings import Settings

pytestmark = pytest.mark.services

WRITERS = 8


@pytest.fixture
def store(settings: Settings, backends: None) -> S3JsonStore:
    return bootstrap.json_store(settings)


def key() -> str:
    return f"tests/cas/{uuid.uuid4().hex}"


def race(write: Callable[[int], str]) -> tuple[dict[int, str], list[int]]:
    """Run write(i) in WRITERS threads released at once: (winner -> etag, losers)."""
    barrier = threading.Barrier(WRITERS)
    won: dict[int, str] = {}
    lost: list[int] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            etag = write(i)
        except ConcurrentEdit:
            with lock:
                lost.append(i)
            return
        with lock:
            won[i] = etag

    threads = [threading.Thread(target=run, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won, lost


def test_a_versioned_read_gives_the_etag_a_conditional_write_returns(store: S3JsonStore) -> None:
    k = key()
    assert store.get_json_versioned(k) is None
    etag = store.put_json_if(k, {"n": 1, "名": "张三"}, etag=None)
    assert store.get_json_versioned(k) == ({"n": 1, "名": "张三"}, etag)
    newer = store.put_json_if(k, {"n": 2}, etag=etag)
    assert newer != etag and store.get_json_versioned(k) == ({"n": 2}, newer)


def test_a_stale_etag_or_a_second_create_is_refused_and_changes_nothing(
    store: S3JsonStore,
) -> None:
    k = key()
    first = store.put_json_if(k, {"n": 1}, etag=None)
    with pytest.raises(ConcurrentEdit, match="concurrently"):
        store.put_json_if(k, {"n": "again"}, etag=None)
    store.put_json_if(k, {"n": 2}, etag=first)
    with pytest.raises(ConcurrentEdit):
        store.put_json_if(k, {"n": "stale"}, etag=first)
    assert store.get_json(k) == {"n": 2}


def test_an_etag_of_a_deleted_key_is_refused(store: S3JsonStore) -> None:
    k = key()
    etag = store.put_json_if(k, {"n": 1}, etag=None)
    store.delete(k)
    with pytest.raises(ConcurrentEdit):
        store.put_json_if(k, {"n": 2}, etag=etag)
    assert store.get_json(k) is None


def test_of_writers_racing_with_the_same_etag_exactly_one_wins(store: S3JsonStore) -> None:
    k = key()
    base = store.put_json_if(k, {"writer": None}, etag=None)
    won, lost = race(lambda i: store.put_json_if(k, {"writer": i}, etag=base))
    assert len(won) == 1 and len(lost) == WRITERS - 1
    [(winner, etag)] = won.items()
    assert store.get_json_versioned(k) == ({"writer": winner}, etag)


def test_of_writers_racing_to_create_a_key_exactly_one_wins(store: S3JsonStore) -> None:
    k = key()
    won, lost = race(lambda i: store.put_json_if(k, {"writer": i}, etag=None))
    assert len(won) == 1 and len(lost) == WRITERS - 1
    [(winner, etag)] = won.items()
    assert store.get_json_versioned(k) == ({"writer": winner}, etag)
