"""Peak resident memory of a process tree, sampled from Linux /proc while it runs."""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

from bench import proc_cpu

PAGE = 4096


def tree_rss(root: int) -> int:
    """Bytes resident in root and all its descendants now (shared pages counted in each, as
    `ps` and the issue's figures do)."""
    snapshot = proc_cpu.Snapshot.take()
    total = 0
    for pid in snapshot.members(proc_cpu.Group("tree", [root])):
        try:
            fields = Path(f"/proc/{pid}/statm").read_text().split()
        except OSError:  # exited meanwhile
            continue
        total += int(fields[1]) * PAGE
    return total


class RssSampler:
    """`with RssSampler(pid) as rss: ...` then rss.peak: the largest tree RSS seen, sampled every
    `interval` seconds on a thread of its own."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        self.root = root
        self.interval = interval
        self.peak = 0
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = tree_rss(self.root)
            if rss:
                self.samples.append(rss)
                self.peak = max(self.peak, rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
