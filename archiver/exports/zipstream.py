"""A deterministic ZIP writer that streams a package part into a PackageWriter (an S3 multipart
upload) without seeking: the same entries give the same bytes, and nothing is held in memory but
the entry being compressed.

The format is the standard library's zipfile, pinned down so a rebuild is byte-identical: every
entry is DEFLATE level 1 with a data descriptor (the sink is never seekable, so CRC and sizes
follow the data), the given date_time (never the clock), Unix "rw-r--r--" attributes and no extra
fields but zip64's. Names are UTF-8; zipfile sets the 0x800 flag for non-ASCII ones, so unzip,
7-Zip and Windows Explorer show Chinese names as written. (DEFLATE output is the same for the same
zlib; a zlib-ng build may compress differently, which changes the zip's bytes, never the files'.)
"""

from __future__ import annotations

import hashlib
import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Protocol, cast

from archiver.exports.model import PackageFile

# What a zip's MS-DOS date can hold (two-second steps).
ZIP_EARLIEST = datetime(1980, 1, 1)
ZIP_LATEST = datetime(2107, 12, 31, 23, 59, 58)
# A regular file, rw-r--r--: fixed, so the extracting machine's umask decides nothing either.
FILE_ATTR = (stat.S_IFREG | 0o644) << 16
UNIX = 3  # "made by" system; zipfile's default depends on the platform it runs on


class ZipSink(Protocol):
    """What the zip is written to: a PackageWriter, or anything with these three."""

    def write(self, data: bytes) -> int: ...

    def tell(self) -> int: ...

    def flush(self) -> None: ...


def zip_date_time(when: datetime) -> tuple[int, int, int, int, int, int]:
    """The entry timestamp of `when`: in UTC when it is aware (the zip format has no zone), and
    clamped to what the format can hold (a message claiming 1970 is stored as 1980-01-01)."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    when = min(max(when, ZIP_EARLIEST), ZIP_LATEST)
    return (when.year, when.month, when.day, when.hour, when.minute, when.second)


def check_path(path: str) -> None:
    """A relative path that extracts inside the folder it is unzipped into, on any system."""
    parts = path.split("/")
    if (
        not path
        or "\\" in path
        or "\x00" in path
        or any(p in {"", ".", ".."} for p in parts)
        or (len(parts[0]) >= 2 and parts[0][1] == ":")  # a Windows drive
    ):
        raise ValueError(f"not a safe relative path inside a package: {path!r}")


class _Counted:
    """The sink as zipfile sees it: no seek (so zipfile writes data descriptors even to a
    seekable sink, and the bytes do not depend on the sink), a count of what passed, and a
    switch that drops everything once the zip is abandoned."""

    def __init__(self, sink: ZipSink) -> None:
        self._sink = sink
        self.start = sink.tell()
        self.count = 0
        self.detached = False

    def write(self, data: bytes) -> int:
        if self.detached:
            return len(data)
        written = self._sink.write(bytes(data))
        self.count += len(data)
        return written

    def tell(self) -> int:
        return self.start + self.count

    def flush(self) -> None:
        if not self.detached:
            self._sink.flush()


class EntryWriter:
    """A file being written into the zip: every byte is hashed and counted on its way in."""

    def __init__(self, path: str, handle: IO[bytes], part: int, md5: bool) -> None:
        self.path = path
        self.size = 0
        self._handle = handle
        self._part = part
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5() if md5 else None
        self._file: PackageFile | None = None

    def write(self, data: bytes) -> int:
        if self._file is not None:
            raise ValueError(f"{self.path} is finished")
        self._sha256.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        self._handle.write(data)
        self.size += len(data)
        return len(data)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def md5(self) -> str:
        """The MD5 of the bytes (load files and review tools still ask for it); "" unless
        asked for."""
        return self._md5.hexdigest() if self._md5 is not None else ""

    @property
    def file(self) -> PackageFile:
        """The file as the manifest lists it; once the entry's block has ended."""
        if self._file is None:
            raise ValueError(f"{self.path} is still being written")
        return self._file

    def _finish(self) -> PackageFile:
        self._file = PackageFile(
            path=self.path, size=self.size, sha256=self.sha256, part=self._part
        )
        return self._file


class PackageZip:
    """One package part: add() or entry() the files in package order, then close().

    An error inside an entry's block, or abandon(), leaves the zip unfinished and writes
    nothing more to the sink: the caller aborts the sink (an unfinished zip is never an object).
    """

    def __init__(self, sink: ZipSink, *, part: int = 1, level: int = 1) -> None:
        self.part = part
        self.files: list[PackageFile] = []  # what this part holds, in order
        self._out = _Counted(sink)
        self._level = level
        self._zip = zipfile.ZipFile(
            cast(IO[bytes], self._out), "w", zipfile.ZIP_DEFLATED, allowZip64=True
        )
        self._paths: set[str] = set()
        self._state = "open"

    @property
    def bytes_written(self) -> int:
        """Bytes of the zip so far (headers and compressed data) as sent to the sink: exact
        between entries; within one, the compressor may still hold up to some tens of KB."""
        return self._out.count

    def add(self, path: str, data: bytes, date_time: datetime) -> PackageFile:
        with self.entry(path, date_time, len(data)) as out:
            out.write(data)
        return out.file

    @contextmanager
    def entry(
        self, path: str, date_time: datetime, size: int | None = None, *, md5: bool = False
    ) -> Iterator[EntryWriter]:
        """A file written in pieces. `size`, when known, must be what is written; unknown, the
        entry is zip64 (the local header cannot be rewritten on a stream, so it must announce
        zip64 before the data whose size it would need)."""
        if self._state != "open":
            raise ValueError(f"the zip of part {self.part} is {self._state}")
        check_path(path)
        if path in self._paths:
            raise ValueError(f"{path} is in the package already")
        info = zipfile.ZipInfo(path, zip_date_time(date_time))
        info.compress_type = zipfile.ZIP_DEFLATED
        info._compresslevel = self._level  # type: ignore[attr-defined]  # zipfile has no API
        info.create_system = UNIX
        info.external_attr = FILE_ATTR
        info.file_size = size or 0  # zipfile decides zip64 for a known size from this
        handle = self._zip.open(info, "w", force_zip64=size is None)
        writer = EntryWriter(path, handle, self.part, md5)
        try:
            yield writer
            handle.close()  # the compressor's tail and the data descriptor
            if size is not None and writer.size != size:
                raise ValueError(f"{path}: {writer.size} bytes written, {size} announced")
        except BaseException:
            self.abandon()
            handle.close()  # into the detached sink: frees zipfile's write handle, sends nothing
            raise
        self._paths.add(path)
        self.files.append(writer._finish())

    def close(self) -> int:
        """Write the central directory; the zip's size. The sink stays open (the caller closes
        it, which is when the part exists)."""
        if self._state != "open":
            raise ValueError(f"the zip of part {self.part} is {self._state}")
        self._zip.close()
        self._state = "closed"
        return self._out.count

    def abandon(self) -> None:
        """Stop without finishing: nothing more reaches the sink, not even when zipfile closes
        itself on garbage collection."""
        if self._state == "open":
            self._state = "abandoned"
            self._out.detached = True

    def __enter__(self) -> PackageZip:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            if self._state == "open":
                self.close()
        else:
            self.abandon()
