"""SMTP sink benchmark in the deployed shape: the sink (`mailvault smtp`) and the Celery worker
(`mailvault worker`) run as processes of their own; this process is only the SMTP client (C
pipelining connections, a timestamp per 250) and a watcher polling Elasticsearch with an ids
search until each accepted message is searchable (i.e. after an index refresh).

Reports accepted msg/s, the 250 -> searchable latency, every non-250 reply by code, and the CPU
time of each process (sink, worker, Elasticsearch, SeaweedFS, Redis, this one) over the timed
part, i.e. where the cores go. Each run has its own index, bucket and queue, dropped after.

Needs the services (scripts/services.sh up) and their environment (scripts/env.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archiver import bootstrap
from archiver.adapters.elastic import ElasticIndex
from archiver.settings import Settings, get_settings
from bench import proc_cpu
from bench.cleanup import drop_bucket, drop_index, drop_queue
from bench.mailgen import generate

REPLY_TIMEOUT = 120.0
ENVELOPE = b"MAIL FROM:<bench@example.com>\r\nRCPT TO:<journal@archive.test>\r\nDATA\r\n"


@dataclass
class Outcomes:
    """What the sink answered, per message (by its position in the corpus)."""

    accepted: dict[int, float] = field(default_factory=dict)  # monotonic time of the 250
    # the stage that decided (MAIL, RCPT, DATA, end of data, connection) and its reply line
    refused: dict[int, tuple[str, str]] = field(default_factory=dict)


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def reply(self) -> str:
        """The last line of a (possibly multi-line) reply."""
        while True:
            # a sink that hangs ends this connection (TimeoutError) rather than the benchmark
            line = (await asyncio.wait_for(self.reader.readline(), REPLY_TIMEOUT)).decode(
                errors="replace"
            )
            if not line:
                raise ConnectionError("the sink closed the connection")
            if line[3:4] != "-":
                return line.rstrip()

    async def send(self, raw: bytes) -> tuple[str, str]:
        """One transaction, MAIL RCPT DATA pipelined; returns the stage and reply that decided
        it ("end of data", "250 ...") when accepted."""
        self.writer.write(ENVELOPE)
        replies = [await self.reply() for _ in range(3)]
        if not replies[2].startswith("354"):
            # a refused MAIL or RCPT makes DATA fail too: the first refusal is the reason
            stage, line = next(
                (
                    (s, r)
                    for s, r in zip(("MAIL", "RCPT", "DATA"), replies, strict=True)
                    if r[:1] != "2"
                ),
                ("DATA", replies[2]),
            )
            self.writer.write(b"RSET\r\n")
            await self.reply()
            return stage, line
        body = raw.replace(b"\r\n.", b"\r\n..")
        self.writer.write(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        return "end of data", await self.reply()


async def _send(
    port: int,
    messages: list[bytes],
    outcomes: Outcomes,
    base: int,
    interval: float,
    offset: float = 0.0,
) -> None:
    """One SMTP connection sending its share; with an interval, one message per interval at
    most, starting `offset` seconds in (a paced run measures the pipeline's latency below its
    capacity; the offsets spread the connections' messages evenly instead of in lockstep)."""
    done = 0
    try:
        conn = Connection(*await asyncio.open_connection("127.0.0.1", port))
        await conn.reply()
        conn.writer.write(b"EHLO bench.example\r\n")
        await conn.reply()
        begin = time.monotonic() + offset
        for i, raw in enumerate(messages):
            if (wait := begin + i * interval - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            stage, line = await conn.send(raw)
            if line.startswith("250"):
                outcomes.accepted[base + i] = time.monotonic()
            else:
                outcomes.refused[base + i] = (stage, line)
            done = i + 1
        conn.writer.write(b"QUIT\r\n")
        await conn.writer.drain()
        conn.writer.close()
    except OSError as exc:  # ConnectionError, TimeoutError: the rest of this share had no answer
        for i in range(done, len(messages)):
            outcomes.refused[base + i] = ("connection", f"no reply: {type(exc).__name__}: {exc}")


async def _send_all(
    port: int, raws: list[bytes], outcomes: Outcomes, concurrency: int, rate: float
) -> None:
    share = -(-len(raws) // concurrency)
    interval = concurrency / rate if rate else 0.0
    starts = range(0, len(raws), share)
    await asyncio.gather(
        *(
            _send(port, raws[i : i + share], outcomes, i, interval, interval * n / len(starts))
            for n, i in enumerate(starts)
        )
    )


# -- processes -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(args: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`mailvault ARGS`, its output to a file (a pipe nobody reads would fill and block it)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ingest.cli", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_for_smtp(sink: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    """Until the sink answers with its 220 greeting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sink.poll() is not None:
            raise SystemExit(f"the sink exited with {sink.returncode} (its log is above)")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as probe:
                if probe.recv(512).startswith(b"220"):
                    probe.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the sink did not answer on port {port} within {timeout:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (both shut down gracefully on it), then SIGKILL if it does not end."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(log: Path, lines: int = 15) -> str:
    text = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
    return "\n".join(f"  | {line}" for line in text) or "  (empty log)"


def _cpu_groups(sink: int, workers: list[int]) -> list[proc_cpu.Group]:
    return [
        proc_cpu.Group("sink", [sink]),
        proc_cpu.Group("worker", workers),
        proc_cpu.Group(
            "elasticsearch",
            proc_cpu.find(lambda comm, cmd: comm == "java" and "org.elasticsearch" in cmd),
        ),
        proc_cpu.Group("seaweedfs", proc_cpu.find(lambda comm, cmd: comm == "weed")),
        proc_cpu.Group("redis", proc_cpu.find(lambda comm, cmd: comm == "redis-server")),
        # this process alone: its children are the sink and the worker, counted above
        proc_cpu.Group("bench client", [os.getpid()], tree=False),
    ]


# -- searchable ------------------------------------------------------------------------------


class Watcher(threading.Thread):
    """Polls with an ids search, which sees only refreshed, i.e. searchable, documents. Its own
    cost is part of Elasticsearch's CPU; what the searches took there is counted to show it."""

    def __init__(
        self, index: ElasticIndex, ids: list[str], accepted: dict[int, float], interval: float
    ) -> None:
        super().__init__(daemon=True)
        self.index, self.ids, self.accepted, self.interval = index, ids, accepted, interval
        self.searchable: dict[int, float] = {}
        self.searches = 0
        self.took_ms = 0
        self.error: Exception | None = None
        self.done = threading.Event()

    def run(self) -> None:
        position = {sha256: i for i, sha256 in enumerate(self.ids)}
        try:
            while not self.done.wait(self.interval):
                waiting = [self.ids[i] for i in list(self.accepted) if i not in self.searchable]
                if waiting:
                    for hit in self._search(waiting[:2000]):
                        self.searchable.setdefault(position[hit["_id"]], time.monotonic())
        except Exception as exc:  # the main thread reports it rather than waiting in vain
            self.error = exc

    def _search(self, ids: list[str]) -> list[dict[str, Any]]:
        body = {
            "query": {"ids": {"values": ids}},
            "size": len(ids),
            "_source": False,
            "sort": ["_doc"],  # no scoring
            "track_total_hits": False,
        }
        response = self.index.search(body)
        self.searches += 1
        self.took_ms += response["took"]
        hits: list[dict[str, Any]] = response["hits"]["hits"]
        return hits


def _warm_up(index: ElasticIndex, port: int, sample: list[bytes], run: str) -> None:
    """Not timed: a few messages through sink and worker until searchable, so the figures are of
    a running system, not of the worker's start (imports, dictionaries)."""
    warm = [f"X-Bench-Warm-Up: {run}-{i}\r\n".encode() + raw for i, raw in enumerate(sample)]
    outcomes = Outcomes()
    asyncio.run(_send_all(port, warm, outcomes, 4, 0))
    if outcomes.refused:
        raise SystemExit(f"warm-up refused: {sorted(set(outcomes.refused.values()))}")
    ids = [hashlib.sha256(raw).hexdigest() for raw in warm]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        body = {"query": {"ids": {"values": ids}}, "size": 0, "track_total_hits": True}
        if index.search(body)["hits"]["total"]["value"] == len(ids):
            return
        time.sleep(0.2)
    raise SystemExit("the worker did not index the warm-up messages within 300 s")


# -- report ----------------------------------------------------------------------------------


def _machine() -> str:
    model = next(
        (
            line.partition(":")[2].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or platform.machine(),
    )
    return f"machine: {os.cpu_count()} cores, {model}; python {platform.python_version()}"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _percentile(ordered: list[float], p: float) -> float:
    """Nearest rank."""
    return ordered[max(math.ceil(p * len(ordered)) - 1, 0)]


def _report_replies(outcomes: Outcomes, total: int) -> None:
    """Every message not accepted, counted by stage and reply code, with one reply as example."""
    by_code: Counter[tuple[str, str]] = Counter()
    example: dict[tuple[str, str], str] = {}
    for stage, line in outcomes.refused.values():
        key = (stage, line[:3] if line[:3].isdigit() else "-")
        by_code[key] += 1
        example.setdefault(key, line)
    print(f"not accepted: {len(outcomes.refused)}/{total}")
    for (stage, code), count in by_code.most_common():
        print(f"  {count:6d} x {code} at {stage}, e.g. {example[stage, code]!r}")


def _report_latency(
    outcomes: Outcomes, searchable: Mapping[int, float], ids: list[str], start: float
) -> None:
    latencies = sorted(searchable[i] - outcomes.accepted[i] for i in searchable)
    if latencies:
        print(
            f"250 -> searchable: {len(latencies)} messages, "
            f"p50 {_percentile(latencies, 0.50):.2f} s, p95 {_percentile(latencies, 0.95):.2f} s, "
            f"p99 {_percentile(latencies, 0.99):.2f} s, max {latencies[-1]:.2f} s; "
            f"all searchable {max(searchable.values()) - start:.1f} s after the first send"
        )
    never = [i for i in outcomes.accepted if i not in searchable]
    print(
        f"accepted but never searchable: {len(never)}"
        + (f" (e.g. {', '.join(ids[i][:12] for i in never[:3])})" if never else "")
    )


def _report_cpu(
    groups: list[proc_cpu.Group],
    before: proc_cpu.Snapshot,
    after: proc_cpu.Snapshot,
    wall: float,
    count: int,
) -> None:
    cores = os.cpu_count() or 1
    busy = after.busy - before.busy
    used = proc_cpu.usage(groups, before, after)
    print(
        f"CPU from the first send until all searchable ({wall:.1f} s wall x {cores} cores = "
        f"{wall * cores:.1f} CPU-s); load average now {_load()}:"
    )
    rows = {**used, "other processes": busy - sum(used.values()), "machine busy": busy}
    for name, seconds in rows.items():
        print(
            f"  {name:16s} {seconds:6.1f} CPU-s  {seconds / max(count, 1) * 1000:6.2f} ms/msg  "
            f"{seconds / wall / cores:4.0%} of the machine"
        )
    rest = proc_cpu.others(groups, before, after)
    print(
        "  other processes, most: "
        + (", ".join(f"{comm} {seconds:.1f} s" for comm, seconds in rest) or "-")
        + f"; steal {after.steal - before.steal:.1f} s"
    )


def _report_sink_log(log: Path) -> None:
    """The sink logs one line per transaction: a count by level and message, and its store time."""
    kinds: Counter[str] = Counter()
    store_ms = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            kinds["(not JSON)"] += 1
            continue
        kinds[f"{entry.get('level')}: {entry.get('message')}"] += 1
        if isinstance(entry.get("store_ms"), int | float):
            store_ms.append(float(entry["store_ms"]))
    print(
        "sink log (warm-up included): "
        + ", ".join(f"{count} {kind}" for kind, count in kinds.most_common())
    )
    if store_ms:
        store_ms.sort()
        print(
            f"  sink store time (in its log): p50 {_percentile(store_ms, 0.5):.0f} ms, "
            f"p95 {_percentile(store_ms, 0.95):.0f} ms, max {store_ms[-1]:.0f} ms"
        )


# -- the run ---------------------------------------------------------------------------------


def _corpus(count: int, run: str) -> list[bytes]:
    # each message unique (its own sha256), so every 250 is one stored and indexed message
    return [
        f"X-Bench: {run}-{i}\r\n".encode() + m.raw for i, m in enumerate(generate(count, seed=7))
    ]


def _timed(
    settings: Settings,
    port: int,
    raws: list[bytes],
    groups: list[proc_cpu.Group],
    args: argparse.Namespace,
) -> None:
    index = bootstrap.search_index(settings)
    ids = [hashlib.sha256(raw).hexdigest() for raw in raws]
    outcomes = Outcomes()
    watcher = Watcher(index, ids, outcomes.accepted, args.poll_interval)
    watcher.start()
    print(f"load average before: {_load()}")
    before = proc_cpu.Snapshot.take()
    worker = next(g for g in groups if g.name == "worker")
    start = time.monotonic()
    if args.defer_indexing:
        _signal_tree(before, worker, signal.SIGSTOP)
    try:
        asyncio.run(_send_all(port, raws, outcomes, args.concurrency, args.rate))
    finally:
        if args.defer_indexing:
            _signal_tree(proc_cpu.Snapshot.take(), worker, signal.SIGCONT)
    sent = time.monotonic() - start
    deadline = time.monotonic() + max(120.0, sent * 3)
    while len(watcher.searchable) < len(outcomes.accepted) and time.monotonic() < deadline:
        if watcher.error:
            raise watcher.error
        time.sleep(0.05)
    wall = time.monotonic() - start
    after = proc_cpu.Snapshot.take()
    watcher.done.set()
    watcher.join()
    print(
        f"accepted: {len(outcomes.accepted)}/{len(raws)} in {sent:.1f} s = "
        f"{len(outcomes.accepted) / sent:.0f} msg/s (concurrency {args.concurrency}, "
        f"{args.workers} worker process{'es' if args.workers > 1 else ''} "
        f"x {args.worker_concurrency}"
        f"{f', paced at {args.rate:g} msg/s' if args.rate else ''}"
        f"{', worker stopped until all were sent' if args.defer_indexing else ''})"
    )
    _report_replies(outcomes, len(raws))
    _report_latency(outcomes, watcher.searchable, ids, start)
    print(
        f"watcher: an ids search every {args.poll_interval:g} s, {watcher.searches} searches "
        f"took {watcher.took_ms / 1000:.1f} s in Elasticsearch (included in its CPU below)"
    )
    _report_cpu(groups, before, after, wall, len(outcomes.accepted))


def _signal_tree(snapshot: proc_cpu.Snapshot, group: proc_cpu.Group, signum: int) -> None:
    """Stop or resume the worker with its pool processes (--defer-indexing)."""
    for pid in snapshot.members(group):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=20, help="SMTP connections")
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument(
        "--workers", type=int, default=1, help="`mailvault worker` processes (scale-out)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="send at most this many msg/s (0: as fast as accepted)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.1,
        help="seconds between the watcher's searches: the latency's resolution, and a load on "
        "Elasticsearch",
    )
    parser.add_argument(
        "--defer-indexing",
        action="store_true",
        help="stop the worker while mail is sent and resume it after: acceptance measured with "
        "the machine to itself (as when indexing runs elsewhere); the latency then includes "
        "the whole backlog",
    )
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    name = f"mailvault-bench-{run}"
    settings = get_settings().model_copy(
        update={"es_index": name, "s3_bucket": name, "celery_queue": name}
    )
    print(_machine())
    raws = _corpus(args.count, run)
    print(f"corpus: {len(raws)} messages, {sum(map(len, raws)) / 1e6:.1f} MB")
    env = {
        **os.environ,
        "MAILVAULT_ES_INDEX": settings.es_index,
        "MAILVAULT_S3_BUCKET": settings.s3_bucket,
        "MAILVAULT_CELERY_QUEUE": settings.celery_queue,
    }
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-smtp-") as tmp:
        sink_log = Path(tmp, "sink.log")
        worker_logs = [Path(tmp, f"worker-{n}.log") for n in range(args.workers)]
        processes: list[subprocess.Popen[bytes]] = []
        try:
            bootstrap.init_backends(settings)
            workers = [
                _start(["worker", "--concurrency", str(args.worker_concurrency)], env, log)
                for log in worker_logs
            ]
            processes += workers
            sink = _start(["smtp", "--host", "127.0.0.1", "--port", str(port)], env, sink_log)
            processes.append(sink)
            _wait_for_smtp(sink, port, timeout=60)
            _warm_up(bootstrap.search_index(settings), port, raws[:20], run)
            groups = _cpu_groups(sink.pid, [w.pid for w in workers])
            _timed(settings, port, raws, groups, args)
        except BaseException:
            for log in (sink_log, *worker_logs):
                print(f"{log.name} (tail):\n{_tail(log)}", file=sys.stderr)
            raise
        finally:
            for process in reversed(processes):  # the sink first: it hands its last batch over
                _stop(process)
            drop_index(bootstrap.search_index(settings).client, settings.es_index)
            drop_bucket(bootstrap.raw_store(settings).client, settings.s3_bucket)
            drop_queue(settings)
        _report_sink_log(sink_log)


if __name__ == "__main__":
    main()
