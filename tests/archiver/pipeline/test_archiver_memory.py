"""The Archiver's guarantees on in-memory fakes: nothing is indexed that is not stored, the same
bytes are one object with every source, and a message that cannot be parsed is still kept and
findable. tests/archiver/pipeline/test_archiver.py and tests/ingest/ run it on the real services."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from archiver.models import Envelope, Source
from archiver.pipeline.archiver import Incoming
from archiver.ports import Document
from tests.support.fakes import InMemorySearchIndex, memory_archive

WHEN = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)
# An Outlook .msg (OLE compound file) saved where a message was expected
OUTLOOK_MSG = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 4


def mail(n: int) -> bytes:
    return (
        f"Message-ID: <m{n}@example.com>\r\nFrom: a@example.com\r\nTo: b@example.com\r\n"
        f"Subject: 第{n}号合同\r\nDate: Mon, 06 May 2024 09:00:00 +0800\r\n\r\n正文 {n}\r\n"
    ).encode()


def smtp(queue_id: str, minutes: int = 0) -> Source:
    return Source(
        kind="smtp",
        detail=queue_id,
        received_at=WHEN + timedelta(minutes=minutes),
        envelope=Envelope(mail_from="a@example.com", rcpt_to=[f"{queue_id}@example.com"]),
    )


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def test_the_same_bytes_from_two_sources_are_one_object_with_two_records() -> None:
    with memory_archive() as a:
        first = a.archiver.ingest_many([Incoming(mail(1), smtp("Q1"), "first")])
        second = a.archiver.ingest_many([Incoming(mail(1), smtp("Q2", minutes=1), "second")])

        assert [(o.status, o.label) for o in first + second] == [
            ("imported", "first"),
            ("duplicate", "second"),
        ]
        assert list(a.store.iter_ids()) == [sha(mail(1))] == a.index.ids()
        assert [r.source.detail for r in a.store.records(sha(mail(1)))] == ["Q1", "Q2"]
        doc = a.index.get(sha(mail(1)))
        assert doc is not None and [s["detail"] for s in doc["sources"]] == ["Q1", "Q2"]


def test_a_bcc_recipient_named_only_by_a_later_delivery_becomes_a_participant() -> None:
    with memory_archive() as a:
        a.archiver.ingest_many([Incoming(mail(1), smtp("Q1"), "first")])
        a.archiver.ingest_many([Incoming(mail(1), smtp("Q2", minutes=1), "second")])

        doc = a.index.get(sha(mail(1)))
        assert doc is not None and doc["envelope_to"] == ["q1@example.com", "q2@example.com"]
        # participant: searches and tagging rules read this field, not envelope_to
        assert {"q1@example.com", "q2@example.com"} <= set(doc["participants"])


def test_the_same_bytes_twice_in_one_batch_keep_both_sources() -> None:
    with memory_archive() as a:
        outcomes = a.archiver.ingest_many(
            [Incoming(mail(1), smtp("Q1"), "one"), Incoming(mail(1), smtp("Q2"), "two")]
        )

        assert sorted(o.status for o in outcomes) == ["duplicate", "imported"]
        assert len(a.store.records(sha(mail(1)))) == 2
        doc = a.index.get(sha(mail(1)))
        assert doc is not None and len(doc["sources"]) == 2


def test_an_unparseable_message_is_stored_byte_exact_and_indexed_with_its_parse_error() -> None:
    with memory_archive() as a:
        [outcome] = a.archiver.ingest_many([Incoming(OUTLOOK_MSG, smtp("Q1"), "outlook")])

        assert outcome.status == "imported" and outcome.parse_error is not None
        assert "Outlook" in outcome.parse_error
        assert a.store.get(sha(OUTLOOK_MSG)) == OUTLOOK_MSG
        doc = a.index.get(sha(OUTLOOK_MSG))
        assert doc is not None and doc["parse_failed"] and doc["parse_error"] == outcome.parse_error


def test_a_store_failure_fails_that_message_and_indexes_nothing_of_it() -> None:
    with memory_archive(store_threads=1) as a:
        a.store.faults.fail_next(1, only={"put"})
        outcomes = a.archiver.ingest_many(
            [Incoming(mail(1), smtp("Q1"), "lost"), Incoming(mail(2), smtp("Q2"), "kept")]
        )

        by_label = {o.label: o for o in outcomes}
        assert by_label["lost"].status == "failed" and by_label["lost"].sha256 is None
        assert "s3 unavailable" in (by_label["lost"].error or "")
        assert by_label["kept"].status == "imported"
        assert a.index.ids() == [sha(mail(2))] == list(a.store.iter_ids())

        # offered again once the store is back, it is archived like any other message
        [retried] = a.archiver.ingest_many([Incoming(mail(1), smtp("Q1"), "lost")])
        assert retried.status == "imported" and a.store.get(sha(mail(1))) == mail(1)


def test_with_the_store_down_every_message_fails_and_the_index_stays_empty() -> None:
    with memory_archive() as a:
        a.store.faults.unavailable = True
        outcomes = a.archiver.ingest_many(
            [Incoming(mail(n), smtp(f"Q{n}"), str(n)) for n in (1, 2)]
        )

        assert [o.status for o in outcomes] == ["failed", "failed"]
        assert a.index.ids() == []


def test_a_document_the_index_rejects_is_indexed_bare_with_the_reason() -> None:
    with memory_archive() as a:
        a.index.rejects = lambda doc: "mapper_parsing_exception: bad" if "body" in doc else None

        [outcome] = a.archiver.ingest_many([Incoming(mail(1), smtp("Q1"), "rejected")])

        assert outcome.status == "imported"
        doc = a.index.get(sha(mail(1)))
        assert doc is not None and doc["parse_error"].startswith("index rejected: mapper_parsing")
        assert [s["detail"] for s in doc["sources"]] == ["Q1"]  # still found by its source


def test_a_stored_message_is_indexed_again_with_every_recorded_source() -> None:
    with memory_archive() as a:
        a.store.put(mail(3), smtp("Q2", minutes=2))
        a.store.put(mail(3), smtp("Q1"))

        outcome = a.archiver.archive_stored(sha(mail(3)))

        assert outcome.status == "imported"
        doc = a.index.get(sha(mail(3)))
        assert doc is not None and [s["detail"] for s in doc["sources"]] == ["Q1", "Q2"]


class RacedIndex(InMemorySearchIndex):
    """Another worker updates each document just before this one's first update lands."""

    def __init__(self) -> None:
        super().__init__()
        self.races = 1

    def update_many(self, updates: Mapping[str, Document]) -> dict[str, str | None]:
        if self.races:
            self.races -= 1
            super().update_many({doc_id: {"tags": ["raced"]} for doc_id in updates})
        return super().update_many(updates)


def test_a_source_added_while_another_worker_updates_the_document_is_merged_on_retry() -> None:
    with memory_archive(RacedIndex()) as a:
        a.archiver.ingest_many([Incoming(mail(1), smtp("Q1"), "first")])
        [outcome] = a.archiver.ingest_many([Incoming(mail(1), smtp("Q2"), "second")])

        assert outcome.status == "duplicate" and outcome.error is None
        doc = a.index.get(sha(mail(1)))
        assert a.index.faults.calls.count("update_many") == 3  # race, conflict, retry
        assert doc is not None and doc["tags"] == ["raced"]  # the other update is not lost
        assert [s["detail"] for s in doc["sources"]] == ["Q1", "Q2"]
