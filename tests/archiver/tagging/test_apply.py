"""Tagging against the real archive: new mail tagged in the pipeline, a rule change previewed then
applied to 5,000 archived messages (interrupted and resumed), the directory, topics."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from archiver import bootstrap
from archiver.models import Envelope, Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.settings import Settings
from archiver.tagging.apply import Report
from archiver.tagging.service import TaggingService
from archiver.text.fold import fold
from bench.mailgen import GeneratedMessage, generate

pytestmark = pytest.mark.services
COUNT = 5000
TAG = "project/会议纪要"


def _source(detail: str, envelope: Envelope | None = None) -> Source:
    return Source(
        kind="smtp" if envelope else "import",
        detail=detail,
        received_at=datetime.now(UTC),
        envelope=envelope,
    )


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


@pytest.fixture(scope="module")
def service(settings: Settings, backends: None) -> TaggingService:
    return bootstrap.tagging(settings)


@pytest.fixture(scope="module")
def corpus(settings: Settings, backends: None) -> Iterator[list[GeneratedMessage]]:
    """5,000 generated messages, ingested by a parallel archiver (parsing is the slow part)."""
    messages = list(generate(COUNT, seed=606, attachment_ratio=0.02))
    archiver = bootstrap.archiver(settings.model_copy(update={"import_workers": 2}), parallel=True)
    try:
        incoming = [Incoming(m.raw, _source("tagging"), str(m.index)) for m in messages]
        for start in range(0, COUNT, 1000):
            outcomes = archiver.ingest_many(incoming[start : start + 1000])
            assert {o.status for o in outcomes} <= {"imported", "duplicate"}
        archiver.index.refresh()
    finally:
        archiver.close()
    yield messages


def _tags_of(service: TaggingService, ids: list[str]) -> dict[str, set[str]]:
    docs = service.index.get_many(ids, ["tags"])
    return {i: set(docs[i].get("tags") or []) for i in ids}


def _count(service: TaggingService, tag: str) -> int:
    body = {"size": 0, "query": {"term": {"tags": tag}}, "track_total_hits": True}
    return int(service.index.search(body)["hits"]["total"]["value"])


def _meeting(m: GeneratedMessage) -> bool:
    return "会议" in fold(m.subject)  # text conditions fold traditional characters (會議)


V1 = {"field": "subject", "op": "contains", "value": "会议"}
V2 = {
    "any": [
        {"all": [V1, {"not": {"field": "sender_domain", "op": "equals", "value": "example.com"}}]},
        {"field": "subject", "op": "regex", "value": r"JIRA-\d+"},
    ]
}


def _v2(m: GeneratedMessage) -> bool:
    domain = m.from_addr.rpartition("@")[2].lower()
    return (_meeting(m) and domain != "example.com") or "JIRA-" in m.subject.upper()


class Interrupted(Exception):
    pass


def test_rule_change_previewed_then_applied_to_5000_messages(
    service: TaggingService, corpus: list[GeneratedMessage]
) -> None:
    ids = [_sha(m.raw) for m in corpus]
    rule: dict[str, Any] = {"name": "meetings", "when": V1, "actions": {"add_tags": [TAG]}}
    assert service.save_rule(rule, "lead").version == 1
    first = service.apply_rule("meetings")
    service.index.refresh()
    tags = _tags_of(service, ids)
    expected = {i for i, m in zip(ids, corpus, strict=True) if _meeting(m)}
    assert {i for i in ids if TAG in tags[i]} == expected
    assert len(expected) > 500
    assert first.gained[TAG] == _count(service, TAG)

    assert service.save_rule({**rule, "when": V2}, "lead").version == 2
    preview = service.preview_rule("meetings")
    assert preview.gained[TAG] > 50 and preview.lost[TAG] > 50
    assert len(preview.samples["lost"][TAG]) == 5
    before = _count(service, TAG)

    seen: list[Report] = []

    def stop_after_three(report: Report) -> None:
        seen.append(report.model_copy())
        if len(seen) == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        service.apply_rule("meetings", progress=stop_after_three)
    saved = service.apply_status("rule:meetings:v2")
    assert saved is not None and saved["status"] == "running" and saved["batches"] == 3
    resumed = service.apply_rule("meetings")
    service.index.refresh()

    assert resumed.resumed and resumed.status == "done" and resumed.failed == 0
    assert resumed.scanned == preview.scanned  # every message once, the first 3 batches included
    assert (resumed.changed, resumed.gained, resumed.lost) == (
        preview.changed,
        preview.gained,
        preview.lost,
    )
    assert _count(service, TAG) == before + preview.gained[TAG] - preview.lost[TAG]
    tags = _tags_of(service, ids)
    assert {i for i in ids if TAG in tags[i]} == {
        i for i, m in zip(ids, corpus, strict=True) if _v2(m)
    }

    again = service.apply_rule("meetings")
    assert (again.changed, again.gained, again.lost, again.resumed) == (0, {}, {}, False)

    lost_id = preview.samples["lost"][TAG][0].id
    events = service.message_tags(lost_id)["events"]
    assert [(e["action"], e["by"]["rule"], e["by"]["version"]) for e in events] == [
        ("add", "meetings", 1),
        ("remove", "meetings", 2),
    ]


def test_new_mail_is_tagged_before_indexing_with_provenance(
    service: TaggingService, archiver: Archiver
) -> None:
    service.save_rule(
        {
            "name": "jira",
            "when": {"field": "subject", "op": "regex", "value": r"JIRA-\d+"},
            "actions": {"set_department": "技术部"},
        },
        "lead",
    )
    service.save_rule(
        {
            "name": "partner-envelope",
            "when": {"field": "envelope_to_domain", "op": "equals", "value": "audit.example"},
            "actions": {"add_tags": ["urgency/high"]},
        },
        "lead",
    )
    raw = (
        "From: dev@corp.cn\r\nTo: team@corp.cn\r\nSubject: 请review一下JIRA-4242的patch\r\n"
        "Message-ID: <jira-4242@corp.cn>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "代码审查：供应链系统的库存模块。\r\n"
    ).encode()
    envelope = Envelope(mail_from="dev@corp.cn", rcpt_to=["team@corp.cn", "x@audit.example"])
    [outcome] = archiver.ingest_many([Incoming(raw, _source("jira", envelope))])
    assert outcome.status == "imported"
    doc = archiver.index.get(_sha(raw))
    assert doc is not None
    # (the meetings rule, when saved by the test before, takes JIRA tickets too)
    assert {"department/技术部", "urgency/high"} <= set(doc["tags"])
    assert doc["departments"] == ["技术部"]
    by = {e["tag"]: e["by"] for e in doc["tag_events"]}
    assert by["department/技术部"] == {"kind": "rule", "rule": "jira", "version": 1, "user": None}
    assert by["urgency/high"]["rule"] == "partner-envelope"
    assert "库存" in doc["topics"]


def test_directory_import_tags_by_department(
    service: TaggingService, corpus: list[GeneratedMessage]
) -> None:
    sender = corpus[0].from_addr.lower()
    csv_text = f"email,name,department,manager\n{sender},某人,市场部,boss@corp.example\n"
    imported = service.import_directory(csv_text.encode(), "csv", scope="sender", user="hr")
    preview = service.preview_directory()
    applied = service.apply_directory()
    service.index.refresh()
    assert preview.gained == applied.gained and applied.gained["department/市场部"] > 0
    expected = {_sha(m.raw) for m in corpus if m.from_addr.lower() == sender}
    tagged = _tags_of(service, [_sha(m.raw) for m in corpus])
    assert {i for i, t in tagged.items() if "department/市场部" in t} == expected
    events = service.message_tags(next(iter(expected)))["events"]
    assert {"kind": "directory", "rule": None, "version": imported.version, "user": None} in [
        e["by"] for e in events
    ]
    assert service.apply_directory().changed == 0


def test_topics_are_facetable(service: TaggingService, corpus: list[GeneratedMessage]) -> None:
    response = service.index.search(
        {"size": 0, "aggs": {"topics": {"terms": {"field": "topics", "size": 20}}}}
    )
    buckets = response["aggregations"]["topics"]["buckets"]
    assert len(buckets) == 20 and buckets[0]["doc_count"] > 50
    assert not {b["key"] for b in buckets} & {"the", "我们", "谢谢"}
