"""Run real `mailvault` processes (worker, beat, CLI commands) as a user would, with their own
environment, and wait for conditions with a deadline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def mailvault_env(**settings: str) -> dict[str, str]:
    """This process's environment (the session's index, bucket and queue) with MAILVAULT_
    settings overridden: mailvault_env(reconcile_interval="1")."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.update({f"MAILVAULT_{k.upper()}": v for k, v in settings.items()})
    return env


def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run `mailvault ARGS` to completion; returns stdout (raises with its output on failure)."""
    done = subprocess.run(
        [sys.executable, "-m", "ingest.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise AssertionError(f"mailvault {' '.join(args)} exited {done.returncode}:\n{done}")
    return done.stdout


def terminate(popen: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    """SIGTERM a server we started, SIGKILL after timeout seconds; nothing if it has exited."""
    if popen is None or popen.poll() is not None:
        return
    popen.terminate()
    try:
        popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()


class Process:
    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log: Path, *, group: bool = False
    ) -> None:
        self.name = name
        self.log = log
        self.group = group
        self._out = log.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "ingest.cli", *args],
            env=env,
            cwd=ROOT,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            # group: its own process group, so kill() reaches the children it forks (Celery's
            # pool) and nothing of the test's
            start_new_session=group,
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL the process and everything it forked (started with group=True), as a crash
        would: nothing gets to clean up."""
        if not self.group:  # its group is the test's own: never kill that
            raise RuntimeError(f"{self.name} was not started in a process group of its own")
        with suppress(ProcessLookupError):  # the group leader's pid is the group's id
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self._out.close()


@contextmanager
def mailvault(
    name: str, args: list[str], env: dict[str, str], logs: Path, *, group: bool = False
) -> Iterator[Process]:
    """A long-running `mailvault ARGS` (worker, beat), stopped on exit; group: in a process
    group of its own (see Process.kill)."""
    process = Process(name, args, env, logs / f"{name}.log", group=group)
    try:
        yield process
    finally:
        process.stop()


def wait_until(
    condition: Callable[[], object],
    timeout: float,
    *watching: Process,
    what: str = "condition",
) -> None:
    """Poll until condition() is true; on timeout fail with the watched processes' logs."""
    deadline = time.monotonic() + timeout
    while not condition():
        for process in watching:
            if process.popen.poll() is not None:
                raise AssertionError(f"{process.name} exited:\n{process.log_text()}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}:\n{p.log_text()}" for p in watching)
            raise TimeoutError(f"{what} not met within {timeout} s\n{logs}")
        time.sleep(0.2)
