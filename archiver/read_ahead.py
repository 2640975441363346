"""Reading ahead: objects fetched a few at a time on threads, consumed in order (an export's
messages, the audit chain's records).

One GET per object, one after the other, leaves a reader waiting on round trips (bench/exports.py:
~70% of an export builder's time at 20,000 messages). Fetching the next few while the current one is
zipped overlaps them, with what is held bounded: a fixed number of fetches, and of bytes (known
from the selection before the fetch). Executor.map would submit every item at once and hold
every result not yet consumed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def read_ahead(
    items: Iterable[T],
    fetch: Callable[[T], R],
    *,
    threads: int,
    max_items: int,
    size: Callable[[T], int] | None = None,
    max_bytes: int = 0,
) -> Generator[tuple[T, R], None, None]:
    """(item, fetch(item)) in the items' order, fetched ahead on `threads` threads: at most
    `max_items` fetched and not yet consumed and, given `size`, no new fetch once `max_bytes`
    are (so at most max_bytes plus one item); small objects need the item bound only. A fetch's
    exception is raised at its item, in order, as a loop fetching one by one would raise it;
    fetches not yet started are then cancelled."""
    window: deque[tuple[T, Future[R], int]] = deque()
    held = 0
    pool = ThreadPoolExecutor(threads, thread_name_prefix="read-ahead")

    def oldest() -> tuple[T, R]:
        nonlocal held
        item, future, bytes_ = window.popleft()
        held -= bytes_
        return item, future.result()

    try:
        for item in items:
            while window and (len(window) >= max_items or (size and held >= max_bytes)):
                yield oldest()
            bytes_ = size(item) if size else 0
            window.append((item, pool.submit(fetch, item), bytes_))
            held += bytes_
        while window:
            yield oldest()
    finally:
        # a consumer that stops early (an error, a cancelled export) waits for no fetch
        pool.shutdown(wait=False, cancel_futures=True)
