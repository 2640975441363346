"""Import against the real services: byte-exact storage, nothing lost, duplicates recognised."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from archiver.pipeline.archiver import Archiver
from archiver.search.reading import message_view
from archiver.settings import Settings
from bench.mailgen import generate, write_mbox
from ingest.files import run_import

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
    assert parse_errors == summary.parse_errors

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
