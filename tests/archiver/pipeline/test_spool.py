"""Spool segments (format and group commit): pure logic, no services. The S3 side is covered by
tests/archiver/pipeline/test_reconcile.py and the SMTP tests."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from archiver.errors import SpoolCorrupt, SpoolStopped
from archiver.models import Envelope, Source, SpoolSegment
from archiver.pipeline.spool import GroupCommit, SpoolEntry, decode_segment, encode_segment


def source(rcpt: str) -> Source:
    return Source(
        kind="smtp",
        detail=rcpt,
        received_at=datetime(2026, 11, 30, tzinfo=UTC),
        envelope=Envelope(mail_from="a@example.com", rcpt_to=[rcpt]),
    )


AWKWARD = [
    b"Subject: plain\r\n\r\nbody\r\n",
    "Subject: 合同\r\n\r\n请审批\n\n\r\n".encode("gb18030"),  # 8-bit, bare newlines
    b"",  # an empty DATA is still a delivery
    b"no final newline",
    b'{"sha256": "looks like a header"}\n' * 3,
]


def test_segments_keep_every_byte_and_envelope_in_order() -> None:
    entries = [SpoolEntry(raw, source(f"r{i}@x.cn")) for i, raw in enumerate(AWKWARD)]

    decoded = decode_segment("k", encode_segment(entries))

    assert decoded == entries


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda d: d[:-5], "truncated message"),
        (lambda d: d[:-1], "truncated message"),
        (lambda d: d.replace(b"body", b"bodY"), "does not match its sha256"),
        (lambda d: b"PK" + d, "not a spool segment"),
        (lambda d: d + b"{}\n", "bad header"),
        (lambda d: d + b'{"sha256": "x"', "truncated header"),
    ],
)
def test_damaged_segments_are_refused_with_the_reason(damage, why) -> None:  # type: ignore[no-untyped-def]
    data = encode_segment([SpoolEntry(b"Subject: s\r\n\r\nbody\r\n", source("a@x.cn"))])

    with pytest.raises(SpoolCorrupt, match=why):
        decode_segment("spool/k.mvs", damage(data))


class BlockingWriter:
    """Holds the first write until released, so later deliveries pile up behind it."""

    def __init__(self, fail: bool = False) -> None:
        self.release = threading.Event()
        self.first_started = threading.Event()
        self.written: list[list[SpoolEntry]] = []
        self.fail = fail

    def __call__(self, data: bytes) -> SpoolSegment:
        self.first_started.set()
        self.release.wait(10)
        if self.fail:
            raise OSError("s3 down")
        self.written.append(decode_segment("k", data))
        return SpoolSegment(key=f"spool/{len(self.written)}.mvs")


def test_deliveries_arriving_while_a_segment_is_written_share_the_next_one() -> None:
    writer = BlockingWriter()
    commit = GroupCommit(writer, committers=1)
    first = commit.submit([SpoolEntry(b"first", source("a@x.cn"))])
    assert writer.first_started.wait(10)
    later = [commit.submit([SpoolEntry(f"m{i}".encode(), source("b@x.cn"))]) for i in range(5)]

    writer.release.set()

    assert first.result(10).key == "spool/1.mvs"
    assert {f.result(10).key for f in later} == {"spool/2.mvs"}
    assert [[e.raw for e in w] for w in writer.written] == [
        [b"first"],
        [b"m0", b"m1", b"m2", b"m3", b"m4"],
    ]
    commit.close()


def test_a_failed_write_fails_every_delivery_in_it_and_the_next_write_still_happens() -> None:
    writer = BlockingWriter(fail=True)
    commit = GroupCommit(writer, committers=1)
    first = commit.submit([SpoolEntry(b"first", source("a@x.cn"))])
    assert writer.first_started.wait(10)
    second = commit.submit([SpoolEntry(b"second", source("a@x.cn"))])

    writer.release.set()

    for future in (first, second):
        with pytest.raises(OSError, match="s3 down"):
            future.result(10)
    writer.fail = False
    assert commit.submit([SpoolEntry(b"third", source("a@x.cn"))]).result(10).key
    commit.close()


def test_segments_stop_growing_at_max_bytes() -> None:
    writer = BlockingWriter()
    commit = GroupCommit(writer, committers=1, max_bytes=2500)
    commit.submit([SpoolEntry(b"0" * 1000, source("a@x.cn"))])
    assert writer.first_started.wait(10)
    later = [
        commit.submit([SpoolEntry(bytes([65 + i]) * 1000, source("a@x.cn"))]) for i in range(5)
    ]

    writer.release.set()

    keys = [f.result(10).key for f in later]
    assert keys == ["spool/2.mvs"] * 3 + ["spool/3.mvs"] * 2
    commit.close()


def test_close_writes_what_is_waiting() -> None:
    writer = BlockingWriter()
    writer.release.set()
    commit = GroupCommit(writer, committers=2)
    futures = [commit.submit([SpoolEntry(f"m{i}".encode(), source("a@x.cn"))]) for i in range(20)]

    commit.close()

    assert all(f.done() and f.exception() is None for f in futures)
    assert sorted(e.raw for w in writer.written for e in w) == sorted(
        f"m{i}".encode() for i in range(20)
    )


def test_a_caller_cannot_cancel_a_write_and_the_committer_goes_on() -> None:
    writer = BlockingWriter()
    commit = GroupCommit(writer, committers=1)
    gone = commit.submit([SpoolEntry(b"client vanished", source("a@x.cn"))])
    assert writer.first_started.wait(10)

    assert not gone.cancel()  # what asyncio.wrap_future does when the SMTP client vanishes
    writer.release.set()

    assert gone.result(10).key == "spool/1.mvs"
    assert commit.submit([SpoolEntry(b"next", source("a@x.cn"))]).result(10).key == "spool/2.mvs"
    commit.close()


def test_an_error_outside_the_write_fails_its_deliveries_and_the_committer_goes_on() -> None:
    writer = BlockingWriter()
    writer.release.set()
    commit = GroupCommit(writer, committers=1)
    unencodable = source("a@x.cn").model_copy(update={"attributes": {"x": object()}})

    with pytest.raises(Exception, match="serializ"):
        commit.submit([SpoolEntry(b"bad source", unencodable)]).result(10)
    assert commit.submit([SpoolEntry(b"next", source("a@x.cn"))]).result(10).key
    commit.close()


class Fatal(BaseException):
    """Not an Exception: what no committer can carry on after."""


def test_a_committer_that_dies_stops_the_spool_loudly_instead_of_leaving_callers_waiting() -> None:
    writer = BlockingWriter()
    told: list[SpoolStopped] = []
    commit = GroupCommit(writer, committers=2, on_stopped=told.append)
    commit.write = lambda data: (_ for _ in ()).throw(Fatal("out of threads"))
    first = commit.submit([SpoolEntry(b"first", source("a@x.cn"))])

    with pytest.raises(SpoolStopped, match="Fatal: out of threads"):
        first.result(10)
    assert [str(e) for e in told] == ["spool stopped: a committer died of Fatal: out of threads"]
    with pytest.raises(SpoolStopped):  # at once, not after a timeout
        commit.submit([SpoolEntry(b"later", source("a@x.cn"))]).result(0)
    commit.close()  # the other committer still stops
