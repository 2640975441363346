"""The spool: where accepted mail is durable before it is filed into the archive.

An SMTP sink must not answer 250 before the message is durable, and a request to S3 per message
(let alone the three that filing one takes: lookup, bytes, sources) caps it at what the object
store answers per second. So the sink group-commits: every message that arrives while a segment
is being written goes into the next segment, one S3 object holding the raw bytes and the source
(envelope) of each. Under load segments grow and the requests per message fall; an idle sink
writes a segment per message, without waiting for company.

A segment is filed by the worker (archiver/pipeline/reconcile.py: stored under its SHA-256 like any
other message, indexed) and removed only once every message in it is filed. Until then it is the
message's durable copy, so losing the indexing task, Redis or a worker loses nothing: the
reconciler files every segment left behind.

Format: a magic line, then per message a JSON header line, its bytes, and a newline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from functools import cached_property

from archiver.errors import SpoolCorrupt, SpoolStopped
from archiver.models import Source, SpoolSegment

log = logging.getLogger(__name__)

MAGIC = b"mailvault-spool 1\n"
SPOOL_PREFIX = "spool/"


@dataclass(frozen=True)
class SpoolEntry:
    """One delivery in a segment: the exact bytes and how they arrived."""

    raw: bytes
    source: Source

    @cached_property  # asked for by the sink's log, the encoder and the filing: hashed once
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


def encode_segment(entries: list[SpoolEntry]) -> bytes:
    parts = [MAGIC]
    for entry in entries:
        header = {
            "sha256": entry.sha256,
            "size": len(entry.raw),
            "source": entry.source.model_dump(mode="json"),
        }
        parts += [json.dumps(header, ensure_ascii=False).encode(), b"\n", entry.raw, b"\n"]
    return b"".join(parts)


def decode_segment(key: str, data: bytes) -> list[SpoolEntry]:
    """The entries, each checked against its SHA-256; SpoolCorrupt when anything is off."""
    if not data.startswith(MAGIC):
        raise SpoolCorrupt(key, "not a spool segment")
    return list(_entries(key, data, len(MAGIC)))


def _entries(key: str, data: bytes, at: int) -> Iterator[SpoolEntry]:
    while at < len(data):
        end = data.find(b"\n", at)
        if end < 0:
            raise SpoolCorrupt(key, f"truncated header at byte {at}")
        try:
            header = json.loads(data[at:end])
            size, sha256 = int(header["size"]), str(header["sha256"])
            source = Source.model_validate(header["source"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SpoolCorrupt(key, f"bad header at byte {at}: {exc}") from exc
        raw = data[end + 1 : end + 1 + size]
        if len(raw) != size or data[end + 1 + size : end + 2 + size] != b"\n":
            raise SpoolCorrupt(key, f"truncated message at byte {end + 1}")
        entry = SpoolEntry(raw, source)
        if entry.sha256 != sha256:
            raise SpoolCorrupt(key, f"message at byte {end + 1} does not match its sha256")
        yield entry
        at = end + 2 + size


WriteSegment = Callable[[bytes], SpoolSegment]


@dataclass
class _Waiting:
    entries: list[SpoolEntry]
    done: Future[SpoolSegment]
    size: int


class GroupCommit:
    """Writes entries to the spool, several deliveries per segment when they arrive together.

    `committers` segments may be in flight at once; each takes everything that arrived while
    the others were busy (up to max_bytes), and what arrives within `linger` seconds of its
    first delivery: between bursts, deliveries a few milliseconds apart then share a segment
    instead of costing the object store three requests each (write, read, delete). Every
    caller's future resolves when the segment holding its entries is durable, or fails with
    the write's error.

    A caller cannot cancel its future (an SMTP client may vanish mid-write; the entries are
    written all the same), and no error stops a committer. Should one die all the same, the
    spool stops: every delivery waiting and every later one fails with SpoolStopped at once,
    and `on_stopped` is told, so the sink can exit instead of leaving MTAs waiting."""

    def __init__(
        self,
        write: WriteSegment,
        *,
        committers: int = 4,
        max_bytes: int = 32 << 20,
        linger: float = 0.0,
        on_stopped: Callable[[SpoolStopped], None] | None = None,
    ):
        self.write = write
        self.max_bytes = max_bytes
        self.linger = linger
        self.on_stopped = on_stopped
        self._stopped: SpoolStopped | None = None
        self._lock = threading.Lock()  # a submit never slips past the stop's drain
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"spool-commit-{i}", daemon=True)
            for i in range(committers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, entries: list[SpoolEntry]) -> Future[SpoolSegment]:
        done: Future[SpoolSegment] = Future()
        done.set_running_or_notify_cancel()  # from now on cancel() is refused
        size = sum(len(e.raw) for e in entries)
        with self._lock:
            if self._stopped is None:
                self._queue.put(_Waiting(entries, done, size))
                return done
        done.set_exception(self._stopped)
        return done

    def close(self) -> None:
        """Write what is waiting, then stop."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        while True:
            group: list[_Waiting] = []
            try:
                first = self._queue.get()
                if first is None:
                    return
                group.append(first)
                stop = self._gather(group)
                self._commit(group)
                if stop:
                    return
            except Exception as exc:  # a bug here must not leave deliveries waiting forever
                log.exception("spool commit failed", extra={"deliveries": len(group)})
                _fail(group, exc)
            except BaseException as exc:
                self._stop(exc, group)
                return

    def _gather(self, group: list[_Waiting]) -> bool:
        """Adds to group what is to share its segment; True when asked to stop."""
        size = sum(w.size for w in group)
        # Linger only for a delivery that found nobody waiting with it: under load the
        # queue already holds the next segment's worth, and waiting would only slow it.
        until = time.monotonic() + (self.linger if self._queue.empty() else 0.0)
        while size < self.max_bytes:
            try:
                item = self._queue.get(timeout=max(0.0, until - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                return True
            group.append(item)
            size += item.size
        return False

    def _commit(self, group: list[_Waiting]) -> None:
        try:
            data = encode_segment([e for w in group for e in w.entries])
            segment = self.write(data)
            segment.data = data
        except Exception as exc:  # every waiting delivery must hear of it (and answer 451)
            _fail(group, exc)
            return
        for waiting in group:
            waiting.done.set_result(segment)

    def _stop(self, exc: BaseException, group: list[_Waiting]) -> None:
        stopped = SpoolStopped(f"a committer died of {type(exc).__name__}: {exc}")
        log.critical("spool stopped: nothing more can be made durable", exc_info=exc)
        with self._lock:
            self._stopped = stopped
            closing = 0  # close()'s requests to stop, left for the other committers
            while not self._queue.empty():
                item = self._queue.get()
                if item is None:
                    closing += 1
                else:
                    group.append(item)
            for _ in range(closing):
                self._queue.put(None)
        _fail(group, stopped)
        if self.on_stopped is not None:
            self.on_stopped(stopped)


def _fail(group: list[_Waiting], exc: BaseException) -> None:
    for waiting in group:
        if not waiting.done.done():
            waiting.done.set_exception(exc)
