"""A package part being written: a zip streamed into the exports bucket, with what it holds
noted in local work files (its items with their hashes, its files) until it is sealed; and the
keys of a package's objects in the bucket.

A part's work files and an mbox part's spool live on local disk, not in memory: a part may hold
tens of thousands of messages.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, TextIO

from archiver.exports.layout import safe_component
from archiver.exports.mbox import write_mboxrd
from archiver.exports.model import ExportItem, ExportJob, PackageFile
from archiver.exports.zipstream import PackageZip
from archiver.ports import PackageStore

# a zip entry's headers (local, descriptor, central, zip64 extras) besides its name, at most
_ENTRY_OVERHEAD = 200


def package_prefix(export_id: str) -> str:
    return f"{export_id}/"


def work_key(export_id: str, name: str) -> str:
    return f"{export_id}/work/{name}"


def part_name(job: ExportJob, number: int) -> str:
    slug = safe_component(job.request.name, max_bytes=60).replace(" ", "_")
    return f"{slug}_{job.id}_part{number:03d}.zip"


def part_key(export_id: str, number: int) -> str:
    return f"{export_id}/parts/{number:03d}.zip"


class _Tee:
    """What a part's bytes pass through on the way to the bucket: counted and hashed."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.size = 0
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.out.flush()


@dataclass
class MboxSpool:
    """Messages of an mbox part, in arrival order, until the part closes: then each folder's
    become one mbox file (a zip takes one entry at a time, and items come in id order)."""

    # the part's temporary files live until the part is sealed or aborted: release() closes them
    file: IO[bytes] = field(default_factory=lambda: tempfile.TemporaryFile())  # noqa: SIM115
    spans: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)  # folder → spans

    def add(self, item_index: int, folder: str, raw: bytes, item: ExportItem) -> int:
        start = self.file.seek(0, io.SEEK_END)
        length = write_mboxrd(self.file, raw, item.sender, item.date)
        self.spans.setdefault(folder, []).append((item_index, start, length))
        return length

    def chunks(self, spans: Sequence[tuple[int, int, int]]) -> Iterator[bytes]:
        for _, start, length in spans:
            self.file.seek(start)
            left = length
            while left:
                chunk = self.file.read(min(left, 1 << 20))
                if not chunk:
                    raise OSError("the mbox spool ended early")
                left -= len(chunk)
                yield chunk


class Part:
    """One zip part being written, with what it holds recorded in local work files."""

    def __init__(self, store: PackageStore, job: ExportJob, number: int) -> None:
        self.number = number
        self.key = part_key(job.id, number)
        store.delete_prefix(self.key)  # a crashed build's unfinished upload of this part
        self.writer = store.writer(self.key)
        self.tee = _Tee(self.writer)
        self.zip = PackageZip(self.tee, part=number)
        self.items = tempfile.TemporaryFile()  # noqa: SIM115  # JSON lines: items and md5s
        self.files = tempfile.TemporaryFile()  # noqa: SIM115  # JSON lines: PackageFile
        self.count = 0
        self.pending = 0  # bytes spooled for mbox files not yet written
        self.mbox = MboxSpool()
        # mbox items until their file is named, on disk: a part may hold a hundred thousand
        self.held = tempfile.TemporaryFile()  # noqa: SIM115  # JSON lines: index, item, md5
        self.held_count = 0
        self.sealed = False

    @property
    def messages(self) -> int:
        return self.count + self.held_count

    @property
    def used(self) -> int:
        return self.zip.bytes_written + self.pending

    def add_file(self, path: str, size: int, sha256: str) -> None:
        entry = PackageFile(path=path, size=size, sha256=sha256, part=self.number)
        self.files.write(entry.model_dump_json().encode() + b"\n")

    def add_item(self, item: ExportItem, md5: str) -> None:
        line = {"item": item.model_dump(mode="json", by_alias=True), "md5": md5}
        self.items.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
        self.count += 1

    def hold(self, index: int, item: ExportItem, md5: str) -> None:
        line = {"index": index, "item": item.model_dump(mode="json", by_alias=True), "md5": md5}
        self.held.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
        self.held_count += 1

    def add_bytes(self, path: str, data: bytes, when: datetime) -> None:
        written = self.zip.add(path, data, when)
        self.add_file(written.path, written.size, written.sha256)

    def add_text(self, path: str, when: datetime, write: Callable[[TextIO], None]) -> None:
        """A text file (UTF-8) written as a stream, by `write`."""
        with self.zip.entry(path, when) as out:
            text = io.TextIOWrapper(io.BufferedWriter(_Writable(out)), encoding="utf-8", newline="")
            write(text)
            text.flush()
        self.add_file(path, out.size, out.sha256)

    def full(self, item: ExportItem, part_size: int, part_files: int) -> bool:
        """Whether the item would take the part over its size (or file count)."""
        if not self.messages:
            return False  # a message larger than a part gets a part of its own
        names = len(item.path.encode()) + len(item.pdf_path.encode())
        pdf = 64 * 1024 if item.pdf_path else 0  # a rendering's size, roughly
        room = item.size + pdf + 2 * (_ENTRY_OVERHEAD + names)
        # the zip's central directory is held in memory until the part closes: capping the
        # files per part caps that memory, whatever the part size
        files = self.messages * (2 if item.pdf_path else 1)
        return self.used + room > part_size or files >= part_files

    def release(self) -> None:
        for local in (self.mbox.file, self.items, self.files, self.held):
            local.close()

    def abort(self) -> None:
        try:
            if not self.sealed:
                self.zip.abandon()  # nothing more reaches the upload, not even at collection
                self.writer.abort()
        finally:
            self.release()


def lines(data: Iterator[bytes]) -> Iterator[bytes]:
    """JSON lines from a stream of chunks, one line at a time."""
    rest = b""
    for chunk in data:
        rest += chunk
        *lines, rest = rest.split(b"\n")
        yield from (line for line in lines if line)
    if rest:
        yield rest


def local_lines(file: IO[bytes]) -> Iterator[bytes]:
    file.seek(0)
    for line in file:
        if line.strip():
            yield line.rstrip(b"\n")


class _Writable(io.RawIOBase):
    """A zip entry's writer seen as a raw binary stream, for a TextIOWrapper."""

    def __init__(self, out: Any) -> None:
        self.out = out

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.out.write(bytes(data))
        return len(data)
