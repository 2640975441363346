"""Peak resident memory of a process tree, sampled from Linux /proc while it runs."""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

from bench import proc_cpu

PAGE = 4096


def tree_rss(root: int, cpu: dict[int, int] | None = None) -> int:
    """Bytes resident in root and all its descendants now (shared pages counted in each, as
    `ps` and the issue's figures do). With cpu, each member's own CPU ticks so far are noted
    there too."""
    return sum(rss for _, rss, _ in tree_memory(root, cpu).values())


def tree_memory(
    root: int, cpu: dict[int, int] | None = None, *, pss: bool = False
) -> dict[int, tuple[str, int, int]]:
    """pid -> (command, RSS, PSS) of root and its descendants; PSS (shared pages divided among
    the processes sharing them, e.g. a fork server's and its children's) only when asked."""
    snapshot = proc_cpu.Snapshot.take()
    found: dict[int, tuple[str, int, int]] = {}
    for pid in snapshot.members(proc_cpu.Group("tree", [root])):
        if cpu is not None:
            cpu[pid] = snapshot.stats[pid].own
        try:
            rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
            proportional = _pss(pid) if pss else 0
        except OSError:  # exited meanwhile
            continue
        found[pid] = (snapshot.stats[pid].comm, rss, proportional)
    return found


def _pss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


class RssSampler:
    """`with RssSampler(pid) as rss: ...` then rss.peak: the largest tree RSS seen, sampled every
    `interval` seconds on a thread of its own, and rss.cpu_seconds: the CPU every process seen
    in the tree used (as last seen: a process's last interval is missed). Sampling, not the
    reaped children's time: a fork server's analysers are not reaped by the root."""

    def __init__(self, root: int, interval: float = 0.2, *, pss: bool = False) -> None:
        self.root = root
        self.interval = interval
        self.pss = pss
        self.peak = 0
        self.peak_pss = 0
        self.at_peak: dict[int, tuple[str, int, int]] = {}  # the members at the RSS peak
        self.samples: list[int] = []
        self._cpu: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            members = tree_memory(self.root, self._cpu, pss=self.pss)
            rss = sum(m[1] for m in members.values())
            if rss:
                self.samples.append(rss)
                if rss > self.peak:
                    self.peak, self.at_peak = rss, members
                self.peak_pss = max(self.peak_pss, sum(m[2] for m in members.values()))
            self._stop.wait(self.interval)

    @property
    def cpu_seconds(self) -> float:
        return sum(self._cpu.values()) / proc_cpu.TICK

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
