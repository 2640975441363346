"""Celery app and tasks. Thin: each task calls into archiver/."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from celery import Celery, Task
from celery.signals import task_failure

from archiver import bootstrap
from archiver.errors import BackendUnavailable
from archiver.failures import FailureLog
from archiver.models import TaskFailure
from archiver.pipeline import Archiver
from archiver.reconcile import index_pending, reconcile
from archiver.settings import get_settings

log = logging.getLogger(__name__)

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


@lru_cache(maxsize=1)
def _archiver() -> Archiver:
    return bootstrap.archiver(get_settings())


@app.task(  # type: ignore[untyped-decorator]
    name="mailvault.archive_raw",
    autoretry_for=(BackendUnavailable,),
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=12,
)
def archive_raw(sha256: str) -> dict[str, Any]:
    """Parse, segment and index one message already in the raw store (and clear its pending
    marks, see archiver/reconcile.py)."""
    outcome = index_pending(_archiver(), sha256)
    log.info(
        "archived",
        extra={"sha256": sha256, "status": outcome.status, "parse_error": outcome.parse_error},
    )
    return outcome.model_dump()


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
    """archive_raw gave up (retries exhausted or a permanent error): keep it visible in S3."""
    if sender is None or sender.name != archive_raw.name or not args:
        return
    _failures().record_safely(
        TaskFailure(
            sha256=str(args[0]),
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
    options: dict[str, Any] = {
        "queue": queue or get_settings().celery_queue,
        "retry_policy": _SEND_RETRY,
        "ignore_result": True,
    }
    if broker_url is None:
        archive_raw.apply_async((sha256,), **options)
        return
    with app.connection_for_write(broker_url) as connection:
        archive_raw.apply_async((sha256,), connection=connection, **options)
