"""The audit log: append (durable before it returns), seal, search, verify.

Records are appended by several API processes at once. Each takes the next sequence number by
writing its record object with If-None-Match: * (archiver/adapters/s3.py): a writer that loses
the race reads the winner's record, chains onto it and tries the next number, so the chain stays
linear and no record is lost. Every `seal_every` records (or on seal()), a seal record is
appended and the records since the previous seal are written as one segment under Object Lock
retention: a record changed later no longer matches its sealed copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from archiver.audit.records import GENESIS, AuditAction, AuditEvent, AuditRecord, Outcome
from archiver.audit.verify import VerifyReport, read_records, verify_log
from archiver.errors import BackendError, BackendUnavailable, InvalidQuery
from archiver.ports import AuditIndex, AuditStore

log = logging.getLogger(__name__)

# Appends that lose the race for a sequence number move on to the next one; this many lost races
# in a row means something is wrong (a writer flooding the log), not ordinary contention.
_MAX_ATTEMPTS = 1000
# Elasticsearch's result window: searching pages further than this is refused, exports are not
MAX_WINDOW = 10_000


@dataclass(frozen=True)
class Head:
    seq: int  # 0: empty log
    hash: str
    last_seal: int  # seq of the last seal record (0: none)

    def after(self, raw: bytes) -> Head:
        """The head once `raw` (the record after this head) is known. Only the fields chaining
        needs are read: a damaged record must not stop the log (verify reports it)."""
        try:
            fields: dict[str, Any] = json.loads(raw)
            prev = str(fields["hash"])
            seal = fields.get("action") == AuditAction.AUDIT_SEAL
        except (ValueError, KeyError, TypeError):
            prev, seal = hashlib.sha256(raw).hexdigest(), False
        return Head(self.seq + 1, prev, self.seq + 1 if seal else self.last_seal)


class AuditFilter(BaseModel):
    actor: str | None = None
    actions: list[AuditAction] = Field(default_factory=list)
    target: str | None = None
    outcome: Outcome | None = None
    since: AwareDatetime | None = None  # inclusive
    until: AwareDatetime | None = None  # exclusive

    def matches(self, record: AuditRecord) -> bool:
        return (
            (self.actor is None or record.actor == self.actor)
            and (not self.actions or record.action in self.actions)
            and (self.target is None or record.target == self.target)
            and (self.outcome is None or record.outcome == self.outcome)
            and (self.since is None or record.time >= self.since)
            and (self.until is None or record.time < self.until)
        )

    def to_es(self) -> dict[str, Any]:
        terms: list[dict[str, Any]] = []
        for field, value in (("actor", self.actor), ("target", self.target)):
            if value is not None:
                terms.append({"term": {field: value}})
        if self.outcome is not None:
            terms.append({"term": {"outcome": self.outcome.value}})
        if self.actions:
            terms.append({"terms": {"action": [a.value for a in self.actions]}})
        span: dict[str, str] = {}
        if self.since is not None:
            span["gte"] = self.since.isoformat()
        if self.until is not None:
            span["lt"] = self.until.isoformat()
        if span:
            terms.append({"range": {"time": span}})
        return {"bool": {"filter": terms}}


class AuditPage(BaseModel):
    total: int
    records: list[AuditRecord]


class AuditLog:
    def __init__(
        self,
        store: AuditStore,
        index: AuditIndex | None = None,
        *,
        seal_every: int = 1000,
        retention_days: int = 180,
        hint_every: int = 64,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.index = index
        self.seal_every = seal_every
        self.retention = timedelta(days=retention_days)
        # the head hint is written every this many records, not on each: a starting writer
        # reads at most this many records past it, and each request saves a PUT
        self.hint_every = max(1, hint_every)
        self.clock = clock
        self._head: Head | None = None
        # one append at a time per process (API threads share a log): they would only take
        # turns losing conditional writes to each other; other processes still race, safely
        self._lock = threading.RLock()

    def record(self, action: AuditAction, **fields: Any) -> AuditRecord:
        """Append a record; it is durable in S3 when this returns. Raises BackendUnavailable
        (or BackendFailed) when it cannot be written: the action being audited must then fail."""
        event = AuditEvent(action=action, **fields)
        record = self._append(lambda head: event)
        head = self._head
        if self.seal_every and head and head.seq - head.last_seal >= self.seal_every:
            try:
                self.seal()
            except BackendError as exc:
                # the record is durable: the action it audits need not fail; the next record
                # seals again, and the next seal writes a segment this one left unwritten
                log.warning("audit seal after record %s failed: %s", record.seq, exc)
        return record

    def seal(self) -> AuditRecord | None:
        """Append a seal record and write the records since the previous seal, it included, as
        one segment under retention. None when nothing was recorded since that seal."""
        head = self._current_head()
        self._repair_last_segment(head)
        if head.seq == head.last_seal:
            return None
        seal = self._append(
            lambda h: AuditEvent(action=AuditAction.AUDIT_SEAL, details={"first": h.last_seal + 1})
        )
        first = int(seal.details["first"])
        self._write_segment(first, seal)
        return seal

    def _repair_last_segment(self, head: Head) -> None:
        """A seal record whose segment was never written (the write failed, the process died
        in between) gets it now, from the records, which verify checks against the chain."""
        if not head.last_seal:
            return
        raw = self.store.get_record(head.last_seal)
        if raw is None:
            return  # verify reports the removal
        try:
            seal = AuditRecord.model_validate_json(raw)
            first = int(seal.details["first"])
        except (ValidationError, KeyError, TypeError, ValueError):
            return  # verify reports the damage
        if not self.store.has_segment(first, seal.seq):
            log.warning("audit segment %s..%s was missing: written now", first, seal.seq)
            self._write_segment(first, seal)

    def _write_segment(self, first: int, seal: AuditRecord) -> None:
        lines: list[bytes] = []
        for seq, raw in read_records(self.store, range(first, seal.seq + 1)):
            if raw is None:
                raise BackendUnavailable("s3", f"audit record {seq} vanished before sealing")
            lines.append(raw)
        trailer = {"segment": {"first": first, "last": seal.seq, "last_hash": seal.hash}}
        lines.append(json.dumps(trailer).encode())
        until = self.clock() + self.retention
        self.store.put_segment(first, seal.seq, b"\n".join(lines) + b"\n", until)

    def _current_head(self) -> Head:
        head = self._head
        if head is None:
            hint = self.store.get_head()
            head = (
                Head(int(hint["seq"]), str(hint["hash"]), int(hint["last_seal"]))
                if hint
                else Head(0, GENESIS, 0)
            )
        return self._advance(head)

    def _advance(self, head: Head) -> Head:
        """Move past records other writers appended since `head`."""
        while (raw := self.store.get_record(head.seq + 1)) is not None:
            head = head.after(raw)
        self._head = head
        return head

    def _append(self, make: Callable[[Head], AuditEvent]) -> AuditRecord:
        with self._lock:
            return self._append_locked(make)

    def _append_locked(self, make: Callable[[Head], AuditEvent]) -> AuditRecord:
        try:
            head = self._head or self._current_head()
            for _ in range(_MAX_ATTEMPTS):
                record = AuditRecord.chained(
                    make(head), seq=head.seq + 1, prev_hash=head.hash, time=self.clock()
                )
                if self.store.put_record(record.seq, record.encode()):
                    break
                head = self._advance(head)  # another writer took the number
            else:
                raise BackendUnavailable("s3", f"audit log: {_MAX_ATTEMPTS} appends lost in a row")
        except BackendError:
            self._head = None  # unknown: read it again next time
            raise
        seal = record.action == AuditAction.AUDIT_SEAL
        self._head = Head(record.seq, record.hash, record.seq if seal else head.last_seal)
        if seal or record.seq % self.hint_every == 0:
            self._save_hint(self._head)
        self._index([record])
        return record

    def _save_hint(self, head: Head) -> None:
        # a hint only (appending probes past it; a racing writer may set it back a little):
        # the record is durable already, so failing to move the hint fails nothing
        try:
            self.store.put_head({"seq": head.seq, "hash": head.hash, "last_seal": head.last_seal})
        except BackendError as exc:
            log.warning("audit head hint not saved: %s", exc)

    def _index(self, records: list[AuditRecord]) -> None:
        # the search copy may lag (reindex() rebuilds it); the record in S3 is what counts
        if self.index is None:
            return
        try:
            self.index.index_records([r.model_dump(mode="json") for r in records])
        except BackendError as exc:
            log.warning("audit records %s not indexed: %s", [r.seq for r in records], exc)

    # reading

    def records(self, filters: AuditFilter | None = None) -> Iterator[AuditRecord]:
        """The records in order, streamed: the sealed ones from their segments (one read per
        segment, from the Object Lock copy), the rest one by one. Checking that the two agree is
        verify's job."""
        sealed = 0
        for first, last in sorted(self.store.segments()):
            data = self.store.get_segment(first, last) if first == sealed + 1 else None
            if data is None:
                break  # a gap: the records themselves from here on
            for line in data.splitlines()[:-1]:  # the last line is the segment's trailer
                yield from self._matching(line, filters, f"segment {first}..{last}")
            sealed = last
        for seq in self.store.record_seqs(after=sealed):
            raw = self.store.get_record(seq)
            if raw is not None:
                yield from self._matching(raw, filters, f"record {seq}")

    @staticmethod
    def _matching(raw: bytes, filters: AuditFilter | None, where: str) -> Iterator[AuditRecord]:
        try:
            record = AuditRecord.model_validate_json(raw)
        except ValidationError:
            log.warning("audit %s unreadable (mailvault audit verify)", where)
            return
        if filters is None or filters.matches(record):
            yield record

    def search(self, filters: AuditFilter, page: int = 1, size: int = 50) -> AuditPage:
        if page * size > MAX_WINDOW:
            raise InvalidQuery(
                f"page {page} of {size} is beyond the first {MAX_WINDOW} records: narrow the "
                "filters (time range, actor, action) or export them"
            )
        if self.index is None:
            raise BackendUnavailable("elasticsearch", "no audit index configured")
        response = self.index.search(
            {
                "query": filters.to_es(),
                "sort": [{"seq": "desc"}],
                "from": (page - 1) * size,
                "size": size,
                "track_total_hits": True,
            }
        )
        hits = response["hits"]
        return AuditPage(
            total=int(hits["total"]["value"]),
            records=[AuditRecord.model_validate(h["_source"]) for h in hits["hits"]],
        )

    def reindex(self, batch_size: int = 500) -> int:
        """Rebuild the search copy from S3; returns the number of records indexed."""
        if self.index is None:
            return 0
        self.index.ensure_ready()
        batch: list[dict[str, Any]] = []
        count = 0
        for record in self.records():
            batch.append(record.model_dump(mode="json"))
            if len(batch) >= batch_size:
                self.index.index_records(batch)
                count, batch = count + len(batch), []
        self.index.index_records(batch)
        self.index.refresh()
        return count + len(batch)

    def verify(self) -> VerifyReport:
        return verify_log(self.store)
