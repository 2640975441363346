"""Import against the real services: byte-exact storage, nothing lost, duplicates recognised."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from archiver.mime.mailbox_files import OLE_MAGIC
from archiver.pipeline.archiver import Archiver
from archiver.search.reading import message_view
from archiver.search.service import SearchService
from archiver.settings import Settings
from archiver.text.tokenizer import get_tokenizer
from bench.mailgen import generate, write_mbox
from ingest.files import run_import
from tests.conftest import ROOT
from tests.support import spam_assassin

pytestmark = pytest.mark.services


def _import(archiver: Archiver, paths: list[Path], settings: Settings):  # type: ignore[no-untyped-def]
    return run_import(archiver, paths, batch_size=64, max_bytes=settings.max_message_bytes)


def test_corpus_round_trips_byte_exact_and_nothing_is_lost(
    corpus: list[Path], archiver: Archiver, settings: Settings
) -> None:
    summary = _import(archiver, corpus, settings)
    distinct = {hashlib.sha256(p.read_bytes()).hexdigest() for p in corpus}
    assert summary.failed == 0, summary.errors
    assert summary.imported == len(distinct)
    assert summary.duplicates == len(corpus) - len(distinct)
    archiver.index.refresh()
    parse_errors = 0
    for path in corpus:
        raw = path.read_bytes()
        sha256 = hashlib.sha256(raw).hexdigest()
        assert archiver.store.get(sha256) == raw, path
        doc = archiver.index.get(sha256)
        assert doc is not None, f"{path} stored but not indexed"
        parse_errors += bool(doc.get("parse_error"))
    assert parse_errors == summary.parse_errors >= 1  # mail_outlook_1 is a .msg, not RFC 5322

    again = _import(archiver, corpus, settings)
    assert (again.imported, again.failed, again.duplicates) == (0, 0, len(corpus))


def test_same_message_id_with_different_bytes_is_kept_twice_and_related(
    archiver: Archiver, settings: Settings, tmp_path: Path
) -> None:
    first = b"Message-ID: <journal-copy@example.com>\r\nSubject: copy\r\n\r\nbody one\r\n"
    second = first.replace(b"body one", b"body two (journal copy)")
    (tmp_path / "a.eml").write_bytes(first)
    (tmp_path / "b.eml").write_bytes(second)
    summary = _import(archiver, [tmp_path], settings)
    assert (summary.imported, summary.duplicates) == (2, 0)
    a, b = (hashlib.sha256(x).hexdigest() for x in (first, second))
    archiver.index.refresh()
    assert message_view(archiver.index, a)["related_ids"] == [b]
    assert message_view(archiver.index, b)["related_ids"] == [a]


def test_duplicate_from_another_source_records_both_sources(
    archiver: Archiver, settings: Settings, tmp_path: Path
) -> None:
    raw = b"Message-ID: <two-sources@example.com>\r\nSubject: twice\r\n\r\nsame bytes\r\n"
    (tmp_path / "one.eml").write_bytes(raw)
    (tmp_path / "two.eml").write_bytes(raw)
    summary = _import(archiver, [tmp_path / "one.eml"], settings)
    summary2 = _import(archiver, [tmp_path / "two.eml"], settings)
    assert (summary.imported, summary2.duplicates) == (1, 1)
    doc = archiver.index.get(hashlib.sha256(raw).hexdigest())
    assert doc is not None
    assert sorted(s["detail"] for s in doc["sources"]) == [
        str(tmp_path / "one.eml"),
        str(tmp_path / "two.eml"),
    ]


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The real command, as a user runs it (this session's bucket and index are in the env)."""
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", "import", "--no-progress", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_cli_exits_1_when_anything_failed(tmp_path: Path) -> None:
    good = tmp_path / "good.eml"
    good.write_bytes(b"Subject: fine\r\n\r\nfine\r\n")
    done = _cli("--json", good, tmp_path / "missing.eml")
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert (result["imported"], result["failed"]) == (1, 1)
    assert result["errors"] == [
        {"message": str(tmp_path / "missing.eml"), "error": "no such file or directory"}
    ]
    again = _cli(good)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("imported 0, duplicates 1, failed 0")


def test_cli_skips_what_is_not_mail_and_says_so(tmp_path: Path) -> None:
    archived, skipped = spam_assassin.layout(tmp_path / "data")
    done = _cli("--json", tmp_path / "data")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["imported"], result["failed"]) == (len(archived), 0)
    assert (result["skipped"], sorted(result["skipped_files"])) == (len(skipped), skipped)
    human = _cli(tmp_path / "data")
    assert f"skipped {len(skipped)} files that are not mail (--all-files archives them)" in (
        human.stdout
    )
    forced = json.loads(_cli("--json", "--all-files", tmp_path / "data").stdout)
    assert (forced["imported"], forced["duplicates"], forced["skipped"]) == (
        len(skipped),
        len(archived),
        0,
    )


def test_doubtful_mbox_separator_is_reported_not_silent(tmp_path: Path) -> None:
    mbox = tmp_path / "sloppy.mbox"
    mbox.write_bytes(
        b"From a@example.cn Tue Mar  1 10:00:00 2022\nSubject: one\n\nquoted reply:\n\n"
        b"From b@example.cn Tue Mar  1 09:00:00 2022\nwrote this, unquoted by the writer\n"
    )
    done = _cli("--json", mbox)
    result = json.loads(done.stdout)
    assert (result["imported"], result["doubtful_splits"]) == (1, 1), done.stdout
    assert result["notes"] == [
        {
            "message": f"{mbox}#1",
            "note": "line 6 looks like an mbox separator but has no header block after it: "
            "kept inside this message",
        }
    ]
    assert "1 doubtful mbox separators" in _cli(mbox).stdout


def test_unparseable_message_is_stored_indexed_and_found_by_has_parse_error(
    archiver: Archiver, settings: Settings, tmp_path: Path
) -> None:
    # The parser does not read Outlook's OLE files: it records an UnsupportedFormat parse error.
    raw = OLE_MAGIC + b"\x00" * 504 + "项目合同 in an Outlook file".encode("utf-16-le")
    (tmp_path / "contract.msg").write_bytes(raw)
    summary = _import(archiver, [tmp_path], settings)
    assert (summary.imported, summary.failed, summary.parse_errors) == (1, 0, 1)
    sha256 = hashlib.sha256(raw).hexdigest()
    assert archiver.store.get(sha256) == raw
    archiver.index.refresh()
    doc = archiver.index.get(sha256)
    assert doc is not None and doc["parse_error"].startswith("UnsupportedFormat")
    found = SearchService(archiver.index, get_tokenizer()).search("has:parse_error", size=100)
    assert sha256 in {hit.id for hit in found.hits}


def test_spam_assassin_spam_folder_imports_its_messages_only(
    archiver: Archiver, settings: Settings
) -> None:
    # One folder of the corpus (its two odd "From " lines included) keeps the test to seconds;
    # tests/ingest/test_files.py reads the whole corpus.
    spam = spam_assassin.corpus_data() / "spam-2"
    summary = _import(archiver, [spam], settings)
    assert summary.failed == 0, summary.errors[:5]
    assert summary.imported + summary.duplicates == len(list(spam.glob("*.txt")))
    assert (summary.skipped, summary.doubtful_splits) == (len(list(spam.glob("*.json"))), 0)
    for odd in spam.glob("0013[56].*.txt"):
        # The odd "From " line is the envelope, and the last blank line the mbox's.
        message = odd.read_bytes().partition(b"\n")[2][:-1]
        assert archiver.store.get(hashlib.sha256(message).hexdigest()) == message


def test_cli_imports_an_mbox_and_prints_a_json_summary(tmp_path: Path) -> None:
    mbox = tmp_path / "generated.mbox"
    messages = list(generate(120, seed=2024))
    write_mbox(mbox, messages)
    (tmp_path / "garbage.eml").write_bytes(b"\x00\xff not mail at all \xfe" * 10)

    def run() -> dict[str, object]:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ingest.cli",
                "import",
                "--json",
                str(mbox),
                str(tmp_path / "garbage.eml"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, object] = json.loads(done.stdout)
        return result

    first = run()
    assert first["imported"] == 121 and first["failed"] == 0 and first["errors"] == []
    second = run()
    assert (second["imported"], second["duplicates"], second["failed"]) == (0, 121, 0)
