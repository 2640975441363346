"""Pipeline work that gave up, kept where operators can see it: in the archive's own S3 bucket.

Redis holds task results only for a day and loses them on restart; a failure record under
"meta/failures/" survives both. One record per message, or per spool segment for the task that
files segments (the latest failure wins). A tagging rule that timed out on a message has a record
of its own per message ("rule:NAME:SHA256"): the message is archived, but the rule could not
decide on it; the record stays until the rule is saved again (see TaggingService.save_rule).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from archiver.errors import MailvaultError, RuleTimedOut
from archiver.models import TaskFailure
from archiver.ports import JsonStore

log = logging.getLogger(__name__)

PREFIX = "failures/"
TAGGING_TASK = "tagging"


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

    def count(self) -> int:
        """How many records there are (a listing: no record is read)."""
        return len(self.store.list_keys(PREFIX))

    def clear(self, failure: TaskFailure) -> None:
        self.store.delete(PREFIX + failure.subject())

    def clear_rule(self, name: str) -> None:
        """Forget the rule's timeouts: it has changed, and its new version is judged afresh."""
        for key in self.store.list_keys(f"{PREFIX}rule:{name}:"):
            self.store.delete(key)

    def open(self, unresolved: Callable[[TaskFailure], bool]) -> list[TaskFailure]:
        """Failures whose message (or segment) still needs work; records of resolved ones
        (indexed since, e.g. by the reconciler) are removed. Rule timeouts stay: their message
        is indexed, but only a change of the rule resolves them."""
        still: list[TaskFailure] = []
        for failure in self.all():
            if failure.rule or unresolved(failure):
                still.append(failure)
            else:
                self.clear(failure)
        return still


def rule_timeout(error: RuleTimedOut) -> TaskFailure:
    return TaskFailure(
        sha256=error.message,
        task=TAGGING_TASK,
        error=str(error),
        attempts=1,
        failed_at=datetime.now(UTC),
        rule=error.rule,
        rule_version=error.version,
    )
