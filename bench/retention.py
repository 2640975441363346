"""Retention benchmark: recomputing the whole archive's retention, and a disposition run.

    python -m bench.retention --messages 100000 --dispose 10000

On a throwaway archive (its own bucket and index, dropped after), seeded as bench/seeding.py
does (variants of a few thousand analysed generated messages), dates sent spread over the last
~9.5 years, half the mail in a department (the default decides: keep forever, a rolling Object
Lock). Then:

1. policies are saved (contracts 10 years, newsletters 1 year, R&D kept) and the archive is
   recomputed: messages/s over the whole walk, how many changed, S3 requests per message;
2. the newsletters' period is lengthened to 10 years and it is recomputed again;
3. --dispose old messages of a dissolved branch are seeded after a policy deleting its mail
   exists (their retention ended: no lock is set), and a disposition run plans and deletes
   them: messages/s, S3 requests per message (purge + tombstone + audit record), audit records.

S3 requests are counted by each S3RawStore's own HTTP client: the one below the Object Lock
adapter (locks, purges, tombstones), the retention state's (policies, job progress) and the
audit log's.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from archiver import bootstrap
from archiver.adapters.s3 import S3JsonStore, S3RawStore, S3RetentionStorage
from archiver.audit.indexing import QueuedAuditIndex
from archiver.audit.log import AuditLog
from archiver.audit.records import AuditAction
from archiver.retention.recompute import RecomputeReport, recompute
from archiver.retention.service import RetentionService
from archiver.settings import Settings, get_settings
from bench.cleanup import drop_bucket, drop_index, throwaway_settings
from bench.search import machine_line
from bench.seeding import seed, templates

DEPARTMENTS = ("研发部", "销售部", "财务部")
DISSOLVED = "旧分公司"  # the department of the mail the disposition run deletes
NEWSLETTER_WORD = "会议"  # a word in a large share of the generated mail
SPREAD = timedelta(days=int(365.25 * 9.5))  # dates sent: none older than the 10-year policies


def policies(newsletter_years: int = 1) -> list[dict[str, object]]:
    return [
        {
            "name": "contracts",
            "criteria": {"query": "合同"},
            "period": {"amount": 10, "unit": "years"},
            "action": "delete",
        },
        {
            "name": "newsletters",
            "criteria": {"query": NEWSLETTER_WORD},
            "period": {"amount": newsletter_years, "unit": "years"},
            "action": "delete",
        },
        {"name": "research", "criteria": {"departments": ["研发部"]}, "action": "keep"},
        {
            "name": "dissolved-branch",
            "criteria": {"departments": [DISSOLVED]},
            "period": {"amount": 2, "unit": "years"},
            "action": "delete",
        },
    ]


class Counters:
    """The S3 requests of every raw store the retention jobs write through."""

    def __init__(self, service: RetentionService, audit: AuditLog | None = None) -> None:
        # the adapters' own stores (private by convention: a benchmark reads their counters)
        assert isinstance(service.storage, S3RetentionStorage)
        assert isinstance(service.state.store, S3JsonStore)
        self.storage: S3RawStore = service.storage._store
        self.others: list[S3RawStore] = [service.state.store._store]
        if audit is not None:
            self.others.append(audit.store._store)  # type: ignore[attr-defined]

    def snapshot(self) -> tuple[int, int]:
        return self.storage.requests, sum(s.requests for s in self.others)


def timed_recompute(
    label: str, service: RetentionService, counters: Counters
) -> tuple[RecomputeReport, float]:
    before = counters.snapshot()
    began = time.perf_counter()
    report = recompute(service, restart=True)
    elapsed = time.perf_counter() - began
    service.index.refresh()
    locks, others = (a - b for a, b in zip(counters.snapshot(), before, strict=True))
    scanned = max(report.scanned, 1)
    per_changed = f"{locks / report.changed:.2f}" if report.changed else "-"
    print(
        f"{label}: {report.scanned} messages in {elapsed:.1f} s = {report.scanned / elapsed:.0f}"
        f" msg/s; changed {report.changed}, locks extended {report.locks_extended},"
        f" failed {report.failed}"
    )
    print(
        f"  S3 requests: Object Lock {locks} ({locks / scanned:.3f}/message, {per_changed}"
        f"/changed message); retention state {others} ({others / scanned:.3f}/message)"
    )
    return report, elapsed


def dispose(settings: Settings, count: int) -> bool:
    disposition = bootstrap.disposition(settings)
    counters = Counters(disposition.retention, disposition.audit)
    before = counters.snapshot()
    began = time.perf_counter()
    run = disposition.plan("bench:officer")
    planned = time.perf_counter() - began
    if run.status == "awaiting_approval":
        disposition.approve(run.id, "bench:second-officer")
    run = disposition.execute(run.id)
    elapsed = time.perf_counter() - began
    if isinstance(disposition.audit.index, QueuedAuditIndex):
        # its thread indexes the records later: done before the archive's indices are dropped
        disposition.audit.index.flush()
    storage, others = (a - b for a, b in zip(counters.snapshot(), before, strict=True))
    deleted = max(run.deleted, 1)
    audited = sum(
        1
        for r in disposition.audit.records()
        if r.action == AuditAction.DISPOSE and r.details.get("run") == run.id
    )
    print(
        f"disposition: planned {run.planned} in {planned:.1f} s, deleted {run.deleted} in"
        f" {elapsed:.1f} s (plan + execute) = {run.deleted / elapsed:.0f} msg/s; kept: held"
        f" {run.kept_held}, by policy {run.kept_by_policy}, locked {run.kept_locked}; failed"
        f" {run.failed}"
    )
    print(
        f"  S3 requests: purge + tombstone {storage} ({storage / deleted:.2f}/message);"
        f" audit + run state {others} ({others / deleted:.2f}/message); total"
        f" {(storage + others) / deleted:.2f}/message"
    )
    print(f"  audit records written (dispose): {audited}")
    for error in run.errors[:5]:
        print(f"  error: {error}")
    return run.deleted == count and audited == count and not run.failed


def measure(settings: Settings, args: argparse.Namespace) -> bool:
    service = bootstrap.retention(settings)
    store = bootstrap.raw_store(settings)
    pool = templates(min(args.templates, args.messages), args.seed)
    now = datetime.now(UTC)
    step: timedelta = SPREAD / max(args.messages, 1)

    def spread(n: int) -> datetime:
        return now - timedelta(hours=1) - step * n

    def shared(n: int) -> list[str]:
        return [DEPARTMENTS[n % 6]] if n % 6 < len(DEPARTMENTS) else []  # half the mail

    print(f"templates: {len(pool)} generated messages analysed once")
    rate = seed(service, store, pool, range(args.messages), spread, shared)
    print(f"seeded {args.messages} messages at {rate:.0f} msg/s (default policy: keep, locked)")

    counters = Counters(service)
    for policy in policies():
        service.save_policy(policy, "bench:officer")
    timed_recompute("recompute #1 (4 policies saved)", service, counters)
    service.save_policy(policies(newsletter_years=10)[1], "bench:officer")
    timed_recompute("recompute #2 (newsletters 1 → 10 years)", service, counters)

    old = datetime(2012, 1, 1, tzinfo=UTC)
    rate = seed(
        service,
        store,
        pool,
        range(args.messages, args.messages + args.dispose),
        lambda n: old + timedelta(minutes=n % 1_000_000),
        lambda n: [DISSOLVED],
    )
    print(f"seeded {args.dispose} disposable messages (sent in 2012) at {rate:.0f} msg/s")
    limit = settings.model_copy(update={"retention_approval_limit": args.dispose + 1})
    return dispose(limit, args.dispose)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--dispose", type=int, default=10_000)
    parser.add_argument("--templates", type=int, default=2000, help="distinct generated messages")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    name = f"mailvault-benchretention-{uuid.uuid4().hex[:8]}"
    settings = throwaway_settings(get_settings(), name)
    print(machine_line())
    print(f"load average at start: {os.getloadavg()}")
    print(f"archive: {name} (throwaway: dropped at the end)")
    bootstrap.init_backends(settings)
    try:
        ok = measure(settings, args)
    finally:
        drop_index(bootstrap.search_index(settings).client, settings.es_index)
        drop_bucket(bootstrap.raw_store(settings).client, settings.s3_bucket)
    print(f"load average at end: {os.getloadavg()}")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
