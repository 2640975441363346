"""A catastrophic rule regex against the real pipeline: the message is archived and indexed in
bounded time with the other rules' tags, the timeout is listed by `mailvault failures` (naming the
rule and the message) until the rule is changed, and the rule's preview shows the message."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime

import pytest

from archiver import bootstrap
from archiver.models import Source, TaskFailure
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.settings import Settings
from archiver.tagging.service import TaggingService
from tests.support.mail import raw_mail
from tests.support.processes import mailvault_env, run_cli

pytestmark = pytest.mark.services
LIMIT = 0.2
RUNAWAY = "(a|aa)+$"  # exponential backtracking on a run of a's that does not end the text


OWN_SETTINGS = {"name": "timeouts", "tagging_regex_timeout": LIMIT}


@pytest.fixture(scope="module")
def service(own: Settings, own_archiver: Archiver) -> TaggingService:
    return bootstrap.tagging(own)


def _listed(own: Settings) -> list[TaskFailure]:
    env = mailvault_env(es_index=own.es_index, s3_bucket=own.s3_bucket)
    out = run_cli(env, "failures", "--json")
    return [TaskFailure.model_validate(json.loads(line)) for line in out.splitlines()]


def test_a_catastrophic_rule_times_out_and_the_message_is_archived_with_the_other_tags(
    own: Settings, own_archiver: Archiver, service: TaggingService
) -> None:
    service.save_rule(
        {
            "name": "runaway",
            "when": {"field": "subject", "op": "regex", "value": RUNAWAY},
            "actions": {"add_tags": ["project/runaway"]},
        }
    )
    service.save_rule(
        {
            "name": "invoices",
            "when": {"field": "subject", "op": "contains", "value": "invoice"},
            "actions": {"add_tags": ["project/invoices"]},
        }
    )
    raw = raw_mail(1, "invoice " + "a" * 40 + "!", "timeouts.example")
    sha = hashlib.sha256(raw).hexdigest()
    source = Source(kind="import", detail="timeouts", received_at=datetime.now(UTC))
    started = time.monotonic()
    [outcome] = own_archiver.ingest_many([Incoming(raw, source)])
    assert time.monotonic() - started < 30  # re would backtrack for hours
    assert outcome.status == "imported"
    doc = own_archiver.index.get(sha)
    assert doc is not None and doc["tags"] == ["project/invoices"]

    [failure] = _listed(own)
    assert (failure.sha256, failure.rule, failure.rule_version, failure.task) == (
        sha,
        "runaway",
        1,
        "tagging",
    )
    assert (
        failure.error == f"tagging rule 'runaway' (v1) timed out after {LIMIT:g} s on message {sha}"
    )
    assert _listed(own) == [failure]  # listing does not resolve it: the message is indexed

    preview = service.preview_rule("runaway")
    assert preview.timed_out == 1 and preview.changed == 0
    [timed_out] = preview.timeouts
    assert (timed_out.id, timed_out.rule, timed_out.version) == (sha, "runaway", 1)
    assert timed_out.subject.startswith("invoice aaa")

    service.save_rule(
        {
            "name": "runaway",
            "when": {"field": "subject", "op": "regex", "value": "a+$"},
            "actions": {"add_tags": ["project/runaway"]},
        }
    )
    assert _listed(own) == []  # the rule changed: its new version is judged afresh
    assert service.preview_rule("runaway").timed_out == 0
