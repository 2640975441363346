"""SMTP sink benchmark: N generated messages over C concurrent SMTP connections into the real
sink (S3 before 250), indexed by a real Celery worker; reports accepted msg/s and the latency
from 250 to searchable (an ids search sees it, i.e. after an index refresh).

Needs the services (scripts/services.sh up). The sink runs in this process; the worker is a
`mailvault worker` subprocess on its own queue, bucket and index.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from functools import partial

from archiver import bootstrap
from archiver.pipeline import Archiver
from archiver.settings import get_settings
from bench.mailgen import generate
from ingest.smtp import JournalHandler, SinkController, sink_settings
from ingest.tasks import enqueue_archive_batch


async def _send(
    port: int, messages: list[bytes], accepted: dict[int, float], base: int, interval: float
) -> None:
    """One SMTP connection sending its share; with an interval, one message per interval at
    most (a paced run measures the pipeline's latency below its capacity)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def reply() -> str:
        while True:
            line = (await reader.readline()).decode()
            if line[3:4] != "-":
                return line

    await reply()
    writer.write(b"EHLO bench.example\r\n")
    await reply()
    begin = time.monotonic()
    for i, raw in enumerate(messages):
        if (wait := begin + i * interval - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        # PIPELINING: MAIL and RCPT in one write
        writer.write(b"MAIL FROM:<bench@example.com>\r\nRCPT TO:<journal@archive.test>\r\nDATA\r\n")
        for _ in range(3):
            await reply()
        body = raw.replace(b"\r\n.", b"\r\n..")
        writer.write(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        status = await reply()
        if status.startswith("250"):
            accepted[base + i] = time.monotonic()
    writer.write(b"QUIT\r\n")
    await writer.drain()
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="send at most this many msg/s (0: as fast as accepted)",
    )
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    settings = get_settings().model_copy(
        update={
            "es_index": f"mailvault-bench-{run}",
            "s3_bucket": f"mailvault-bench-{run}",
            "celery_queue": f"mailvault-bench-{run}",
            "smtp_host": "127.0.0.1",
            "smtp_port": 0,
        }
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"python {platform.python_version()}"
    )
    raws = [m.raw for m in generate(args.count, seed=7)]
    # each message unique (its own sha256), so every 250 is one stored and indexed message
    raws = [f"X-Bench: {run}-{i}\r\n".encode() + raw for i, raw in enumerate(raws)]
    print(f"corpus: {len(raws)} messages, {sum(map(len, raws)) / 1e6:.1f} MB")
    bootstrap.init_backends(settings)
    env = {
        **os.environ,
        "MAILVAULT_ES_INDEX": settings.es_index,
        "MAILVAULT_S3_BUCKET": settings.s3_bucket,
        "MAILVAULT_CELERY_QUEUE": settings.celery_queue,
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingest.cli",
            "worker",
            "--concurrency",
            str(args.worker_concurrency),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        settings = sink_settings(settings, port=probe.getsockname()[1])
    archiver = bootstrap.archiver(settings)
    handler = JournalHandler(
        archiver, settings, partial(enqueue_archive_batch, queue=settings.celery_queue)
    )
    sink = SinkController(handler, settings)
    sink.start()
    _warm_up(archiver, settings.smtp_port, raws[:20], run)
    ids = [hashlib.sha256(raw).hexdigest() for raw in raws]
    accepted: dict[int, float] = {}
    searchable: dict[int, float] = {}
    done = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(archiver, ids, accepted, searchable, done), daemon=True
    )
    watcher.start()
    try:
        print(f"load average before: {_load()}")
        start = time.monotonic()
        asyncio.run(_send_all(settings.smtp_port, raws, accepted, args.concurrency, args.rate))
        elapsed = time.monotonic() - start
        print(
            f"accepted: {len(accepted)}/{len(raws)} in {elapsed:.1f} s = "
            f"{len(accepted) / elapsed:.0f} msg/s (concurrency {args.concurrency}"
            f"{f', paced at {args.rate:g} msg/s' if args.rate else ''})"
        )
        deadline = time.monotonic() + max(120.0, elapsed * 3)
        while len(searchable) < len(accepted) and time.monotonic() < deadline:
            time.sleep(0.2)
        done.set()
        watcher.join()
        print(f"load average after: {_load()} (other processes share the machine)")
        latencies = sorted(searchable[i] - accepted[i] for i in searchable)
        if latencies:
            print(
                f"250 -> searchable: {len(latencies)} messages, "
                f"p50 {statistics.median(latencies):.2f} s, "
                f"p95 {latencies[int(len(latencies) * 0.95) - 1]:.2f} s, "
                f"max {latencies[-1]:.2f} s; all searchable "
                f"{max(searchable.values()) - start:.1f} s after the first send"
            )
    finally:
        sink.stop()
        handler.close()
        worker.terminate()
        worker.wait(timeout=30)
        index = bootstrap.search_index(settings)
        index.client.indices.delete(index=f"{settings.es_index}-*", ignore_unavailable=True)
        index.client.indices.delete_index_template(name=f"{settings.es_index}-template")
        _drop_bucket(archiver)
        archiver.close()


async def _send_all(
    port: int, raws: list[bytes], accepted: dict[int, float], concurrency: int, rate: float
) -> None:
    share = -(-len(raws) // concurrency)
    interval = concurrency / rate if rate else 0.0
    await asyncio.gather(
        *(
            _send(port, raws[i : i + share], accepted, i, interval)
            for i in range(0, len(raws), share)
        )
    )


def _watch(
    archiver: Archiver,
    ids: list[str],
    accepted: dict[int, float],
    searchable: dict[int, float],
    done: threading.Event,
) -> None:
    """Poll with an ids search (sees only refreshed, i.e. searchable, documents)."""
    position = {sha256: i for i, sha256 in enumerate(ids)}
    while not done.is_set():
        waiting = [ids[i] for i in list(accepted) if i not in searchable][:2000]
        if waiting:
            body = {"query": {"ids": {"values": waiting}}, "size": len(waiting), "_source": False}
            hits = archiver.index.search(body)["hits"]["hits"]
            now = time.monotonic()
            for hit in hits:
                searchable.setdefault(position[hit["_id"]], now)
        time.sleep(0.05)


def _warm_up(archiver: Archiver, port: int, sample: list[bytes], run: str) -> None:
    """Not timed: a few messages through sink and worker until searchable, so the figures are of
    a running system, not of the worker's start (imports, dictionaries)."""
    warm = [f"X-Bench-Warm-Up: {run}-{i}\r\n".encode() + raw for i, raw in enumerate(sample)]
    ids = [hashlib.sha256(raw).hexdigest() for raw in warm]
    asyncio.run(_send_all(port, warm, {}, 4, 0))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        body = {"query": {"ids": {"values": ids}}, "size": 0, "track_total_hits": True}
        if archiver.index.search(body)["hits"]["total"]["value"] == len(ids):
            return
        time.sleep(0.2)
    raise SystemExit("the worker did not index the warm-up messages within 300 s")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _drop_bucket(archiver: Archiver) -> None:
    client, bucket = archiver.store.client, archiver.store.bucket  # type: ignore[attr-defined]
    for obj in client.list_objects(bucket, recursive=True, include_version=True):
        client.remove_object(bucket, obj.object_name, version_id=obj.version_id)
    client.remove_bucket(bucket)


if __name__ == "__main__":
    main()
