"""Reading mail files: mbox (mboxrd), Maildir, directories, streaming and bad input."""

from __future__ import annotations

import mailbox
import tracemalloc
from pathlib import Path

from ingest.files import read_paths

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
