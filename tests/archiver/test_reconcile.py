"""Pending marks and the reconciler, against the real S3 and Elasticsearch: exactly the marked
messages are indexed, marks go once indexed, a second run does nothing."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from archiver import bootstrap
from archiver.models import Envelope, Source
from archiver.pipeline import Archiver
from archiver.reconcile import (
    ORPHAN_AGE,
    accept_for_indexing,
    index_pending_many,
    reconcile,
    reconcile_all,
)
from archiver.settings import Settings
from bench.cleanup import drop_bucket

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def own(settings: Settings, backends: None) -> Iterator[Archiver]:
    """A bucket of this module's own (the session's index): no other test's marks in it, so
    counts are exact."""
    own_settings = settings.model_copy(update={"s3_bucket": f"{settings.s3_bucket}-reconcile"})
    bootstrap.raw_store(own_settings).ensure_ready()
    archiver = bootstrap.archiver(own_settings)
    yield archiver
    archiver.close()
    drop_bucket(archiver.store.client, own_settings.s3_bucket)  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def nothing_pending_before(own: Archiver) -> None:
    """Each test starts from no marks (a failing earlier test may leave some)."""
    reconcile(own)
    own.store.clear_pending(list(own.store.pending()))


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


def test_reconcile_indexes_exactly_the_marked_messages_and_clears_their_marks(
    own: Archiver,
) -> None:
    marked = [
        accept_for_indexing(own, message(f"marked-{uuid.uuid4().hex}"), smtp_source("a@x.cn"))
        for _ in range(3)
    ]
    unmarked = own.accept(message(f"unmarked-{uuid.uuid4().hex}"), smtp_source("b@x.cn"))
    assert sorted({m.sha256 for m in own.store.pending()}) == sorted(marked)

    summary = reconcile(own)

    assert (summary.pending, summary.indexed, summary.failed) == (3, 3, 0)
    for sha256 in marked:
        doc = own.index.get(sha256)
        assert doc is not None and doc["envelope_to"] == ["a@x.cn"]
    assert own.index.get(unmarked) is None  # stored, but nobody asked for it to be indexed
    assert list(own.store.pending()) == []


def test_reconcile_twice_changes_nothing(own: Archiver) -> None:
    sha256 = accept_for_indexing(own, message(f"twice-{uuid.uuid4().hex}"), smtp_source("a@x.cn"))
    first = reconcile(own)
    before = own.index.get(sha256)

    again = reconcile(own)

    assert first.indexed == 1
    assert again.model_dump() == {
        "pending": 0,
        "indexed": 0,
        "duplicates": 0,
        "failed": 0,
        "orphans": 0,
        "errors": [],
    }
    after = own.index.get(sha256)
    assert before is not None and after is not None
    assert after["sources"] == before["sources"] and len(after["sources"]) == 1


def test_a_later_delivery_of_indexed_bytes_adds_its_envelope(own: Archiver) -> None:
    raw = message(f"again-{uuid.uuid4().hex}")
    sha256 = accept_for_indexing(own, raw, smtp_source("first@x.cn"))
    reconcile(own)

    accept_for_indexing(own, raw, smtp_source("bcc@x.cn"))
    summary = reconcile(own)

    assert (summary.pending, summary.duplicates, summary.failed) == (1, 1, 0)
    doc = own.index.get(sha256)
    assert doc is not None
    assert doc["envelope_to"] == ["bcc@x.cn", "first@x.cn"]
    assert len(doc["sources"]) == 2
    assert own.store.pending_marks(sha256) == []


def test_young_marks_are_left_to_the_task(own: Archiver) -> None:
    sha256 = accept_for_indexing(own, message(f"young-{uuid.uuid4().hex}"), smtp_source("a@x.cn"))

    summary = reconcile(own, min_age=timedelta(hours=1))

    assert summary.pending == 0
    assert own.index.get(sha256) is None
    assert [m.sha256 for m in own.store.pending_marks(sha256)] == [sha256]


def test_a_mark_without_its_message_is_kept_while_young_and_dropped_when_old(
    own: Archiver,
) -> None:
    """The sink writes the mark while it writes the bytes; when the bytes fail (451) the mark
    may stay behind, pointing at nothing."""
    never_stored = hashlib.sha256(f"lost-{uuid.uuid4().hex}".encode()).hexdigest()
    own.store.mark_pending(never_stored)

    young = reconcile(own)
    assert (young.failed, young.orphans) == (0, 0)
    assert len(own.store.pending_marks(never_stored)) == 1

    old = reconcile(own, now=datetime.now(UTC) + ORPHAN_AGE + timedelta(minutes=1))
    assert (old.failed, old.orphans) == (0, 1)
    assert own.store.pending_marks(never_stored) == []


def test_index_pending_many_indexes_a_batch_and_reports_unknown_ids(own: Archiver) -> None:
    shas = [
        accept_for_indexing(own, message(f"batch-{uuid.uuid4().hex}"), smtp_source("a@x.cn"))
        for _ in range(5)
    ]
    unknown = "0" * 64

    summary = index_pending_many(own, [*shas, shas[0], unknown])

    assert (summary.pending, summary.indexed, summary.failed) == (6, 5, 1)
    assert summary.errors == [
        {"sha256": unknown, "error": f"no archived message with id {unknown}"}
    ]
    assert all(own.index.get(s) is not None for s in shas)
    assert list(own.store.pending()) == []


def test_reconcile_all_finds_stored_messages_that_were_never_marked(own: Archiver) -> None:
    sha256 = own.accept(message(f"unmarked-{uuid.uuid4().hex}"), smtp_source("c@x.cn"))
    assert own.index.get(sha256) is None

    summary = reconcile_all(own)

    assert summary.failed == 0 and summary.indexed >= 1
    doc = own.index.get(sha256)
    assert doc is not None and doc["envelope_to"] == ["c@x.cn"]
    assert reconcile_all(own).indexed == 0
