"""`mailvault import`: reading mail files and archiving them in batches, with progress.

Inputs: .eml files, directories of them, mbox files and Maildir folders. In a directory, files that
are not mail (by content: see archiver.mime.mailbox_files) are skipped and counted, not archived.

Everything streams: an mbox is read line by line, so memory depends on the largest message, not on
the file. Unreadable inputs are reported as items with an error, never raised mid-run.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from archiver.mime.mailbox_files import SNIFF_BYTES, looks_like_mail, split_mbox, starts_mbox
from archiver.models import ImportSummary, IngestOutcome, Source
from archiver.pipeline.archiver import Archiver, Incoming

MAILDIR_INFO = re.compile(r":2,(?P<flags>[A-Za-z]*)$")
# Names that say "a message": archived even when their content does not look like mail, since
# skipping a real (damaged) message would lose evidence.
MAIL_SUFFIXES = frozenset({".eml", ".msg"})
ProgressFn = Callable[[int], None]


@dataclass
class MailItem:
    """One message read from a file, or the error that stopped it being read."""

    raw: bytes | None
    source: Source
    label: str
    error: str | None = None
    skipped: bool = False  # found in a directory, but not mail
    notes: tuple[str, ...] = ()  # doubtful mbox separators, kept inside this message


def total_bytes(paths: list[Path], *, stop_at: int | None = None) -> int:
    """The bytes of the files named and found in the folders; with stop_at, counting stops
    once the total reaches it (deciding "is this a large import" needs no walk of it all)."""
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            for root, _, files in os.walk(path):
                total += sum(_size(Path(root) / f) for f in files)
                if stop_at is not None and total >= stop_at:
                    return total
        if stop_at is not None and total >= stop_at:
            return total
    return total


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_paths(
    paths: list[Path],
    *,
    max_bytes: int,
    progress: ProgressFn | None = None,
    all_files: bool = False,
) -> Iterator[MailItem]:
    """Messages of the files and folders named. Files found in a folder that are not mail (by
    content, as notmuch decides) are yielded as skipped unless all_files; a file named on its
    own is always archived."""
    for path in paths:
        if path.is_dir():
            yield from _read_dir(path, max_bytes, progress, sniff=not all_files)
        elif path.is_file():
            yield from _read_file(path, max_bytes, progress)
        else:
            yield _failure(path, "no such file or directory")


def _read_dir(
    path: Path, max_bytes: int, progress: ProgressFn | None, *, sniff: bool
) -> Iterator[MailItem]:
    if is_maildir(path):
        yield from _read_maildir(path, max_bytes, progress)
        return
    for root, dirs, files in os.walk(path):
        dirs.sort()
        here = Path(root)
        if is_maildir(here):
            dirs[:] = [d for d in dirs if d.startswith(".")]  # Maildir++ subfolders
            yield from _read_maildir(here, max_bytes, progress, recurse=False)
            continue
        for name in sorted(files):
            if not name.startswith("."):
                yield from _read_file(here / name, max_bytes, progress, sniff=sniff)


def is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def _read_maildir(
    path: Path, max_bytes: int, progress: ProgressFn | None, *, recurse: bool = True
) -> Iterator[MailItem]:
    folders = [path]
    if recurse:
        folders += sorted(p for p in path.iterdir() if p.name.startswith(".") and is_maildir(p))
    for folder in folders:
        for sub in ("new", "cur"):
            for file in sorted((folder / sub).iterdir()):
                if not file.is_file():
                    continue
                match = MAILDIR_INFO.search(file.name)
                attributes = {
                    "folder": folder.name if folder != path else "INBOX",
                    "maildir_flags": match.group("flags") if match else "",
                }
                yield from _read_file(file, max_bytes, progress, attributes, maildir=True)


def _read_file(
    path: Path,
    max_bytes: int,
    progress: ProgressFn | None,
    attributes: dict[str, str] | None = None,
    *,
    maildir: bool = False,
    sniff: bool = False,
) -> Iterator[MailItem]:
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
            size = os.fstat(fh.fileno()).st_size
            if sniff and not _is_mail(path, head):
                if progress:
                    progress(size)
                yield MailItem(None, _source(str(path)), str(path), skipped=True)
                return
            fh.seek(0)
            if not maildir and starts_mbox(head):
                yield from _read_mbox(path, fh, max_bytes, progress)
                return
            if size > max_bytes:
                yield _failure(path, f"message of {size} bytes exceeds the limit of {max_bytes}")
                return
            raw = fh.read()
    except OSError as exc:
        yield _failure(path, f"cannot read: {exc.strerror or exc}")
        return
    if progress:
        progress(len(raw))
    if not raw.strip():
        yield _failure(path, "empty file")
        return
    yield MailItem(raw, _source(str(path), attributes=attributes), str(path))


def _is_mail(path: Path, head: bytes) -> bool:
    return path.suffix.lower() in MAIL_SUFFIXES or looks_like_mail(head)


def _read_mbox(
    path: Path, fh: BinaryIO, max_bytes: int, progress: ProgressFn | None
) -> Iterator[MailItem]:
    for entry in split_mbox(_counted(fh, progress), max_bytes=max_bytes):
        label = f"{path}#{entry.number}"
        if entry.raw is None:
            yield _failure(path, f"message exceeds the limit of {max_bytes} bytes", label)
        else:
            yield MailItem(entry.raw, _source(label, entry.received), label, notes=entry.notes)


def _counted(lines: Iterable[bytes], progress: ProgressFn | None) -> Iterator[bytes]:
    for line in lines:
        if progress:
            progress(len(line))
        yield line


def _source(
    detail: str, received: datetime | None = None, attributes: dict[str, str] | None = None
) -> Source:
    return Source(
        kind="import",
        detail=detail,
        received_at=received or datetime.now(UTC),
        attributes=attributes or {},
    )


def _failure(path: Path, error: str, label: str | None = None) -> MailItem:
    return MailItem(None, _source(str(path)), label or str(path), error)


# -- the import run (mailvault import) --------------------------------------------------

log = logging.getLogger(__name__)


def _batches(items: Iterable[MailItem], size: int) -> Iterator[list[MailItem]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def run_import(
    archiver: Archiver,
    paths: list[Path],
    *,
    batch_size: int,
    max_bytes: int,
    progress: Callable[[int], None] | None = None,
    all_files: bool = False,
    pause_refresh: bool = False,
) -> ImportSummary:
    """Archive every message of the paths. With pause_refresh (a large import), the index's
    periodic refresh is off until the run ends, however it ends; everything imported becomes
    searchable then."""
    if not pause_refresh:
        return _import(archiver, paths, batch_size, max_bytes, progress, all_files)
    archiver.index.pause_refresh()
    try:
        return _import(archiver, paths, batch_size, max_bytes, progress, all_files)
    finally:
        archiver.index.resume_refresh()


def _import(
    archiver: Archiver,
    paths: list[Path],
    batch_size: int,
    max_bytes: int,
    progress: Callable[[int], None] | None,
    all_files: bool,
) -> ImportSummary:
    summary = ImportSummary()

    def readable_batches() -> Iterator[list[Incoming]]:
        items = read_paths(paths, max_bytes=max_bytes, progress=progress, all_files=all_files)
        for batch in _batches(items, batch_size):
            for item in batch:
                if item.skipped:
                    summary.skip(item.label)
                for note in item.notes:
                    summary.note(item.label, note)
                    log.warning("doubtful mbox split", extra={"item": item.label, "note": note})
                if item.error:
                    summary.add(
                        IngestOutcome(
                            sha256=None, status="failed", label=item.label, error=item.error
                        )
                    )
            readable = [Incoming(i.raw, i.source, i.label) for i in batch if i.raw is not None]
            summary.bytes += sum(len(i.raw) for i in readable)
            yield readable

    for outcomes in archiver.ingest_stream(readable_batches()):
        for outcome in outcomes:
            summary.add(outcome)
            if outcome.status == "failed":
                log.warning("import failed", extra={"item": outcome.label, "error": outcome.error})
    return summary
