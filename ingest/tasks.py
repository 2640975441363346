"""Celery app and tasks. Thin: each task calls into archiver/."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import redis
from celery import Celery, Task
from celery.signals import task_failure, worker_process_init

from archiver import bootstrap
from archiver.errors import BackendFailed, BackendUnavailable, ExportBusy, ImapAccountsError
from archiver.imap.accounts import load_accounts
from archiver.imap.sync import PollSummary
from archiver.models import SpoolSegment, TaskFailure
from archiver.pipeline.archiver import Archiver
from archiver.pipeline.failures import FailureLog
from archiver.pipeline.reconcile import file_spooled, reconcile
from archiver.retention.disposition import SYSTEM
from archiver.retention.recompute import recompute, sweep
from archiver.settings import Settings, get_settings
from archiver.tagging.keywords import idf_table
from archiver.text.tokenizer import get_tokenizer

log = logging.getLogger(__name__)
_IMAP_LOCK_SECONDS = 6 * 3600  # a first sync of a large mailbox takes long

ARCHIVE_RAW = "mailvault.archive_raw"
ARCHIVE_SPOOL = "mailvault.archive_spool"
RECONCILE = "mailvault.reconcile"
IMAP_POLL = "mailvault.imap_poll"
RETENTION_RECOMPUTE = "mailvault.retention_recompute"
RETENTION_SWEEP = "mailvault.retention_sweep"
RETENTION_RUN = "mailvault.retention_run"
EXPORT_BUILD = "mailvault.export_build"
EXPORT_MAINTAIN = "mailvault.export_maintain"
_RETENTION_LOCK_SECONDS = 12 * 3600
T = TypeVar("T")


def create_app(settings: Settings) -> Celery:
    """The Celery app with the pipeline tasks, their retry policy and the beat schedule."""
    app = Celery("mailvault", broker=settings.redis_url, backend=settings.redis_url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # A task is acknowledged only when done, so a worker crash re-delivers it.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=4,
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.celery_queue,
        # The reconciler files what archive_spool missed (archiver/pipeline/reconcile.py).
        beat_schedule={
            "reconcile": {"task": RECONCILE, "schedule": settings.reconcile_interval},
            **imap_schedule(settings.imap_accounts),
            **retention_schedule(settings),
            # expired packages deleted; builds whose worker died handed to another
            "export-maintain": {
                "task": EXPORT_MAINTAIN,
                "schedule": settings.export_maintain_interval,
                "options": {"expires": settings.export_maintain_interval},
            },
        },
    )
    # Transient backend errors are retried with exponential backoff and jitter; a task that
    # runs out of retries, or fails permanently (BackendFailed: a misconfiguration, never
    # retried), is recorded (see _record_failure) so `mailvault failures` shows it with its cause.
    retried: dict[str, Any] = {
        "autoretry_for": (BackendUnavailable,),
        "retry_backoff": settings.pipeline_retry_backoff,
        "retry_backoff_max": 600,
        "retry_jitter": True,
        "max_retries": settings.pipeline_max_retries,
    }
    app.task(name=ARCHIVE_RAW, **retried)(archive_raw)
    app.task(name=ARCHIVE_SPOOL, **retried)(archive_spool)
    app.task(name=RECONCILE)(reconcile_pending)
    app.task(name=IMAP_POLL)(imap_poll)
    app.task(name=RETENTION_RECOMPUTE, **retried)(retention_recompute)
    app.task(name=RETENTION_SWEEP)(retention_sweep)
    app.task(name=RETENTION_RUN, **retried)(retention_run)
    app.task(name=EXPORT_BUILD, **retried)(export_build)
    app.task(name=EXPORT_MAINTAIN)(export_maintain)
    worker_process_init.connect(_warm_up, weak=False, dispatch_uid="mailvault-warm-up")
    task_failure.connect(_record_failure, weak=False, dispatch_uid="mailvault-failures")
    return app


@lru_cache(maxsize=1)
def celery_app() -> Celery:
    """This process's app, from the settings (the CLI's worker and beat, and every sender)."""
    return create_app(get_settings())


def imap_schedule(accounts_file: Path | None) -> dict[str, dict[str, Any]]:
    """One beat entry per configured IMAP account, at the account's poll interval. A broken
    accounts file is logged, not raised: the worker and the other schedules must still run."""
    if accounts_file is None:
        return {}
    try:
        accounts = load_accounts(accounts_file).accounts
    except ImapAccountsError as exc:
        log.error("imap accounts not scheduled", extra={"error": str(exc)})
        return {}
    return {
        f"imap-poll-{a.name}": {
            "task": "mailvault.imap_poll",
            "schedule": float(a.poll_interval),
            "args": (a.name,),
            # a poll that waited longer than one interval is superseded by the next one
            "options": {"expires": float(a.poll_interval)},
        }
        for a in accounts
    }


def retention_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Daily: a disposition run, and a recompute (tags changed by rules, and the renewal of
    the rolling locks of mail kept forever); every few minutes, a sweep of undecided mail."""
    return {
        "retention-run": {
            "task": RETENTION_RUN,
            "schedule": settings.retention_run_interval,
            "options": {"expires": settings.retention_run_interval},
        },
        "retention-recompute": {
            "task": RETENTION_RECOMPUTE,
            "schedule": settings.retention_run_interval,
            "options": {"expires": settings.retention_run_interval},
        },
        "retention-sweep": {
            "task": RETENTION_SWEEP,
            "schedule": settings.retention_sweep_interval,
            "options": {"expires": settings.retention_sweep_interval},
        },
    }


@lru_cache(maxsize=1)
def _archiver() -> Archiver:
    return bootstrap.archiver(get_settings())


def _warm_up(**_: Any) -> None:
    """Load the dictionaries (tokenizer, topic IDF: seconds on a busy machine) when a worker
    process starts, so the first mail after a start does not wait for them."""
    get_tokenizer(get_settings().user_dict)
    idf_table()


def archive_raw(sha256: str) -> dict[str, Any]:
    """Parse, segment and index one message already in the raw store, with every source
    recorded for it (`mailvault failures --retry` sends this)."""
    outcome = _archiver().archive_stored(sha256)
    log.info(
        "archived",
        extra={"sha256": sha256, "status": outcome.status, "parse_error": outcome.parse_error},
    )
    if outcome.status == "failed":
        kind = BackendUnavailable if outcome.retryable else BackendFailed
        raise kind("pipeline", outcome.error or "indexing failed")
    return outcome.model_dump()


def archive_spool(segments: list[dict[str, Any]]) -> dict[str, Any]:
    """File spool segments (what the SMTP sink sends): store each message, index them with one
    bulk request, drop the segments. A message that failed keeps its segment, and the task is
    retried; filing again is idempotent."""
    current = get_settings()
    summary = file_spooled(
        _archiver(),
        segments_of(segments),
        task=ARCHIVE_SPOOL,
        refresh=current.smtp_refresh_on_file,
    )
    log.info("filed spool", extra=summary.model_dump(exclude={"errors"}))
    if summary.failed and any("sha256" in e for e in summary.errors):
        first = next(e for e in summary.errors if "sha256" in e)
        kind = BackendUnavailable if summary.retryable else BackendFailed
        raise kind(
            "pipeline",
            f"{summary.failed} messages not filed, e.g. {first['sha256']}: {first['error']}",
        )
    return summary.model_dump()


@lru_cache(maxsize=1)
def _failures() -> FailureLog:
    return bootstrap.failure_log(get_settings())


def reconcile_pending() -> dict[str, Any]:
    """File the spool segments the fast path left behind."""
    summary = reconcile(
        _archiver(),
        min_age=timedelta(seconds=get_settings().reconcile_min_age),
        failures=_failures(),
    )
    return summary.model_dump()


def _record_failure(
    sender: Task | None = None,
    exception: BaseException | None = None,
    args: tuple[Any, ...] | None = None,
    **_: Any,
) -> None:
    """archive_raw or archive_spool gave up (retries exhausted or a permanent error): keep the
    message (or the segment, which stays in the spool) visible in S3."""
    if sender is None or sender.name not in {ARCHIVE_RAW, ARCHIVE_SPOOL} or not args:
        return
    common = {
        "task": sender.name,
        "error": f"{type(exception).__name__}: {exception}",
        "attempts": int(getattr(sender.request, "retries", 0) or 0) + 1,
        "failed_at": datetime.now(UTC),
    }
    if sender.name == ARCHIVE_RAW:
        failures = [TaskFailure(sha256=str(args[0]), **common)]
    else:
        failures = [TaskFailure(segment=s, **common) for s in segments_of(args[0])]
    for failure in failures:
        _failures().record_safely(failure)


# Sending fails fast when Redis is down: the spool, not the queue, keeps the work.
_SEND_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.25, "interval_max": 0.5}


def enqueue_archive(
    sha256: str, *, queue: str | None = None, broker_url: str | None = None
) -> None:
    """Send archive_raw for a stored message; raises when the broker cannot be reached."""
    _send(ARCHIVE_RAW, (sha256,), queue, broker_url)


def enqueue_archive_spool(
    segments: list[SpoolSegment], *, queue: str | None = None, broker_url: str | None = None
) -> None:
    """Send archive_spool for written segments; raises when the broker cannot be reached."""
    _send(ARCHIVE_SPOOL, (task_args(segments),), queue, broker_url)


def task_args(segments: list[SpoolSegment]) -> list[dict[str, Any]]:
    """The segments as archive_spool's JSON argument. Those that still hold their bytes carry
    them (the sink keeps them for small batches); segments_of reads them back."""
    return [
        {
            **s.model_dump(mode="json"),
            **({"data": base64.b64encode(s.data).decode()} if s.data else {}),
        }
        for s in segments
    ]


def segments_of(task_args: list[dict[str, Any]]) -> list[SpoolSegment]:
    """The segments an archive_spool task names, with the bytes it carried."""
    segments: list[SpoolSegment] = []
    for arg in task_args:
        data = arg.get("data")
        segment = SpoolSegment.model_validate({k: v for k, v in arg.items() if k != "data"})
        segment.data = base64.b64decode(data) if data else None
        segments.append(segment)
    return segments


def enqueue_retry(failure: TaskFailure) -> None:
    """Send a recorded failure back to the task that gave up on it."""
    if failure.segment is not None:
        enqueue_archive_spool([failure.segment])
    else:
        enqueue_archive(failure.sha256)


def _send(task: str, args: tuple[Any, ...], queue: str | None, broker_url: str | None) -> None:
    options: dict[str, Any] = {
        "queue": queue or get_settings().celery_queue,
        "retry_policy": _SEND_RETRY,
        "ignore_result": True,
    }
    app = celery_app()
    if broker_url is None:
        app.send_task(task, args, **options)
        return
    with app.connection_for_write(broker_url) as connection:
        app.send_task(task, args, connection=connection, **options)


def imap_poll(account: str) -> list[dict[str, Any]]:
    """Poll one IMAP account once (see archiver/imap/sync.py). Skipped while an earlier poll of
    the same account still runs: two polls would fetch the same batches twice."""

    current = get_settings()
    none: list[PollSummary] = []
    summaries = _exclusive(
        f"mailvault:imap-poll:{account}",
        _IMAP_LOCK_SECONDS,
        lambda: bootstrap.poll_imap_accounts(current, account),
        skipped=none,
    )
    for summary in summaries:
        log.info("imap poll done", extra={"account": account, "ok": summary.ok})
    return [s.model_dump(mode="json") for s in summaries]


def _exclusive(key: str, timeout: int, work: Callable[[], T], skipped: T) -> T:
    """Run `work` unless another worker holds the Redis lock `key` (it would do the same work
    twice); `skipped` is the answer then. The lock lapses after `timeout` seconds, should the
    worker holding it die."""
    lock = redis.Redis.from_url(get_settings().redis_url).lock(key, timeout=timeout)
    if not lock.acquire(blocking=False):
        log.info("still running elsewhere; skipped", extra={"lock": key})
        return skipped
    try:
        return work()
    finally:
        with suppress(redis.exceptions.LockError):  # expired meanwhile: nothing to release
            lock.release()


def _retention_lock(name: str) -> str:
    return f"mailvault:{get_settings().s3_bucket}:{name}"


def retention_recompute() -> dict[str, Any]:
    """Recompute every message's retention (after a policy or hold change; resumes)."""
    service = bootstrap.retention(get_settings())
    return _exclusive(
        _retention_lock("retention-recompute"),
        _RETENTION_LOCK_SECONDS,
        lambda: recompute(service).model_dump(mode="json"),
        skipped={"skipped": True},
    )


def retention_sweep() -> dict[str, Any]:
    """Decide the mail that is still pending (a failure while it was indexed)."""
    return sweep(bootstrap.retention(get_settings())).model_dump(mode="json")


def retention_run() -> dict[str, Any]:
    """The daily disposition: runs that were approved, then a new run, which deletes at once
    when small enough and otherwise waits for a second person's approval."""
    disposition = bootstrap.disposition(get_settings())

    def work() -> dict[str, Any]:
        for run in disposition.runs():
            if run.status in ("approved", "running"):
                disposition.execute(run.id)
        if any(r.status == "awaiting_approval" for r in disposition.runs()):
            return {"waiting": True}  # one request for approval at a time
        run = disposition.plan(SYSTEM)
        if run.status == "approved":
            run = disposition.execute(run.id)
        return run.model_dump(mode="json", exclude={"samples"})

    return _exclusive(
        _retention_lock("retention-run"), _RETENTION_LOCK_SECONDS, work, skipped={"skipped": True}
    )


def enqueue_retention_recompute() -> None:
    """Ask a worker to recompute retention; raises when the broker cannot be reached."""
    _send(RETENTION_RECOMPUTE, (), None, None)


def export_build(export_id: str) -> dict[str, Any]:
    """Build an evidence export, or resume it where a worker that died left it. A job another
    worker is building (its lease runs) is left to it."""
    try:
        job = bootstrap.export_builder(get_settings()).build(export_id)
    except ExportBusy as exc:
        log.info("export built elsewhere; skipped", extra={"export": export_id, "by": exc.holder})
        return {"skipped": True}
    return {"export": job.id, "status": job.status, "parts": len(job.parts)}


def export_maintain() -> dict[str, Any]:
    """Delete expired packages, and hand builds nobody holds (a dead worker's) to a worker."""
    service = bootstrap.exports(get_settings())
    expired = service.expire()
    stalled = service.stalled()
    for export_id in stalled:
        enqueue_export(export_id)
    return {"expired": expired, "resumed": stalled}


def enqueue_export(export_id: str) -> None:
    """Ask a worker to build an export; raises when the broker cannot be reached."""
    _send(EXPORT_BUILD, (export_id,), None, None)
