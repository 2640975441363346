"""Retention and holds against the real Elasticsearch and SeaweedFS: precedence as the index
decides it, recompute after policy changes (longer, shorter, resumed, restarted), the storage
lock refusing early deletion, disposition with tombstones and audit records, dual control, holds
gained during a run, and the release of overlapping holds."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from minio.error import S3Error

from archiver import bootstrap
from archiver.adapters.s3 import S3RawStore, S3RetentionStorage
from archiver.audit.log import AuditFilter, AuditLog
from archiver.audit.records import AuditAction
from archiver.errors import InvalidQuery, InvalidRetention
from archiver.holds.service import HoldService
from archiver.models import Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.retention.decision import instant
from archiver.retention.disposition import Disposition
from archiver.retention.recompute import RecomputeReport, recompute, status
from archiver.retention.service import RetentionService
from archiver.settings import Settings
from bench.cleanup import throwaway_archive, throwaway_settings

pytestmark = pytest.mark.services
_numbers = itertools.count()
OLD = "Mon, 3 Jun 2019 10:00:00 +0800"  # long enough ago for 1-year policies to have ended


@dataclass
class World:
    settings: Settings
    archiver: Archiver
    retention: RetentionService
    holds: HoldService
    disposition: Disposition
    audit: AuditLog

    def mail(
        self, subject: str, body: str = "", sender: str = "a@example.cn", date: str = OLD
    ) -> str:
        n = next(_numbers)
        raw = (
            f"Message-ID: <ret-{n}@example.cn>\r\nFrom: {sender}\r\nTo: b@example.cn\r\n"
            f"Subject: {subject}\r\nDate: {date}\r\n\r\n{body} {n}\r\n"
        ).encode()
        source = Source(kind="import", detail=f"{n}.eml", received_at=datetime.now(UTC))
        outcome = self.archiver.ingest_many([Incoming(raw, source)])[0]
        assert outcome.status == "imported" and outcome.sha256
        return outcome.sha256

    def doc(self, sha256: str) -> dict[str, Any]:
        found = self.retention.index.get(sha256)
        assert found is not None
        return found

    def policy(self, name: str, query: str, years: int | None, **more: Any) -> None:
        period = {"period": {"amount": years, "unit": "years"}} if years else {}
        action = "delete" if years else "keep"
        data = {"name": name, "criteria": {"query": query}, "action": action, **period, **more}
        self.retention.save_policy(data, "officer")

    def recompute(self) -> RecomputeReport:
        return recompute(self.retention)


@pytest.fixture
def world(settings: Settings, request: pytest.FixtureRequest) -> Iterator[World]:
    name = f"{settings.es_index}-ret{next(_numbers)}"
    own = throwaway_settings(settings, name).model_copy(
        update={"tagging_batch_size": 2, "retention_approval_limit": 100, "tagging_enabled": False}
    )
    with throwaway_archive(own) as archiver:
        retention = bootstrap.retention(own)
        audit = bootstrap.audit_log(own)
        yield World(
            own,
            archiver,
            retention,
            HoldService(retention),
            Disposition(retention, audit),
            audit,
        )


def test_overlapping_policies_the_longest_wins_forever_beats_all_default_for_the_rest(
    world: World,
) -> None:
    world.policy("contracts", "合同", 10)
    world.policy("finance", "财务", 3)
    world.policy("legal", "诉讼", None)  # keep forever
    both = world.mail("合同 财务 审批")
    forever = world.mail("合同 诉讼 材料")
    neither = world.mail("午饭")
    assert world.doc(both)["retention_winner"] == "contracts@v1"
    assert sorted(world.doc(both)["retention_policies"]) == ["contracts@v1", "finance@v1"]
    assert instant(world.doc(both)["retain_until"]) == datetime(2029, 6, 3, 2, tzinfo=UTC)
    assert world.doc(forever)["retention_forever"] and world.doc(forever)["retain_until"] is None
    assert world.doc(forever)["retention_winner"] == "legal@v1"
    assert world.doc(neither)["retention_winner"] == "default@v0"
    explained = world.retention.explain(both, world.retention.index)
    assert [(v.policy, v.won) for v in explained.matched] == [
        ("contracts@v1", True),
        ("finance@v1", False),
    ]
    assert explained.stored_up_to_date and not explained.default_applies


def test_new_mail_the_default_alone_decides_is_locked_by_its_own_put(world: World) -> None:
    """No policy or hold in force: the default decides new mail before it is stored, so the
    one PUT that stores a message also locks it; nothing else is sent to its object."""
    retention = world.archiver.retention
    assert isinstance(retention, RetentionService)
    storage = retention.storage
    assert isinstance(storage, S3RetentionStorage)
    raw = world.archiver.store
    assert isinstance(raw, S3RawStore)
    now = datetime.now(UTC)
    items = [
        Incoming(
            f"Message-ID: <put-lock-{n}@example.cn>\r\nDate: {OLD}\r\n\r\n第{n}封\r\n".encode(),
            Source(kind="import", detail=f"put-lock-{n}.eml", received_at=now),
        )
        for n in range(6)
    ]
    before, storage_before = raw.requests, storage._store.requests

    outcomes = world.archiver.ingest_many(items)

    assert [o.status for o in outcomes] == ["imported"] * 6
    assert raw.requests - before == 6  # one conditional PUT each, the lock on it
    assert storage._store.requests == storage_before  # no listing, no retention PUT after
    horizon = timedelta(days=world.settings.retention_lock_horizon_days)
    for outcome in outcomes:
        assert outcome.sha256
        doc = world.doc(outcome.sha256)
        in_force = storage.lock_state(outcome.sha256)
        assert in_force.mode == world.settings.retention_lock_mode
        assert instant(doc["lock_until"]) == in_force.retain_until
        assert in_force.retain_until and now + horizon <= in_force.retain_until
        assert doc["retention_winner"] == "default@v0" and doc["retention_forever"]


def test_new_mail_a_policy_decides_is_locked_once_searchable(world: World) -> None:
    """A policy in force decides by search: the PUT carries no lock, and the mail is locked
    as the policy says once it is indexed."""
    world.policy("contracts", "合同", 10)
    raw = world.archiver.store
    assert isinstance(raw, S3RawStore)
    before = raw.requests
    message = world.mail("合同 续签")
    assert raw.requests - before == 1
    assert world.retention.storage.lock_state(message).retain_until == datetime(
        2029, 6, 3, 2, tzinfo=UTC
    )
    assert instant(world.doc(message)["lock_until"]) == datetime(2029, 6, 3, 2, tzinfo=UTC)


def test_policy_criteria_mean_what_search_finds(world: World) -> None:
    """合同 in a policy covers what a search for 合同 finds: a span across jieba's words too."""
    world.policy("contracts", "合同", 10)
    span = world.mail("这是合同法律问题")  # jieba: 合同法 / 法律: the span 合同 still matches
    assert world.doc(span)["retention_winner"] == "contracts@v1"
    found = bootstrap.search_service(world.settings).search("合同").total
    assert found == 1
    with pytest.raises(InvalidQuery):
        world.policy("broken", "larger:lots", 1)


def test_a_change_that_lengthens_extends_the_lock_and_one_that_shortens_leaves_it(
    world: World,
) -> None:
    world.policy("contracts", "合同", 10)
    message = world.mail("合同")
    first_lock = world.retention.storage.lock_state(message).retain_until
    assert first_lock == datetime(2029, 6, 3, 2, tzinfo=UTC)

    world.policy("contracts", "合同", 20)
    report = world.recompute()
    assert report.changed == 1 and report.locks_extended == 1 and report.status == "done"
    assert world.doc(message)["retention_winner"] == "contracts@v2"
    assert world.retention.storage.lock_state(message).retain_until == datetime(
        2039, 6, 3, 2, tzinfo=UTC
    )

    world.policy("contracts", "合同", 1)  # ended in 2020; the storage still holds it to 2039
    world.recompute()
    assert instant(world.doc(message)["retain_until"]) == datetime(2020, 6, 3, 2, tzinfo=UTC)
    explained = world.retention.explain(message, world.retention.index)
    assert explained.storage.retain_until == datetime(2039, 6, 3, 2, tzinfo=UTC)
    assert "only ever extended" in explained.reason
    with pytest.raises(S3Error) as refused:  # nobody deletes it early, whatever the API says
        raw = world.archiver.store
        version = next(
            o.version_id
            for o in raw.client.list_objects(  # type: ignore[attr-defined]
                raw.bucket,  # type: ignore[attr-defined]
                prefix=f"raw/{message[:2]}/{message[2:4]}/{message}",
                include_version=True,
            )
        )
        raw.client.remove_object(
            raw.bucket, f"raw/{message[:2]}/{message[2:4]}/{message}.eml", version_id=version
        )  # type: ignore[attr-defined]
    assert refused.value.code == "AccessDenied"
    run = world.disposition.execute(world.disposition.plan("officer").id)
    assert (run.planned, run.deleted, run.kept_locked) == (1, 0, 1)
    assert world.retention.storage.lock_state(message).retain_until is not None


def test_disposition_purges_every_trace_and_leaves_a_tombstone_and_an_audit_record(
    world: World,
) -> None:
    world.policy("news", "newsletter", 1)
    gone = world.mail("weekly newsletter")
    kept = world.mail("合同")
    dry = world.disposition.plan("officer", dry_run=True)
    assert (dry.status, dry.planned, dry.by_policy) == ("dry_run", 1, {"news@v1": 1})
    assert world.retention.storage.lock_state(gone).retain_until is None  # already ended
    assert world.disposition.runs() == []  # a dry run is not kept

    run = world.disposition.execute(world.disposition.plan("officer").id)
    assert (run.status, run.deleted, run.failed) == ("done", 1, 0)
    raw = world.archiver.store
    assert not raw.exists(gone) and raw.exists(kept)
    assert raw.records(kept) and world.retention.index.get(gone) is None
    [tombstone] = world.retention.storage.tombstones(gone)
    assert (tombstone.run_id, tombstone.policy) == (run.id, "news@v1")
    assert tombstone.retain_until == datetime(2020, 6, 3, 2, tzinfo=UTC)
    [record] = list(world.audit.records(AuditFilter(action=AuditAction.DISPOSE)))
    assert (record.target, record.details["run"], record.details["policy"]) == (
        gone,
        run.id,
        "news@v1",
    )
    again = world.disposition.execute(run.id) if False else world.disposition.plan("officer")
    assert again.planned == 0  # repeating finds nothing more to do


def test_a_run_over_the_limit_waits_for_a_second_person(world: World) -> None:
    world.retention.options = type(world.retention.options)(
        **{**world.retention.options.__dict__, "approval_limit": 1}
    )
    world.policy("news", "newsletter", 1)
    first, second = world.mail("newsletter one"), world.mail("newsletter two")
    run = world.disposition.plan("officer")
    assert (run.status, run.planned) == ("awaiting_approval", 2)
    with pytest.raises(InvalidRetention, match="cannot run"):
        world.disposition.execute(run.id)
    with pytest.raises(InvalidRetention, match="second person"):
        world.disposition.approve(run.id, "officer")
    approved = world.disposition.approve(run.id, "counsel")
    assert (approved.status, approved.approved_by) == ("approved", "counsel")
    done = world.disposition.execute(run.id)
    assert done.deleted == 2
    assert not world.archiver.store.exists(first) and not world.archiver.store.exists(second)
    [tombstone, _] = sorted(world.retention.storage.tombstones(), key=lambda t: t.sha256 != first)
    assert tombstone.approved_by == "counsel"


def test_a_hold_gained_during_a_run_keeps_the_rest(world: World) -> None:
    world.policy("news", "newsletter", 1)
    ids = [world.mail(f"newsletter {n}", sender=f"s{n}@example.cn") for n in range(4)]
    run = world.disposition.plan("officer")
    assert run.planned == 4
    matter = world.holds.create_matter({"name": "audit 2026"}, "counsel")
    placed: list[str] = []

    def hold_after_first_batch(progress: Any) -> None:
        if not placed:  # batches are 2 messages: two are gone; hold the others now
            left = [i for i in ids if world.retention.index.get(i) is not None]
            senders = [world.doc(i)["from"][0]["address"] for i in left]
            hold = world.holds.add_hold(
                matter.id, {"name": "late", "custodians": {"addresses": senders}}, "counsel"
            )
            placed.append(hold.id)

    done = world.disposition.execute(run.id, progress=hold_after_first_batch)
    assert (done.deleted, done.kept_held) == (2, 2)
    assert sum(world.archiver.store.exists(i) for i in ids) == 2


def test_an_interrupted_run_resumes_and_deletes_each_message_once(world: World) -> None:
    world.policy("news", "newsletter", 1)
    ids = [world.mail(f"newsletter {n}") for n in range(5)]
    run = world.disposition.plan("officer")

    def crash(progress: Any) -> None:
        raise KeyboardInterrupt  # the worker dies after its first batch was recorded

    with pytest.raises(KeyboardInterrupt):
        world.disposition.execute(run.id, progress=crash)
    assert world.disposition.run(run.id).status == "running"
    done = world.disposition.execute(run.id)
    assert (done.deleted, done.status) == (5, "done")
    assert not any(world.archiver.store.exists(i) for i in ids)
    assert len(list(world.retention.storage.tombstones())) == 5
    assert len(list(world.audit.records(AuditFilter(action=AuditAction.DISPOSE)))) == 5


def test_holds_cover_archived_and_later_mail_and_release_respects_overlaps(world: World) -> None:
    world.policy("news", "newsletter", 1)
    before = world.mail("newsletter from zhang", sender="zhang@example.cn")
    matter = world.holds.create_matter(
        {"name": "张伟 v. 公司", "case_number": "2026-17"}, "counsel"
    )
    by_person = world.holds.add_hold(
        matter.id, {"name": "zhang", "custodians": {"addresses": ["Zhang@Example.cn"]}}, "counsel"
    )
    by_query = world.holds.add_hold(matter.id, {"name": "news", "query": "newsletter"}, "counsel")
    world.recompute()
    later = world.mail("another newsletter", sender="zhang@example.cn")  # checked on arrival
    for message in (before, later):
        assert sorted(world.doc(message)["holds"]) == sorted([by_person.id, by_query.id])
        assert world.retention.storage.lock_state(message).legal_hold
    counts = {c.hold: (c.held, c.matching) for c in world.holds.counts(matter.id)}
    assert counts == {by_person.id: (2, 2), by_query.id: (2, 2)}
    assert world.disposition.plan("officer", dry_run=True).planned == 0

    with pytest.raises(InvalidRetention, match="reason"):
        world.holds.release_hold(by_person.id, " ", "counsel")
    world.holds.release_hold(by_person.id, "custodian cleared", "counsel")
    world.recompute()
    assert world.doc(before)["holds"] == [by_query.id]
    assert world.retention.storage.lock_state(before).legal_hold  # the other hold remains
    with pytest.raises(InvalidRetention, match="release its holds"):
        world.holds.update_matter(matter.id, {"status": "closed"}, "counsel")
    world.holds.release_hold(by_query.id, "case settled", "counsel")
    report = world.recompute()
    assert report.holds_cleared == 2
    assert not world.retention.storage.lock_state(before).legal_hold
    assert world.holds.update_matter(matter.id, {"status": "closed"}, "counsel").status == "closed"
    run = world.disposition.execute(world.disposition.plan("officer").id)
    assert run.deleted == 2  # nothing keeps them any more


def test_recompute_resumes_after_a_crash_and_starts_over_after_a_newer_change(
    world: World,
) -> None:
    ids = [world.mail(f"合同 {n}") for n in range(5)]  # decided by the default at arrival
    world.policy("contracts", "合同", 10)
    calls: list[int] = []

    def crash(report: RecomputeReport) -> None:
        calls.append(report.scanned)
        if len(calls) == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        recompute(world.retention, progress=crash)
    interrupted = status(world.retention)
    assert interrupted is not None and interrupted.status == "running"
    assert interrupted.scanned == 2
    resumed = recompute(world.retention)
    assert resumed.resumed and resumed.status == "done" and resumed.scanned == 5
    assert {world.doc(i)["retention_winner"] for i in ids} == {"contracts@v1"}

    def change_meanwhile(report: RecomputeReport) -> None:
        if report.scanned == 2 and report.restarts == 0:
            world.policy("contracts", "合同", 12)

    world.policy("contracts", "合同", 11)
    final = recompute(world.retention, progress=change_meanwhile)
    assert final.restarts == 1 and final.generation == world.retention.state.load().generation
    assert {world.doc(i)["retention_winner"] for i in ids} == {"contracts@v3"}


def test_a_policy_dry_run_counts_by_department_and_month_and_writes_nothing(world: World) -> None:
    ids = [world.mail("午饭 安排"), world.mail("午饭", date="Tue, 2 Jul 2019 10:00:00 +0800")]
    world.mail("合同")
    generation = world.retention.state.load().generation
    preview = world.retention.preview(
        {
            "name": "lunch",
            "criteria": {"query": "午饭"},
            "period": {"amount": 2, "unit": "years"},
            "action": "delete",
        }
    )
    assert (preview.scanned, preview.matched, preview.changed) == (3, 2, 2)
    assert preview.by_month == {"2019-06": 1, "2019-07": 1}
    assert preview.by_department == {"(none)": 2}
    assert preview.shorter == 2 and preview.deletable_now == 2
    assert {s.id for s in preview.samples} == set(ids)
    assert world.retention.state.load().generation == generation
    assert all(world.doc(i)["retention_winner"] == "default@v0" for i in ids)


def test_a_tag_given_by_hand_brings_a_message_under_a_tag_policy(world: World) -> None:
    world.retention.save_policy(
        {"name": "board", "criteria": {"tags": ["project/董事会"]}, "action": "keep"}, "officer"
    )
    message = world.mail("季度总结")
    assert world.doc(message)["retention_winner"] == "default@v0"
    tagging = bootstrap.tagging(world.settings)
    tagging.change_message_tags(message, ["project/董事会"], [], "counsel")
    tally = world.retention.redecide([message])
    assert (tally.changed, tally.failed) == (1, 0)
    assert world.doc(message)["retention_winner"] == "board@v1"
    assert world.doc(message)["retention_forever"]
