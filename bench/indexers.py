"""The same Maildir through `mailvault import`, `notmuch new` and `mu index`, in one run.

notmuch and mu keep no copy and segment no Chinese, so they are a hard bar: the issue's target
is `mailvault import` at >= 1.0x `notmuch new` on the same folder. Each tool runs as a process of
its own on a fresh database (mailvault: a throwaway bucket and index), one after the other, with
the CPU its process tree and the services used. A tool that is not installed is reported and
skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import proc_cpu
from bench.rss import RssSampler


@dataclass(frozen=True)
class Run:
    tool: str
    seconds: float
    cpu: dict[str, float]
    peak_rss: int  # bytes, the tool's process tree together
    detail: str = ""
    peak_pss: int = 0  # bytes, when asked for: shared pages divided among their sharers
    at_peak: tuple[tuple[str, int, int], ...] = ()  # (command, RSS, PSS) per process


def write_maildir(path: Path, messages: Sequence[bytes]) -> int:
    """A Maildir (cur/, new/, tmp/) of the messages, one file each; returns the bytes written."""
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    total = 0
    for number, raw in enumerate(messages):
        # the Maildir name: unique part, host, and the info (":2," plus flags: seen)
        (path / "cur" / f"{1700000000 + number}.{number}.bench:2,S").write_bytes(raw)
        total += len(raw)
    return total


def service_groups() -> list[proc_cpu.Group]:
    return [
        proc_cpu.Group(
            "elasticsearch",
            proc_cpu.find(lambda comm, cmd: comm == "java" and "org.elasticsearch" in cmd),
        ),
        proc_cpu.Group("seaweedfs", proc_cpu.find(lambda comm, cmd: comm == "weed")),
    ]


def timed_process(
    tool: str, argv: list[str], env: dict[str, str], *, services: bool = False, pss: bool = False
) -> Run:
    """Run argv to its end; its wall time, the CPU of its tree (and of the services), its RSS."""
    groups = service_groups() if services else []
    before = proc_cpu.Snapshot.take()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with RssSampler(proc.pid, pss=pss) as rss:
        out, err = proc.communicate()
    seconds = time.perf_counter() - start
    after = proc_cpu.Snapshot.take()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {err.decode()[-2000:]}")
    # the larger of the sampled tree and the reaped children's time (a short run can end
    # between two samples; a fork server's children are never reaped by this process)
    cpu = {tool: max(rss.cpu_seconds, _reaped_since(before, after))}
    cpu.update(proc_cpu.usage(groups, before, after))
    return Run(
        tool,
        seconds,
        cpu,
        rss.peak,
        out.decode(errors="replace").strip()[-300:],
        rss.peak_pss,
        tuple(rss.at_peak.values()),
    )


def _reaped_since(before: proc_cpu.Snapshot, after: proc_cpu.Snapshot) -> float:
    me = os.getpid()
    return (after.stats[me].reaped - before.stats[me].reaped) / proc_cpu.TICK


def run_mailvault(path: Path, name: str, workers: int, *, pss: bool = False) -> Run:
    """`mailvault import PATH` as a process of its own, on a throwaway index and bucket."""
    env = {
        **os.environ,
        "MAILVAULT_ES_INDEX": name,
        "MAILVAULT_S3_BUCKET": name,
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    if workers:
        env["MAILVAULT_IMPORT_WORKERS"] = str(workers)
    cli = [sys.executable, "-m", "ingest.cli"]
    subprocess.run([*cli, "init"], env=env, check=True, capture_output=True)
    return timed_process(
        "mailvault import",
        [*cli, "import", "--no-progress", "--json", str(path)],
        env,
        services=True,
        pss=pss,
    )


def run_notmuch(maildir: Path) -> Run | None:
    notmuch = shutil.which("notmuch")
    if notmuch is None:
        return None
    home = Path(tempfile.mkdtemp(prefix="bench-notmuch-"))
    try:
        config = home / "config"
        config.write_text(
            f"[database]\npath={maildir}\nmail_root={maildir}\n"
            f"[user]\nname=bench\nprimary_email=bench@example.com\n"
            "[new]\ntags=unread;inbox;\n[maildir]\nsynchronize_flags=true\n",
            encoding="utf-8",
        )
        env = {**os.environ, "NOTMUCH_CONFIG": str(config), "HOME": str(home)}
        # the database lives in <path>/.notmuch: removed after, so each run starts fresh
        return timed_process("notmuch new", [notmuch, "new", "--quiet"], env)
    finally:
        shutil.rmtree(maildir / ".notmuch", ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


def run_mu(maildir: Path) -> Run | None:
    mu = shutil.which("mu")
    if mu is None:
        return None
    home = Path(tempfile.mkdtemp(prefix="bench-mu-"))
    try:
        env = {**os.environ, "HOME": str(home)}
        subprocess.run(
            [mu, "init", f"--muhome={home}", f"--maildir={maildir}"],
            env=env,
            check=True,
            capture_output=True,
        )
        return timed_process("mu index", [mu, "index", f"--muhome={home}", "--quiet"], env)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def compare(
    messages: Sequence[bytes], name: str, workers: int, keep: Path | None = None
) -> list[Run]:
    """Write the Maildir, run the three tools on it and print each one's figures and the
    ratios of mailvault's rate to the others'."""
    root = keep or Path(tempfile.mkdtemp(prefix="bench-maildir-"))
    maildir = root / "Maildir"
    try:
        size = write_maildir(maildir, messages)
        count = len(messages)
        print(f"Maildir comparison: {count} messages, {size / 1e6:.1f} MB in {maildir}")
        runs: list[Run] = []
        for tool, runner in (
            ("notmuch new", lambda: run_notmuch(maildir)),
            ("mu index", lambda: run_mu(maildir)),
            ("mailvault import", lambda: run_mailvault(maildir, name, workers)),
        ):
            result = runner()
            if result is None:
                print(f"  {tool:<18} not installed: skipped")
                continue
            runs.append(result)
            cpu = ", ".join(f"{k} {v:.1f}" for k, v in result.cpu.items())
            print(
                f"  {tool:<18} {result.seconds:7.2f} s  {count / result.seconds:7.0f} msg/s  "
                f"{size / result.seconds / 1e6:6.2f} MB/s  peak RSS "
                f"{result.peak_rss / 2**20:5.0f} MB  CPU-s: {cpu}"
            )
        mailvault = next((r for r in runs if r.tool == "mailvault import"), None)
        for other in runs:
            if mailvault is not None and other is not mailvault:
                # on a shared machine the wall ratio moves with the neighbours' load; the CPU
                # ratio (mailvault with its services) much less
                print(
                    f"  mailvault import / {other.tool}: {other.seconds / mailvault.seconds:.2f}x"
                    f" the rate; {sum(other.cpu.values()) / sum(mailvault.cpu.values()):.2f}x"
                    " the messages per CPU-s (mailvault's services included)"
                )
        return runs
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
