"""`mailvault import`: reading mail files and archiving them in batches, with progress.

Inputs: .eml files, directories of them, mbox files and Maildir folders.

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

from archiver.models import ImportSummary, IngestOutcome, Source
from archiver.pipeline.archiver import Archiver, Incoming

# "From sender asctime-date": the date is required, so a body line "From here on..." after a
# blank line (unquoted by a sloppy writer) does not split a message.
MBOX_FROM = re.compile(
    rb"^From \S*\s+(?P<date>(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +\w{3} +\d{1,2} +\d{1,2}:\d\d"
    rb"(?::\d\d)?.*?)\s*$"
)
MBOXRD_QUOTED = re.compile(rb"^>(>*From )")
MAILDIR_INFO = re.compile(r":2,(?P<flags>[A-Za-z]*)$")
ProgressFn = Callable[[int], None]


@dataclass
class MailItem:
    """One message read from a file, or the error that stopped it being read."""

    raw: bytes | None
    source: Source
    label: str
    error: str | None = None


def total_bytes(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            for root, _, files in os.walk(path):
                total += sum(_size(Path(root) / f) for f in files)
    return total


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_paths(
    paths: list[Path], *, max_bytes: int, progress: ProgressFn | None = None
) -> Iterator[MailItem]:
    for path in paths:
        if path.is_dir():
            yield from _read_dir(path, max_bytes, progress)
        elif path.is_file():
            yield from _read_file(path, max_bytes, progress)
        else:
            yield _failure(path, "no such file or directory")


def _read_dir(path: Path, max_bytes: int, progress: ProgressFn | None) -> Iterator[MailItem]:
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
                yield from _read_file(here / name, max_bytes, progress)


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
                yield from _read_file(file, max_bytes, progress, attributes, as_mbox=False)


def _read_file(
    path: Path,
    max_bytes: int,
    progress: ProgressFn | None,
    attributes: dict[str, str] | None = None,
    *,
    as_mbox: bool | None = None,
) -> Iterator[MailItem]:
    try:
        with path.open("rb") as fh:
            head = fh.read(5)
            fh.seek(0)
            if as_mbox or (as_mbox is None and head == b"From "):
                yield from _read_mbox(path, fh, max_bytes, progress)
                return
            size = os.fstat(fh.fileno()).st_size
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


def _read_mbox(
    path: Path, fh: BinaryIO, max_bytes: int, progress: ProgressFn | None
) -> Iterator[MailItem]:
    """mboxrd: split at "From " lines, strip one '>' from quoted ">From " lines."""
    lines: list[bytes] = []
    size = 0
    oversize = False
    number = 0
    from_line = b""
    previous_blank = True

    def finish() -> MailItem | None:
        if not from_line:
            return None
        label = f"{path}#{number}"
        received = _mbox_date(from_line)
        if oversize:
            return _failure(path, f"message exceeds the limit of {max_bytes} bytes", label)
        if lines and lines[-1] in (b"\n", b"\r\n"):
            lines.pop()  # the blank line that separates messages belongs to the mbox
        return MailItem(b"".join(lines), _source(label, received), label)

    for line in fh:
        if progress:
            progress(len(line))
        if (
            line.startswith(b"From ")
            and (previous_blank or not from_line)
            and MBOX_FROM.match(line)
        ):
            item = finish()
            if item:
                yield item
            number += 1
            from_line, lines, size, oversize = line, [], 0, False
            previous_blank = False
            continue
        previous_blank = line in (b"\n", b"\r\n")
        if oversize:
            continue
        line = MBOXRD_QUOTED.sub(rb"\1", line)
        size += len(line)
        if size > max_bytes:
            oversize, lines = True, []
            continue
        lines.append(line)
    item = finish()
    if item:
        yield item
    elif number == 0:
        yield _failure(path, "not an mbox: no 'From ' line")


def _mbox_date(from_line: bytes) -> datetime | None:
    match = MBOX_FROM.match(from_line.rstrip(b"\r\n"))
    if not match:
        return None
    words = match.group("date").decode("ascii", "replace").split()
    year = next((w for w in words[3:] if w.isdigit() and len(w) == 4), "")
    try:
        return datetime.strptime(" ".join([*words[1:4], year]), "%b %d %H:%M:%S %Y").replace(
            tzinfo=UTC
        )
    except ValueError:
        return None


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
) -> ImportSummary:
    summary = ImportSummary()

    def readable_batches() -> Iterator[list[Incoming]]:
        items = read_paths(paths, max_bytes=max_bytes, progress=progress)
        for batch in _batches(items, batch_size):
            for item in batch:
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
