"""The sink's Batcher: segments gathered into filing tasks. Pure threading, no services."""

from __future__ import annotations

import threading
import time

from archiver.models import SpoolSegment
from ingest.smtp import Batcher


class Sent:
    def __init__(self) -> None:
        self.tasks: list[list[str]] = []
        self.arrived = threading.Condition()

    def __call__(self, segments: list[SpoolSegment]) -> None:
        with self.arrived:
            self.tasks.append([s.key for s in segments])
            self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 10) -> list[list[str]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.tasks) >= count, timeout)
            return list(self.tasks)


def segment(i: int) -> SpoolSegment:
    return SpoolSegment(key=f"spool/{i:04d}.mvs")


def test_a_window_of_segments_is_one_task_and_repeats_are_sent_once() -> None:
    sent = Sent()
    batcher = Batcher(sent, window=0.3, size=100)

    for i in (1, 2, 2, 3):
        batcher.add(segment(i), 1)

    assert sent.wait_for(1) == [["spool/0001.mvs", "spool/0002.mvs", "spool/0003.mvs"]]
    batcher.close()
    assert len(sent.tasks) == 1


def test_tasks_are_sent_once_size_messages_are_gathered_and_hold_at_most_size() -> None:
    sent = Sent()
    batcher = Batcher(sent, window=30, size=10)

    for i, messages in enumerate([4, 4, 4, 9, 1]):
        batcher.add(segment(i), messages)

    assert sent.wait_for(3) == [
        ["spool/0000.mvs", "spool/0001.mvs"],
        ["spool/0002.mvs"],  # gathering stopped at 12 messages: two tasks of at most 10
        ["spool/0003.mvs", "spool/0004.mvs"],
    ]  # long before the window ended
    batcher.close()


def test_filing_is_held_while_mtas_send_back_to_back_and_sent_when_the_burst_ends() -> None:
    sent = Sent()
    batcher = Batcher(sent, window=0.3, size=50, back_to_back=0.01, max_hold=30)

    burst_ends = time.monotonic() + 1.5
    i = 0
    while time.monotonic() < burst_ends:  # five windows of MTAs answering at once
        batcher.next_mail_after(0.001)
        batcher.add(segment(i), 12)
        i += 1
        time.sleep(0.01)
    assert sent.tasks == []

    sent.wait_for(1)
    batcher.close()
    assert sorted(key for task in sent.tasks for key in task) == [segment(n).key for n in range(i)]
    assert all(len(task) <= 4 for task in sent.tasks)  # at most 50 messages each


def test_mtas_pausing_between_messages_are_not_held() -> None:
    sent = Sent()
    batcher = Batcher(sent, window=0.3, size=100, back_to_back=0.01, max_hold=30)

    for i in range(3):
        batcher.next_mail_after(0.2)
        batcher.add(segment(i), 1)

    assert sent.wait_for(1) == [["spool/0000.mvs", "spool/0001.mvs", "spool/0002.mvs"]]
    batcher.close()


def test_a_hold_ends_after_max_hold_even_if_the_burst_goes_on() -> None:
    sent = Sent()
    batcher = Batcher(sent, window=0.2, size=1000, back_to_back=0.01, max_hold=0.6)

    start = time.monotonic()
    i = 0
    while not sent.tasks and time.monotonic() - start < 10:
        batcher.next_mail_after(0.001)
        batcher.add(segment(i), 20)
        i += 1
        time.sleep(0.01)

    assert 0.6 <= time.monotonic() - start < 5
    batcher.close()


def test_segments_beyond_the_inline_budget_lose_their_bytes_not_their_place() -> None:
    sent: list[list[SpoolSegment]] = []
    batcher = Batcher(sent.append, window=30, size=3, inline_bytes=250)

    for i in range(3):
        batcher.add(SpoolSegment(key=f"spool/{i}.mvs", data=b"x" * 100), 1)
    batcher.close()

    ((first, second, third),) = sent
    assert (first.data, second.data, third.data) == (b"x" * 100, b"x" * 100, None)
