"""Rebuilding the index from S3 (`mailvault reindex`), against the real S3 and Elasticsearch: an
index of an older layout keeps answering until the rebuild, which brings the new layout, keeps
every message and what people changed on it, takes mail that arrives meanwhile, resumes where
it stopped, and never replaces the index with one that lacks a message."""

from __future__ import annotations

import copy
import io
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from archiver import bootstrap
from archiver.adapters.elastic import ElasticIndex, load_template
from archiver.models import Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.pipeline.rebuild import RebuildIncomplete, rebuild_index
from archiver.pipeline.reconcile import ReconcileSummary, index_missing
from archiver.settings import Settings, get_settings
from bench.cleanup import cleanup_throwaway, throwaway_settings
from ingest import cli

pytestmark = pytest.mark.services

HAN_FIELDS = ("subject_han", "body_han", "attachment_names_han", "attachment_han")
LAYOUT = int(load_template()["version"])


@pytest.fixture
def own(settings: Settings, backends: None) -> Iterator[Archiver]:
    """An archive of the test's own, whose index was built before index_phrases existed."""
    name = f"{settings.es_index}-rebuild-{uuid.uuid4().hex[:6]}"
    own_settings = throwaway_settings(settings, name)
    index = bootstrap.search_index(own_settings)
    index.client.indices.create(
        index=f"{name}-v7", mappings=_old_mappings(), aliases={name: {"is_write_index": True}}
    )
    bootstrap.init_backends(own_settings)
    archiver = bootstrap.archiver(own_settings)
    try:
        yield archiver
    finally:
        archiver.close()
        cleanup_throwaway(own_settings)


def _old_mappings() -> dict[str, Any]:
    mappings = copy.deepcopy(load_template()["template"]["mappings"])
    del mappings["_meta"]
    for field in HAN_FIELDS:
        del mappings["properties"][field]["index_phrases"]
    return dict(mappings)


def mail(archiver: Archiver, subject: str, body: str) -> str:
    raw = (
        f"From: a@example.com\r\nTo: b@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.com>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()
    source = Source(kind="import", detail="rebuild", received_at=datetime.now(UTC))
    outcome = archiver.ingest_many([Incoming(raw, source)])[0]
    assert outcome.status == "imported" and outcome.sha256, outcome
    return outcome.sha256


def index_of(archiver: Archiver) -> ElasticIndex:
    index = archiver.index
    assert isinstance(index, ElasticIndex)
    return index


def behind_alias(archiver: Archiver) -> list[str]:
    index = index_of(archiver)
    return sorted(index.client.indices.get_alias(name=index.alias))


def span_hits(archiver: Archiver, span: str) -> set[str]:
    archiver.index.refresh()
    query = {"match_phrase": {"body_han": span}}
    hits = archiver.index.search({"query": query, "size": 100})["hits"]["hits"]
    return {h["_id"] for h in hits}


def test_an_older_layout_answers_until_the_rebuild_brings_the_new_one(
    own: Archiver, caplog: pytest.LogCaptureFixture
) -> None:
    index = index_of(own)
    assert index.layout() == 0
    with caplog.at_level(logging.WARNING, logger="archiver.adapters.elastic"):
        index.ensure_ready()  # the template's index_phrases cannot reach the existing index
    (warning,) = [r for r in caplog.records if "layout" in r.getMessage()]
    assert warning.fix == "mailvault reindex" and "index_phrases" in warning.reason  # type: ignore[attr-defined]
    first = mail(own, "加拿大", "铁路延伸至加拿大边境")
    second = mail(own, "合同", "请审批这份合同")
    tagged = {"tags": ["legal"], "tag_events": [{"tag": "legal", "action": "add"}]}
    assert index.update_many({second: tagged}) == {second: None}
    assert span_hits(own, "伸至加拿") == {first}  # the span, across jieba's words

    summary = rebuild_index(own, index)

    assert (summary.layout_before, summary.layout) == (0, LAYOUT)
    assert summary.built.indexed == 2 and summary.built.failed == 0
    (name,) = behind_alias(own)
    assert name.startswith(f"{index.alias}-v{LAYOUT}-rebuild-")
    mapping = index.client.indices.get_mapping(index=name)[name]["mappings"]
    assert all(mapping["properties"][f]["index_phrases"] for f in HAN_FIELDS)
    assert span_hits(own, "伸至加拿") == {first} and span_hits(own, "审批") == {second}
    carried = index.get_many([first, second], ["tags", "tag_events"])
    assert carried[second]["tags"] == ["legal"]
    assert carried[second]["tag_events"] == tagged["tag_events"]
    assert not carried[first].get("tags")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="archiver.adapters.elastic"):
        index.ensure_ready()
    assert not [r for r in caplog.records if "layout" in r.getMessage()]


def test_mail_arriving_during_the_rebuild_is_in_the_new_index(own: Archiver) -> None:
    before = [mail(own, f"旧邮件 {n}", f"旧的内容{n}") for n in range(3)]
    arrived: list[str] = []

    def meanwhile(checked: int, summary: ReconcileSummary) -> None:
        if not arrived:  # into the old index, while the new one fills
            arrived.append(mail(own, "新邮件", "重建期间到达的邮件"))

    summary = rebuild_index(own, index_of(own), progress=meanwhile)

    assert summary.built.indexed + summary.caught_up.indexed == 4
    ids = {*before, *arrived}
    assert set(own.index.get_many(ids, ["id"])) == ids
    assert span_hits(own, "重建期间") == set(arrived)


def manual_event(tag: str, user: str = "alice") -> dict[str, Any]:
    by = {"kind": "manual", "user": user}
    return {"tag": tag, "action": "add", "by": by, "at": datetime.now(UTC).isoformat()}


def test_tags_changed_on_the_old_index_during_the_rebuild_reach_the_new_one(
    own: Archiver,
) -> None:
    ids = [mail(own, f"标签 {n}", f"重建时打标签{n}") for n in range(3)]
    old_index = behind_alias(own)
    tagged = ids[1]

    def meanwhile(checked: int, summary: ReconcileSummary) -> None:
        # every message is copied by now; the tag goes to the index searches still use
        event = manual_event("legal/hold")
        update = {"tags": ["legal/hold"], "tag_events": [event]}
        assert own.index.update_many({tagged: update}) == {tagged: None}

    summary = rebuild_index(own, index_of(own), progress=meanwhile)

    assert summary.retagged == 1
    docs = own.index.get_many(ids, ["tags", "tag_events"])
    assert docs[tagged]["tags"] == ["legal/hold"]
    assert [e["by"]["user"] for e in docs[tagged]["tag_events"]] == ["alice"]
    assert not docs[ids[0]].get("tags") and not docs[ids[2]].get("tags")
    index = index_of(own)
    assert not index.client.indices.exists(index=old_index)  # retired once read


def test_a_generation_replaced_but_not_retired_is_never_filled_again(own: Archiver) -> None:
    mail(own, "代", "第一代")
    rebuild_index(own, index_of(own))
    index = index_of(own)
    (first,) = behind_alias(own)
    second = index.new_generation()
    index.promote(second)  # and the process died before retiring the first

    third = index.new_generation()

    assert third.alias not in (first, second.alias)
    assert index.client.indices.exists(index=first)  # kept until it is retired


def test_an_interrupted_rebuild_takes_up_where_it_stopped(own: Archiver) -> None:
    ids = [mail(own, f"邮件 {n}", f"内容{n}") for n in range(5)]
    index = index_of(own)
    generation = index.new_generation()
    partly = index_missing(own.with_index(generation), batch_size=2)
    assert partly.indexed == 5  # (a rebuild that died now would leave this generation)
    assert index.new_generation().alias == generation.alias
    assert behind_alias(own) != [generation.alias]  # not searched until promoted

    summary = rebuild_index(own, index)

    assert summary.built.indexed == 0 and behind_alias(own) == [generation.alias]
    assert set(own.index.get_many(ids, ["id"])) == set(ids)


def test_a_new_index_that_lacks_a_message_does_not_replace_the_old(own: Archiver) -> None:
    good = mail(own, "好", "完好的邮件")
    bad = mail(own, "坏", "存储中损坏的邮件")
    store: Any = own.store
    store.client.put_object(  # the stored bytes changed behind the archive's back
        store.bucket, f"raw/{bad[:2]}/{bad[2:4]}/{bad}.eml", io.BytesIO(b"x"), 1
    )
    old = behind_alias(own)

    with pytest.raises(RebuildIncomplete, match=f"1 messages could not be indexed.*{bad}"):
        rebuild_index(own, index_of(own))

    assert behind_alias(own) == old
    assert set(own.index.get_many([good, bad], ["id"])) == {good, bad}


def test_the_cli_rebuilds_the_configured_index(
    own: Archiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [mail(own, f"命令 {n}", f"命令行重建{n}") for n in range(3)]
    index = index_of(own)
    monkeypatch.setenv("MAILVAULT_ES_INDEX", index.alias)
    monkeypatch.setenv("MAILVAULT_S3_BUCKET", index.alias)
    get_settings.cache_clear()
    try:
        assert cli.main(["reindex"]) == 0
        records = list(bootstrap.audit_log(get_settings()).records())
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr()
    assert f'"layout":{LAYOUT}' in out.out and "3 checked, 3 indexed" in out.err
    assert behind_alias(own)[0].startswith(f"{index.alias}-v{LAYOUT}-rebuild-")
    assert set(own.index.get_many(ids, ["id"])) == set(ids)
    (record,) = [r for r in records if r.details.get("command") == "reindex"]
    assert record.details["layout_before"] == 0 and record.details["layout"] == LAYOUT
