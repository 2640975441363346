"""Reading mail files: mbox (mboxrd), Maildir, directories, streaming and bad input."""

from __future__ import annotations

import mailbox
import tracemalloc
from pathlib import Path

import pytest

from archiver.pipeline.archiver import Archiver
from bench.mailgen import generate, write_mbox
from ingest.files import read_paths, run_import, total_bytes
from tests.support import spam_assassin
from tests.support.fakes import InMemoryRawStore, InMemorySearchIndex

LIMIT = 50 * 1024 * 1024


def _message(n: int, body: str = "hello") -> bytes:
    return (
        f"From: a{n}@example.com\nTo: b@example.com\nSubject: 消息 {n}\n"
        f"Message-ID: <m{n}@example.com>\n\n{body}\n"
    ).encode()


def test_mbox_messages_are_split_and_unquoted(tmp_path: Path) -> None:
    mbox = tmp_path / "mail.mbox"
    mbox.write_bytes(
        b"From alice@example.com Mon Jan  1 10:00:00 2024\n"
        b"Subject: one\n\nline\n>From the start\n>>From deeper\n\n"
        b"From bob@example.com Tue Jan  2 11:00:00 2024\n"
        b"Subject: two\n\nFrom here on, a body line (no date) that is not a separator\n"
    )
    items = list(read_paths([mbox], max_bytes=LIMIT))
    assert [i.error for i in items] == [None, None]
    assert items[0].raw == b"Subject: one\n\nline\nFrom the start\n>From deeper\n"
    assert items[1].raw is not None and items[1].raw.startswith(b"Subject: two")
    assert items[0].source.received_at.isoformat() == "2024-01-01T10:00:00+00:00"
    assert items[1].label.endswith("#2")


def test_stdlib_written_mbox_reads_back_the_same_messages(tmp_path: Path) -> None:
    path = tmp_path / "std.mbox"
    box = mailbox.mbox(str(path))
    originals = [_message(i) for i in range(5)]
    for raw in originals:
        box.add(raw)
    box.flush()
    items = list(read_paths([path], max_bytes=LIMIT))
    assert [i.raw for i in items] == originals


def test_maildir_with_subfolders_and_flags(tmp_path: Path) -> None:
    box = mailbox.Maildir(str(tmp_path / "Maildir"))
    box.add(mailbox.MaildirMessage(_message(1)))
    seen = mailbox.MaildirMessage(_message(2))
    seen.set_subdir("cur")
    seen.set_flags("S")
    box.add(seen)
    box.add_folder("项目").add(mailbox.MaildirMessage(_message(3)))
    items = list(read_paths([tmp_path / "Maildir"], max_bytes=LIMIT))
    assert sorted(i.raw for i in items if i.raw) == sorted(_message(n) for n in (1, 2, 3))
    flags = {i.source.attributes["maildir_flags"] for i in items}
    assert "S" in flags
    assert {i.source.attributes["folder"] for i in items} == {"INBOX", ".项目"}


def test_bad_inputs_are_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "empty.eml").write_bytes(b"")
    (tmp_path / "big.eml").write_bytes(b"x" * 2000)
    items = list(read_paths([tmp_path, tmp_path / "missing.eml"], max_bytes=1000))
    errors = sorted((Path(i.label).name, i.error) for i in items)
    assert errors == [
        ("big.eml", "message of 2000 bytes exceeds the limit of 1000"),
        ("empty.eml", "empty file"),
        ("missing.eml", "no such file or directory"),
    ]


def test_oversized_mbox_message_is_skipped_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "mixed.mbox"
    path.write_bytes(
        b"From a Mon Jan  1 10:00:00 2024\nSubject: big\n\n" + b"y" * 5000 + b"\n\n"
        b"From b Mon Jan  1 10:00:00 2024\nSubject: small\n\nok\n"
    )
    items = list(read_paths([path], max_bytes=1000))
    assert items[0].error is not None and "exceeds the limit" in items[0].error
    assert items[1].raw == b"Subject: small\n\nok\n"


def test_mbox_is_streamed_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    path = tmp_path / "large.mbox"
    body = "正文内容 body text " * 150  # ~3 KB per message
    with path.open("wb") as fh:
        for n in range(20_000):
            fh.write(b"From x@example.com Mon Jan  1 10:00:00 2024\n")
            fh.write(_message(n, body) + b"\n")
    assert path.stat().st_size > 60 * 1024 * 1024
    tracemalloc.start()
    count = sum(1 for item in read_paths([path], max_bytes=LIMIT) if item.raw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 20_000
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes while reading a 60 MB mbox"


def test_directory_skips_what_is_not_mail_and_all_files_keeps_it(tmp_path: Path) -> None:
    archived, skipped = spam_assassin.layout(tmp_path)
    items = list(read_paths([tmp_path], max_bytes=LIMIT))
    assert sorted(i.raw for i in items if i.raw) == sorted(archived)
    assert sorted(i.label for i in items if i.skipped) == skipped
    assert all(i.error is None and not i.notes for i in items)
    odd = next(i for i in items if i.label.endswith("00135.txt#1"))
    assert odd.source.received_at.isoformat() == "2001-08-05T09:51:15+00:00"

    everything = list(read_paths([tmp_path], max_bytes=LIMIT, all_files=True))
    assert not any(i.skipped for i in everything)
    assert len([i for i in everything if i.raw]) == len(archived) + len(skipped)


def test_named_files_are_archived_whatever_they_hold(tmp_path: Path) -> None:
    data = tmp_path / "data.js"
    data.write_bytes(b"'use strict';\n")
    damaged = tmp_path / "damaged.eml"
    damaged.write_bytes(b"{not a header}\nSubject: x\n\nbody\n")
    assert [i.raw for i in read_paths([data], max_bytes=LIMIT)] == [b"'use strict';\n"]
    # In a directory, a name that says "message" is archived too: skipping it could lose mail.
    assert [i.label for i in read_paths([tmp_path], max_bytes=LIMIT) if i.raw] == [str(damaged)]


def test_single_message_with_a_from_line_is_one_message(tmp_path: Path) -> None:
    path = tmp_path / "one.txt"
    path.write_bytes(spam_assassin.ODD_FROM_LINE + b"Subject: s\n\nFrom here on\n")
    [item] = read_paths([path], max_bytes=LIMIT)
    assert (item.raw, item.label, item.error) == (
        b"Subject: s\n\nFrom here on\n",
        f"{path}#1",
        None,
    )
    text = tmp_path / "text.txt"
    text.write_bytes(b"From here on, plain text\nwith no header block.\n")
    [whole] = read_paths([text], max_bytes=LIMIT)
    assert whole.raw == text.read_bytes()


def test_rfc2822_dated_separator_is_not_glued_to_the_message_before(tmp_path: Path) -> None:
    path = tmp_path / "export.mbox"
    separators = [
        b"From li@example.cn Mon Feb 28 09:00:00 2022",
        b"From wang@example.cn Mon Feb 28 09:30:00 2022",
        b"From li@example.cn Tue Mar  1 08:00:00 2022",
        b"From zhang@example.cn  Tue, 1 Mar 2022 10:00:00 +0800",
    ]
    path.write_bytes(b"".join(s + b"\n" + _message(n) + b"\n" for n, s in enumerate(separators)))
    items = list(read_paths([path], max_bytes=LIMIT))
    assert [i.raw for i in items] == [_message(n) for n in range(4)]
    assert items[3].source.received_at.isoformat() == "2022-03-01T02:00:00+00:00"


def test_spam_assassin_corpus_reads_as_its_messages_only() -> None:
    data = spam_assassin.corpus_data()
    counts = {"mail": 0, "skipped": 0, "other": 0}
    for item in read_paths([data], max_bytes=LIMIT):
        kind = "skipped" if item.skipped else "mail" if item.raw and not item.notes else "other"
        counts[kind] += 1
        assert kind != "skipped" or Path(item.label).suffix in (".json", ".js"), item.label
    assert counts == {
        "mail": spam_assassin.MESSAGES,
        "skipped": spam_assassin.NOT_MAIL,
        "other": 0,
    }


def _memory_archiver() -> Archiver:
    return Archiver(InMemoryRawStore(), InMemorySearchIndex())


def test_a_large_import_pauses_refresh_and_resumes_it_however_it_ends(tmp_path: Path) -> None:
    mbox = tmp_path / "two.mbox"
    write_mbox(mbox, generate(2, seed=3))
    archiver = _memory_archiver()
    index = archiver.index
    assert isinstance(index, InMemorySearchIndex)
    seen: list[bool] = []
    summary = run_import(
        archiver,
        [mbox],
        batch_size=1,
        max_bytes=1 << 20,
        progress=lambda _: seen.append(index.refresh_paused),
        pause_refresh=True,
    )
    assert summary.imported == 2
    assert seen and all(seen)  # paused while reading and archiving
    assert not index.refresh_paused  # and on again after

    def boom(_: int) -> None:
        raise RuntimeError("the run dies")

    with pytest.raises(RuntimeError, match="the run dies"):
        run_import(
            archiver, [mbox], batch_size=1, max_bytes=1 << 20, progress=boom, pause_refresh=True
        )
    assert not index.refresh_paused
    # a small import leaves refresh alone
    run_import(
        archiver,
        [mbox],
        batch_size=1,
        max_bytes=1 << 20,
        progress=lambda _: seen.append(index.refresh_paused),
    )
    assert seen[-1] is False


def test_total_bytes_can_stop_once_the_threshold_is_reached(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"{i}.eml").write_bytes(b"x" * 100)
    assert total_bytes([tmp_path]) == 500
    assert 100 <= total_bytes([tmp_path], stop_at=100) <= 500
    assert total_bytes([tmp_path / "0.eml", tmp_path / "1.eml"], stop_at=100) == 100
