"""Ingest benchmark: generated Chinese/English mail through the real pipeline.

Prints the end-to-end rate (store + parse + segment + index, as `mailvault import` runs it) and,
measured separately, each stage's own rate. Needs the services (scripts/services.sh up).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from archiver.mime.parsing import parse_message
from archiver.models import Source
from archiver.pipeline.archiver import Incoming
from archiver.pipeline.documents import build_document
from archiver.settings import Settings, get_settings
from archiver.text.tokenizer import get_tokenizer
from bench import indexers, proc_cpu
from bench.cleanup import cleanup_throwaway, throwaway_archive, throwaway_settings
from bench.corpora import spam_assassin_messages
from bench.mailgen import generate


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _line(stage: str, seconds: float, count: int, size: int) -> None:
    print(
        f"  {stage:<22} {seconds:8.2f} s  {count / seconds:9.0f} msg/s  "
        f"{size / seconds / 1e6:7.2f} MB/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--batch-size", type=int, default=0, help="0: MAILVAULT_IMPORT_BATCH_SIZE (100)"
    )
    parser.add_argument("--workers", type=int, default=0, help="0: one per core")
    parser.add_argument(
        "--maildir",
        action="store_true",
        help="also write the messages as a Maildir and run `mailvault import`, `notmuch new` "
        "and `mu index` (when installed) on it, printing the ratios",
    )
    parser.add_argument(
        "--no-stages", action="store_true", help="end to end only, not each stage alone"
    )
    parser.add_argument(
        "--corpus",
        choices=["generated", "spamassassin"],
        default="generated",
        help="generated Chinese/English mail (--count, --seed), or the real messages of the "
        "SpamAssassin public corpus (6,000 and more, as written; --count is ignored)",
    )
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    settings = throwaway_settings(get_settings(), f"mailvault-bench-{run}").model_copy(
        update={"import_workers": args.workers}
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"python {platform.python_version()}"
    )
    messages = _corpus(args.corpus, args.count, args.seed)
    total = sum(len(m) for m in messages)

    end_to_end(settings, messages, total, args.batch_size or settings.import_batch_size)
    if args.maildir:
        maildir_name = f"mailvault-benchmaildir-{run}"
        try:
            indexers.compare(messages, maildir_name, args.workers)
        finally:
            cleanup_throwaway(throwaway_settings(settings, maildir_name))
    if not args.no_stages:
        stages(throwaway_settings(settings, f"mailvault-benchstage-{run}"), messages, total)


def _corpus(kind: str, count: int, seed: int) -> list[bytes]:
    start = time.perf_counter()
    if kind == "spamassassin":
        messages = [raw for _, raw in spam_assassin_messages()]
        what = "real messages of the SpamAssassin public corpus"
    else:
        generated = list(generate(count, seed=seed))
        messages = [m.raw for m in generated]
        with_attachments = sum(bool(m.attachment_names) for m in generated)
        what = f"generated messages (seed {seed}, {with_attachments} with attachments)"
    total = sum(len(m) for m in messages)
    print(
        f"corpus: {len(messages)} {what}, {total / 1e6:.1f} MB, "
        f"{total / len(messages) / 1e3:.1f} KB on average; read in "
        f"{time.perf_counter() - start:.1f} s"
    )
    return messages


def end_to_end(settings: Settings, messages: list[bytes], total: int, batch_size: int) -> None:
    now = datetime.now(UTC)
    items = [
        Incoming(raw, Source(kind="import", detail=f"bench#{number}", received_at=now))
        for number, raw in enumerate(messages)
    ]
    statuses: dict[str, int] = {}
    with throwaway_archive(settings, parallel=True) as archiver:
        archiver.ingest_many(items[:8])  # start the worker processes before the clock runs

        threshold = settings.import_pause_refresh_bytes
        pause = threshold == 0 or 0 < threshold <= total

        def run() -> None:
            # as `mailvault import` runs it: a large import pauses the index refresh
            if pause:
                archiver.index.pause_refresh()
            starts = range(8, len(items), batch_size)
            batches = (items[start : start + batch_size] for start in starts)
            for outcomes in archiver.ingest_stream(batches):
                for outcome in outcomes:
                    statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
            if pause:
                archiver.index.resume_refresh()

        groups = _cpu_groups()
        before = proc_cpu.Snapshot.take()
        seconds = _timed(run)
        after = proc_cpu.Snapshot.take()
    print(
        f"end to end (workers={settings.import_workers or os.cpu_count()}, "
        f"batch={batch_size}, refresh {'paused' if pause else 'on'}): {statuses}"
    )
    _line("store+parse+seg+index", seconds, len(items) - 8, total)
    proc_cpu.print_split(groups, before, after, seconds, len(items) - 8)


def _cpu_groups() -> list[proc_cpu.Group]:
    """This process, its analyser processes, and the services, each on its own."""
    me = os.getpid()
    children = proc_cpu.Snapshot.take().members(proc_cpu.Group("all", [me])) - {me}
    return [
        proc_cpu.Group("import (main)", [me], tree=False),
        proc_cpu.Group("analysers", sorted(children)),
        proc_cpu.Group(
            "elasticsearch",
            proc_cpu.find(lambda comm, cmd: comm == "java" and "org.elasticsearch" in cmd),
        ),
        proc_cpu.Group("seaweedfs", proc_cpu.find(lambda comm, cmd: comm == "weed")),
    ]


def stages(settings: Settings, messages: list[bytes], total: int) -> None:
    print("stages, each measured alone (parse and segment on one core):")
    now = datetime.now(UTC)
    parsed = []
    _line(
        "parse",
        _timed(lambda: parsed.extend(parse_message(m, now) for m in messages)),
        len(messages),
        total,
    )
    tokenizer = get_tokenizer(settings.user_dict)
    docs = []
    _line(
        "segment (+doc build)",
        _timed(
            lambda: docs.extend(build_document(str(i), p, tokenizer) for i, p in enumerate(parsed))
        ),
        len(messages),
        total,
    )
    with (
        throwaway_archive(settings) as archiver,
        ThreadPoolExecutor(settings.store_threads) as pool,
    ):
        store, index = archiver.store, archiver.index
        _line(
            f"store ({settings.store_threads} threads)",
            _timed(lambda: list(pool.map(store.put, messages))),
            len(messages),
            total,
        )
        _line(
            "index (bulk 500)",
            _timed(
                lambda: [index.create_many(docs[i : i + 500]) for i in range(0, len(docs), 500)]
            ),
            len(messages),
            total,
        )


if __name__ == "__main__":
    main()
