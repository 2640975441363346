"""Reading ahead: results in the items' order, never more held than the bounds, a fetch's error
raised at its item, and a consumer that stops early left waiting for nothing."""

from __future__ import annotations

import threading

import pytest

from archiver.read_ahead import read_ahead


class Fetches:
    """A fetch that notes how many results exist that the consumer has not taken yet."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.lock = threading.Lock()
        self.fetched = 0
        self.fail_at = fail_at

    def __call__(self, n: int) -> str:
        if n == self.fail_at:
            raise ValueError(f"no {n}")
        with self.lock:
            self.fetched += 1
        return f"raw {n}"


def test_results_come_in_order_and_no_more_than_the_window_is_held() -> None:
    fetch = Fetches()
    taken = []
    for n, raw in read_ahead(range(500), fetch, threads=4, max_items=8):
        taken.append((n, raw))
        with fetch.lock:
            # the one just yielded and at most max_items - 1 others submitted after it
            assert fetch.fetched - len(taken) <= 7
    assert taken == [(n, f"raw {n}") for n in range(500)]


def test_the_bytes_bound_holds_all_but_the_last_item_admitted() -> None:
    fetch = Fetches()
    sizes = [10, 50, 50, 5, 100, 1, 1, 1] * 20
    taken = 0
    for _ in read_ahead(
        range(len(sizes)), fetch, threads=4, max_items=99, size=sizes.__getitem__, max_bytes=60
    ):
        taken += 1
        with fetch.lock:
            ahead = range(taken, fetch.fetched)
        # what waits was admitted while less than 60 bytes waited: all but its last under 60
        assert sum(sizes[i] for i in list(ahead)[:-1]) < 60
    assert taken == len(sizes)


def test_a_fetch_error_is_raised_at_its_item_after_the_ones_before() -> None:
    taken = []
    with pytest.raises(ValueError, match="no 7"):
        for n, _ in read_ahead(range(20), Fetches(fail_at=7), threads=4, max_items=5):
            taken.append(n)
    assert taken == list(range(7))


def test_a_consumer_stopping_early_does_not_wait_for_the_rest() -> None:
    release = threading.Event()

    def slow(n: int) -> int:
        if n > 0:
            release.wait()  # held until the test is over: a shutdown that waited would hang
        return n

    items = read_ahead(range(10), slow, threads=2, max_items=4)
    assert next(items) == (0, 0)
    items.close()
    release.set()
