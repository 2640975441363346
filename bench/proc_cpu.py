"""Where the cores go: CPU time of named process trees, read from Linux /proc.

A group is a set of root processes and all their descendants, found anew in every snapshot (a
Celery pool may replace its children). Each member counts its own time plus that of its children
that exited and were reaped (cutime/cstime), so a child that ends between two snapshots is not
lost. The machine's busy time (/proc/stat) and the processes outside every group show what the
groups leave unexplained (on a shared machine: everything else that runs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    comm: str
    ppid: int
    own: int  # utime + stime, in ticks
    reaped: int  # cutime + cstime: children that exited and were waited for


@dataclass(frozen=True)
class Group:
    name: str
    roots: list[int]
    tree: bool = True  # False: the roots alone (e.g. a process whose children are other groups)


@dataclass(frozen=True)
class Snapshot:
    stats: dict[int, ProcStat]
    busy: float  # CPU seconds all cores spent neither idle nor waiting for I/O, since boot
    steal: float  # CPU seconds the hypervisor gave to others (a VM's cores are not all its own)

    @classmethod
    def take(cls) -> Snapshot:
        stats = _read_stats()
        with open("/proc/stat") as stat:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(
                int, stat.readline().split()[1:9]
            )
        # guest time is already inside user
        return cls(stats, (user + nice + system + irq + softirq) / TICK, steal / TICK)

    def members(self, group: Group) -> set[int]:
        if not group.tree:
            return {pid for pid in group.roots if pid in self.stats}
        children: dict[int, list[int]] = {}
        for pid, stat in self.stats.items():
            children.setdefault(stat.ppid, []).append(pid)
        found: set[int] = set()
        todo = [pid for pid in group.roots if pid in self.stats]
        while todo:
            pid = todo.pop()
            if pid not in found:
                found.add(pid)
                todo.extend(children.get(pid, []))
        return found

    def seconds(self, group: Group) -> float:
        """CPU seconds used so far by the group."""
        stats = [self.stats[pid] for pid in self.members(group)]
        return sum(s.own + (s.reaped if group.tree else 0) for s in stats) / TICK


def _read_stats() -> dict[int, ProcStat]:
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        # the command name may hold spaces and parentheses: it ends at the last ")"
        head, _, tail = text.rpartition(")")
        fields = tail.split()
        stats[int(entry.name)] = ProcStat(
            comm=head.partition("(")[2],
            ppid=int(fields[1]),
            own=int(fields[11]) + int(fields[12]),
            reaped=int(fields[13]) + int(fields[14]),
        )
    return stats


def find(match: Callable[[str, str], bool]) -> list[int]:
    """Processes whose (comm, cmdline) match, e.g. ``lambda comm, cmd: comm == "weed"``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if match(comm, cmdline.decode(errors="replace")):
            found.append(int(entry.name))
    return found


def usage(groups: Iterable[Group], before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds each group used between the snapshots."""
    return {g.name: after.seconds(g) - before.seconds(g) for g in groups}


def others(
    groups: Iterable[Group], before: Snapshot, after: Snapshot, top: int = 4
) -> list[tuple[str, float]]:
    """The processes outside every group that used the most CPU between the snapshots, by
    command name (kernel threads included). Processes that ended meanwhile are counted, as
    "<parent> children", in the parent that reaped them (e.g. the commands a shell ran)."""
    groups = list(groups)
    inside = set().union(*(s.members(g) for g in groups for s in (before, after)))
    ticks: dict[str, int] = {}

    def add(name: str, value: int) -> None:
        ticks[name] = ticks.get(name, 0) + value

    for pid, stat in after.stats.items():
        if pid not in inside:
            old = before.stats.get(pid, ProcStat(stat.comm, stat.ppid, 0, 0))
            add(stat.comm, stat.own - old.own)
            add(f"{stat.comm} children", stat.reaped - old.reaped)
    for pid, stat in before.stats.items():
        if pid not in inside and pid not in after.stats:
            # its whole time is now in its parent's reaped time, of which this part is older
            parent = after.stats.get(stat.ppid) or before.stats.get(stat.ppid) or stat
            add(f"{parent.comm} children", -(stat.own + stat.reaped))
    ranked = sorted(ticks.items(), key=lambda item: item[1], reverse=True)
    return [(name, value / TICK) for name, value in ranked[:top] if value > 0]


def print_split(
    groups: list[Group],
    before: Snapshot,
    after: Snapshot,
    wall: float,
    count: int,
    measured: dict[str, float] | None = None,
) -> dict[str, float]:
    """Print where the cores went between the snapshots (per group, per message, share of the
    machine) and return the CPU seconds per group. `measured`: CPU seconds known otherwise, e.g.
    a child's from its rusage when it was reaped (a process that starts and ends between the
    snapshots is in neither), printed first and not counted among the other processes."""
    cores = os.cpu_count() or 1
    busy = after.busy - before.busy
    used = {**(measured or {}), **usage(groups, before, after)}
    print(f"  CPU split ({wall:.1f} s wall x {cores} cores = {wall * cores:.1f} CPU-s):")
    rows = {**used, "other processes": busy - sum(used.values()), "machine busy": busy}
    for name, seconds in rows.items():
        print(
            f"    {name:18s} {seconds:6.1f} CPU-s  {seconds / max(count, 1) * 1000:6.2f} ms/msg  "
            f"{seconds / max(wall, 1e-9) / cores:4.0%} of the machine"
        )
    rest = others(groups, before, after)
    print(
        "    other processes, most: "
        + (", ".join(f"{comm} {seconds:.1f} s" for comm, seconds in rest) or "-")
        + f"; steal {after.steal - before.steal:.1f} s"
    )
    return used
