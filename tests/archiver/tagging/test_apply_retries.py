"""Two claims of apply against the real index: a message that changes between apply's read and
its write (a real Elasticsearch version conflict) is read again and written with both changes;
`mailvault rules apply NAME --restart` starts an interrupted apply over and completes it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from archiver import bootstrap
from archiver.models import Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.ports import Document, SearchIndex
from archiver.settings import Settings
from archiver.tagging.apply import Report
from archiver.tagging.service import TaggingService
from archiver.tagging.store import TaggingStore
from tests.support.mail import raw_mail
from tests.support.processes import mailvault_env, run_cli

pytestmark = pytest.mark.services
BATCH = 2
DOMAIN = "retries.example"


OWN_SETTINGS = {"name": "retries", "tagging_batch_size": BATCH}


def _ingest(archiver: Archiver, raws: list[bytes]) -> list[str]:
    source = Source(kind="import", detail="retries", received_at=datetime.now(UTC))
    outcomes = archiver.ingest_many([Incoming(r, source) for r in raws])
    assert {o.status for o in outcomes} == {"imported"}
    return [o.sha256 for o in outcomes]


def _count(index: SearchIndex, query: dict[str, Any]) -> int:
    index.refresh()
    body = {"size": 0, "query": query, "track_total_hits": True}
    return int(index.search(body)["hits"]["total"]["value"])


class ConcurrentEditor:
    """The real index, where a person tags each given message by hand just before apply first
    writes it: a real write between apply's read and its update, which Elasticsearch then
    refuses as a version conflict."""

    def __init__(self, index: SearchIndex, editor: TaggingService, ids: set[str]) -> None:
        self.index, self.editor, self.pending = index, editor, set(ids)
        self.statuses: list[dict[str, str | None]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.index, name)

    def update_many(self, updates: Mapping[str, Document]) -> dict[str, str | None]:
        for doc_id in sorted(self.pending & set(updates)):
            self.editor.change_message_tags(doc_id, ["project/reviewed"], [], "carol")
        self.pending -= set(updates)
        statuses = self.index.update_many(updates)
        self.statuses.append(dict(statuses))
        return statuses


def test_a_message_changed_between_read_and_write_is_retried_and_keeps_both_changes(
    own: Settings, own_archiver: Archiver
) -> None:
    urgent = _ingest(
        own_archiver, [raw_mail(n, f"URGENT 服务器宕机 #{n}", DOMAIN) for n in range(4)]
    )
    other = _ingest(own_archiver, [raw_mail(n, f"周报 #{n}", DOMAIN) for n in range(4, 6)])
    editor = bootstrap.tagging(own)
    index = ConcurrentEditor(editor.index, editor, set(urgent))
    service = TaggingService(index, TaggingStore(bootstrap.json_store(own)), editor.options)  # type: ignore[arg-type]
    service.save_rule(
        {
            "name": "urgent",
            "when": {"field": "subject", "op": "contains", "value": "urgent"},
            "actions": {"add_tags": ["urgency/high"]},
        }
    )
    report = service.apply_rule("urgent")

    conflicted = {i for s in index.statuses for i, status in s.items() if status == "conflict"}
    written = {i for s in index.statuses for i, status in s.items() if status is None}
    assert conflicted == written == set(urgent)  # every first write conflicted, every retry won
    assert (report.status, report.failed, report.changed, report.scanned) == ("done", 0, 4, 6)
    docs = editor.index.get_many(urgent + other, ["tags", "tag_events"])
    for doc_id in urgent:
        assert docs[doc_id]["tags"] == ["project/reviewed", "urgency/high"]
        assert [(e["tag"], e["by"]["kind"]) for e in docs[doc_id]["tag_events"]] == [
            ("project/reviewed", "manual"),
            ("urgency/high", "rule"),
        ]
    assert all(not docs[i].get("tags") for i in other)


class Interrupted(Exception):
    pass


def test_apply_restart_starts_over_from_the_beginning_and_completes(
    own: Settings, own_archiver: Archiver
) -> None:
    _ingest(own_archiver, [raw_mail(n, f"归档 #{n}", DOMAIN) for n in range(6, 10)])
    service = bootstrap.tagging(own)
    total = _count(service.index, {"match_all": {}})
    assert total >= 3 * BATCH
    service.save_rule(
        {
            "name": "everything",
            "when": {"field": "source", "op": "equals", "value": "import"},
            "actions": {"add_tags": ["project/归档"]},
        }
    )

    def stop(report: Report) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        service.apply_rule("everything", progress=stop)
    saved = service.apply_status("rule:everything:v1")
    assert saved is not None and (saved["status"], saved["batches"], saved["changed"]) == (
        "running",
        1,
        BATCH,
    )

    env = mailvault_env(
        es_index=own.es_index, s3_bucket=own.s3_bucket, tagging_batch_size=str(BATCH)
    )
    out = run_cli(env, "rules", "apply", "everything", "--restart", "--json")
    report = Report.model_validate(json.loads(out))
    # a resumed run would report resumed=True and count the first batch's changes as well
    assert (report.resumed, report.status, report.failed) == (False, "done", 0)
    assert report.scanned == total and report.batches == -(-total // BATCH)
    assert report.changed == total - BATCH  # the first batch, tagged before, changes nothing
    assert report.started_at > datetime.fromisoformat(saved["started_at"])
    assert service.apply_status("rule:everything:v1") == report.model_dump(mode="json")
    assert _count(service.index, {"term": {"tags": "project/归档"}}) == total
