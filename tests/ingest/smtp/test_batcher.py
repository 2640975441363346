"""The sink's Batcher: segments gathered into filing tasks. Pure threading, no services."""

from __future__ import annotations

import threading

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


def test_a_task_is_sent_once_it_holds_size_messages() -> None:
    sent = Sent()
    batcher = Batcher(sent, window=30, size=10)

    for i, messages in enumerate([4, 4, 4, 9, 1]):
        batcher.add(segment(i), messages)

    assert sent.wait_for(2) == [
        ["spool/0000.mvs", "spool/0001.mvs", "spool/0002.mvs"],
        ["spool/0003.mvs", "spool/0004.mvs"],
    ]  # long before the window ended
    batcher.close()
