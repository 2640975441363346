"""Celery app and tasks. Thin: each task calls into archiver/."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from celery import Celery

from archiver import bootstrap
from archiver.errors import BackendUnavailable
from archiver.pipeline import Archiver
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
    """Parse, segment and index one message already in the raw store."""
    outcome = _archiver().archive_stored(sha256)
    log.info(
        "archived",
        extra={"sha256": sha256, "status": outcome.status, "parse_error": outcome.parse_error},
    )
    return outcome.model_dump()
