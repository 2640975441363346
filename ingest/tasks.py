"""Celery app and tasks. Thin: each task calls into archiver/."""

from __future__ import annotations

import logging
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import redis
from celery import Celery, Task
from celery.signals import task_failure, worker_process_init

from archiver import bootstrap
from archiver.errors import BackendUnavailable, ImapAccountsError
from archiver.failures import FailureLog
from archiver.imap_accounts import load_accounts
from archiver.models import TaskFailure
from archiver.pipeline import Archiver
from archiver.reconcile import index_pending, index_pending_many, reconcile
from archiver.segment import get_segmenter
from archiver.settings import get_settings
from archiver.tagging.keywords import idf_table

log = logging.getLogger(__name__)
_IMAP_LOCK_SECONDS = 6 * 3600  # a first sync of a large mailbox takes long

settings = get_settings()
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
    # The reconciler indexes what the fast path (archive_raw) missed; see archiver/reconcile.py.
    beat_schedule={
        "reconcile": {"task": "mailvault.reconcile", "schedule": settings.reconcile_interval}
    },
)


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


app.conf.beat_schedule.update(imap_schedule(settings.imap_accounts))


@lru_cache(maxsize=1)
def _archiver() -> Archiver:
    return bootstrap.archiver(get_settings())


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _warm_up(**_: Any) -> None:
    """Load the dictionaries (segmenter, topic IDF: seconds on a busy machine) when a worker
    process starts, so the first mail after a start does not wait for them."""
    get_segmenter(get_settings().user_dict)
    idf_table()


# Transient backend errors are retried with exponential backoff and jitter; a task that runs
# out of retries is recorded (see _record_failure) so `mailvault failures` shows it.
PIPELINE_RETRIES: dict[str, Any] = {
    "autoretry_for": (BackendUnavailable,),
    "retry_backoff": settings.pipeline_retry_backoff,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": settings.pipeline_max_retries,
}


@app.task(name="mailvault.archive_raw", **PIPELINE_RETRIES)  # type: ignore[untyped-decorator]
def archive_raw(sha256: str) -> dict[str, Any]:
    """Parse, segment and index one message already in the raw store (and clear its pending
    marks, see archiver/reconcile.py)."""
    outcome = index_pending(_archiver(), sha256)
    log.info(
        "archived",
        extra={"sha256": sha256, "status": outcome.status, "parse_error": outcome.parse_error},
    )
    return outcome.model_dump()


@app.task(name="mailvault.archive_batch", **PIPELINE_RETRIES)  # type: ignore[untyped-decorator]
def archive_batch(shas: list[str]) -> dict[str, Any]:
    """archive_raw for many messages at once (what the SMTP sink sends): parallel S3 reads, one
    bulk request to the index. A message that fails here goes on alone as archive_raw, with
    that task's retries and failure record."""
    summary = index_pending_many(_archiver(), shas)
    for error in summary.errors:
        log.warning("batch member failed; retried alone", extra=error)
        archive_raw.apply_async((error["sha256"],), queue=get_settings().celery_queue)
    log.info("archived batch", extra=summary.model_dump(exclude={"errors"}))
    return summary.model_dump()


@lru_cache(maxsize=1)
def _failures() -> FailureLog:
    return FailureLog(bootstrap.json_store(get_settings()))


@app.task(name="mailvault.reconcile")  # type: ignore[untyped-decorator]
def reconcile_pending() -> dict[str, Any]:
    """Index stored messages whose pending marks the fast path left behind."""
    summary = reconcile(
        _archiver(),
        min_age=timedelta(seconds=get_settings().reconcile_min_age),
        failures=_failures(),
    )
    return summary.model_dump()


@task_failure.connect  # type: ignore[untyped-decorator]
def _record_failure(
    sender: Task | None = None,
    exception: BaseException | None = None,
    args: tuple[Any, ...] | None = None,
    **_: Any,
) -> None:
    """archive_raw or archive_batch gave up (retries exhausted or a permanent error): keep each
    message visible in S3."""
    if sender is None or sender.name not in {archive_raw.name, archive_batch.name} or not args:
        return
    shas = args[0] if isinstance(args[0], list) else [args[0]]
    for sha256 in shas:
        _failures().record_safely(
            TaskFailure(
                sha256=str(sha256),
                task=sender.name,
                error=f"{type(exception).__name__}: {exception}",
                attempts=int(getattr(sender.request, "retries", 0) or 0) + 1,
                failed_at=datetime.now(UTC),
            )
        )


# Sending fails fast when Redis is down: the pending mark, not the queue, keeps the work.
_SEND_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.25, "interval_max": 0.5}


def enqueue_archive(
    sha256: str, *, queue: str | None = None, broker_url: str | None = None
) -> None:
    """Send archive_raw for a stored message; raises when the broker cannot be reached."""
    _send(archive_raw, (sha256,), queue, broker_url)


def enqueue_archive_batch(
    shas: list[str], *, queue: str | None = None, broker_url: str | None = None
) -> None:
    """Send archive_batch for stored messages; raises when the broker cannot be reached."""
    _send(archive_batch, (shas,), queue, broker_url)


def _send(task: Task, args: tuple[Any, ...], queue: str | None, broker_url: str | None) -> None:
    options: dict[str, Any] = {
        "queue": queue or get_settings().celery_queue,
        "retry_policy": _SEND_RETRY,
        "ignore_result": True,
    }
    if broker_url is None:
        task.apply_async(args, **options)
        return
    with app.connection_for_write(broker_url) as connection:
        task.apply_async(args, connection=connection, **options)


@app.task(name="mailvault.imap_poll")  # type: ignore[untyped-decorator]
def imap_poll(account: str) -> list[dict[str, Any]]:
    """Poll one IMAP account once (see archiver/imap_sync.py). Skipped while an earlier poll of
    the same account still runs: two polls would fetch the same batches twice."""
    from ingest.imap import poll_accounts

    current = get_settings()
    lock = redis.Redis.from_url(current.redis_url).lock(
        f"mailvault:imap-poll:{account}", timeout=_IMAP_LOCK_SECONDS
    )
    if not lock.acquire(blocking=False):
        log.info("imap poll still running; skipped", extra={"account": account})
        return []
    try:
        summaries = poll_accounts(current, account)
    finally:
        with suppress(redis.exceptions.LockError):  # expired meanwhile: nothing to release
            lock.release()
    for summary in summaries:
        log.info("imap poll done", extra={"account": account, "ok": summary.ok})
    return [s.model_dump(mode="json") for s in summaries]
