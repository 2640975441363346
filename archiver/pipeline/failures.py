"""Pipeline work that gave up, kept where operators can see it: in the archive's own S3 bucket.

Redis holds task results only for a day and loses them on restart; a failure record under
"meta/failures/" survives both. One record per message, or per spool segment for the task that
files segments (the latest failure wins).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from archiver.errors import MailvaultError
from archiver.models import TaskFailure
from archiver.ports import JsonStore

log = logging.getLogger(__name__)

PREFIX = "failures/"


class FailureLog:
    def __init__(self, store: JsonStore) -> None:
        self.store = store

    def record(self, failure: TaskFailure) -> None:
        self.store.put_json(PREFIX + failure.subject(), failure.model_dump(mode="json"))
        log.error("pipeline gave up", extra=failure.model_dump(mode="json"))

    def record_safely(self, failure: TaskFailure) -> None:
        """Record, or log when the store is down too (the spool or the raw store keeps the work)."""
        try:
            self.record(failure)
        except MailvaultError as exc:
            log.error(
                "could not record a pipeline failure",
                extra={**failure.model_dump(mode="json"), "record_error": str(exc)},
            )

    def all(self) -> list[TaskFailure]:
        found: list[TaskFailure] = []
        for key in self.store.list_keys(PREFIX):
            value = self.store.get_json(key)
            if value is not None:
                found.append(TaskFailure.model_validate(value))
        return sorted(found, key=lambda f: f.failed_at)

    def clear(self, failure: TaskFailure) -> None:
        self.store.delete(PREFIX + failure.subject())

    def open(self, unresolved: Callable[[TaskFailure], bool]) -> list[TaskFailure]:
        """Failures whose message (or segment) still needs work; records of resolved ones
        (indexed since, e.g. by the reconciler) are removed."""
        still: list[TaskFailure] = []
        for failure in self.all():
            if unresolved(failure):
                still.append(failure)
            else:
                self.clear(failure)
        return still
