"""The spool and the reconciler, against the real S3 and Elasticsearch: exactly the spooled
messages are filed and indexed, segments go once filed, a second run does nothing."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from archiver import bootstrap
from archiver.adapters.s3 import S3JsonStore
from archiver.models import Envelope, Source, SpoolSegment
from archiver.pipeline.archiver import Archiver
from archiver.pipeline.failures import FailureLog
from archiver.pipeline.reconcile import file_spooled, reconcile, reconcile_all
from archiver.pipeline.spool import SpoolEntry, encode_segment
from archiver.settings import Settings
from bench.cleanup import drop_bucket
from tests.support.smtp_sink import spool, spooled

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def own(settings: Settings, backends: None) -> Iterator[Archiver]:
    """A bucket of this module's own (the session's index): no other test's segments in it, so
    counts are exact."""
    own_settings = settings.model_copy(update={"s3_bucket": f"{settings.s3_bucket}-reconcile"})
    bootstrap.raw_store(own_settings).ensure_ready()
    archiver = bootstrap.archiver(own_settings)
    yield archiver
    archiver.close()
    drop_bucket(archiver.store.client, own_settings.s3_bucket)  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def nothing_spooled_before(own: Archiver) -> None:
    """Each test starts from an empty spool (a failing earlier test may leave segments)."""
    reconcile(own)
    own.store.drop_spool(list(own.store.spooled()))


def message(token: str) -> bytes:
    return (
        f"From: boss@example.com\r\nTo: team@example.com\r\nSubject: {token}\r\n"
        f"Message-ID: <{token}@example.com>\r\n\r\nreconcile token {token}\r\n"
    ).encode()


def smtp_source(*rcpt_to: str) -> Source:
    return Source(
        kind="smtp",
        detail=uuid.uuid4().hex[:12],
        received_at=datetime.now(UTC),
        envelope=Envelope(mail_from="boss@example.com", rcpt_to=list(rcpt_to)),
    )


def test_reconcile_files_exactly_the_spooled_messages_and_drops_their_segments(
    own: Archiver,
) -> None:
    raws = [message(f"spooled-{uuid.uuid4().hex}") for _ in range(3)]
    spool(own, (raws[0], smtp_source("a@x.cn")), (raws[1], smtp_source("a@x.cn")))
    spool(own, (raws[2], smtp_source("a@x.cn")))
    unspooled = own.accept(message(f"unspooled-{uuid.uuid4().hex}"), smtp_source("b@x.cn"))

    summary = reconcile(own)

    assert (summary.segments, summary.pending, summary.indexed, summary.failed) == (2, 3, 3, 0)
    for raw in raws:
        sha256 = hashlib.sha256(raw).hexdigest()
        assert own.store.get(sha256) == raw
        assert [
            r.source.envelope.rcpt_to for r in own.store.records(sha256) if r.source.envelope
        ] == [["a@x.cn"]]
        doc = own.index.get(sha256)
        assert doc is not None and doc["envelope_to"] == ["a@x.cn"]
    assert own.index.get(unspooled) is None  # stored, but nobody asked for it to be indexed
    assert list(own.store.spooled()) == []


def test_reconcile_twice_changes_nothing(own: Archiver) -> None:
    raw = message(f"twice-{uuid.uuid4().hex}")
    sha256 = hashlib.sha256(raw).hexdigest()
    segment = spool(own, (raw, smtp_source("a@x.cn")))
    first = reconcile(own)
    before = own.index.get(sha256)

    again = reconcile(own)
    filed_again = file_spooled(own, [segment])  # a task that arrives after the reconciler

    assert first.indexed == 1
    empty = {
        "segments": 0,
        "pending": 0,
        "indexed": 0,
        "duplicates": 0,
        "failed": 0,
        "errors": [],
    }
    assert again.model_dump() == empty
    assert filed_again.model_dump() == {**empty, "segments": 1}
    after = own.index.get(sha256)
    assert before is not None and after is not None
    assert after["sources"] == before["sources"] and len(after["sources"]) == 1


def test_a_later_delivery_of_indexed_bytes_adds_its_envelope(own: Archiver) -> None:
    raw = message(f"again-{uuid.uuid4().hex}")
    sha256 = hashlib.sha256(raw).hexdigest()
    spool(own, (raw, smtp_source("first@x.cn")))
    reconcile(own)

    spool(own, (raw, smtp_source("bcc@x.cn")))
    summary = reconcile(own)

    assert (summary.pending, summary.duplicates, summary.failed) == (1, 1, 0)
    doc = own.index.get(sha256)
    assert doc is not None
    assert doc["envelope_to"] == ["bcc@x.cn", "first@x.cn"]
    assert len(doc["sources"]) == 2
    assert len(own.store.records(sha256)) == 2


def test_same_bytes_twice_in_one_segment_keep_both_envelopes(own: Archiver) -> None:
    raw = message(f"pair-{uuid.uuid4().hex}")
    sha256 = hashlib.sha256(raw).hexdigest()
    spool(own, (raw, smtp_source("one@x.cn")), (raw, smtp_source("two@x.cn")))

    summary = reconcile(own)

    assert (summary.pending, summary.indexed, summary.failed) == (1, 1, 0)
    envelopes = [r.source.envelope for r in own.store.records(sha256)]
    assert sorted(e.rcpt_to[0] for e in envelopes if e) == ["one@x.cn", "two@x.cn"]
    doc = own.index.get(sha256)
    assert doc is not None and doc["envelope_to"] == ["one@x.cn", "two@x.cn"]


def test_young_segments_are_left_to_the_task(own: Archiver) -> None:
    raw = message(f"young-{uuid.uuid4().hex}")
    spool(own, (raw, smtp_source("a@x.cn")))

    summary = reconcile(own, min_age=timedelta(hours=1))

    assert (summary.segments, summary.pending) == (0, 0)
    sha256 = hashlib.sha256(raw).hexdigest()
    assert own.index.get(sha256) is None
    assert sha256 in spooled(own)


def test_a_corrupt_segment_is_kept_and_its_failure_recorded(own: Archiver) -> None:
    good = message(f"good-{uuid.uuid4().hex}")
    spool(own, (good, smtp_source("a@x.cn")))
    corrupt = own.store.write_spool(b"mailvault-spool 1\n{not json\n")
    failures = FailureLog(S3JsonStore(own.store))  # type: ignore[arg-type]

    summary = reconcile(own, failures=failures)

    assert (summary.segments, summary.indexed, summary.failed) == (2, 1, 1)
    assert summary.errors[0]["segment"] == corrupt.key
    assert "bad header" in summary.errors[0]["error"]
    assert [s.key for s in own.store.spooled()] == [corrupt.key]  # kept for inspection
    (recorded,) = [f for f in failures.all() if f.segment and f.segment.key == corrupt.key]
    assert recorded.task == "reconcile"
    failures.clear(recorded)


def test_reconcile_all_finds_stored_messages_that_were_never_indexed(own: Archiver) -> None:
    sha256 = own.accept(message(f"unmarked-{uuid.uuid4().hex}"), smtp_source("c@x.cn"))
    assert own.index.get(sha256) is None

    summary = reconcile_all(own)

    assert summary.failed == 0 and summary.indexed >= 1
    doc = own.index.get(sha256)
    assert doc is not None and doc["envelope_to"] == ["c@x.cn"]
    assert reconcile_all(own).indexed == 0


def test_a_segment_carrying_its_bytes_is_filed_without_reading_s3(own: Archiver) -> None:
    raw = message(f"inline-{uuid.uuid4().hex}")
    data = encode_segment([SpoolEntry(raw, smtp_source("a@x.cn"))])
    never_written = SpoolSegment(key="spool/never-written.mvs", version="none", data=data)

    summary = file_spooled(own, [never_written])

    assert (summary.indexed, summary.failed) == (1, 0)
    assert own.store.get(hashlib.sha256(raw).hexdigest()) == raw
