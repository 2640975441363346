"""Walking the audit chain from S3 and naming every way it was tampered with.

The record objects can be rewritten by anyone with write access to the bucket; the sealed
segments cannot (Object Lock), short of COMPLIANCE-less bypass rights. So verification checks
the records against their own chain (hashes, sequence numbers, links) and against the sealed
copies, and reports each finding with the sequence numbers involved.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ValidationError

from archiver.audit.records import GENESIS, AuditAction, AuditRecord
from archiver.ports import AuditStore
from archiver.read_ahead import read_ahead

# One GET per record: fetched on threads, or a log of 50,000 records takes minutes to walk
_READ_THREADS = 16
_READ_AHEAD = 256


class IssueKind(StrEnum):
    CHANGED = "changed"  # a record's content no longer hashes to its hash, or it was replaced
    REMOVED = "removed"  # a sequence number missing (a gap, or the head cut off)
    REORDERED = "reordered"  # records stored under each other's numbers
    INSERTED = "inserted"  # a record that is not part of the chain
    UNREADABLE = "unreadable"  # not a record at all
    SEGMENT_MISSING = "segment_missing"  # a seal record whose segment is gone
    SEGMENT_DIFFERS = "segment_differs"  # the sealed copy and the record objects disagree
    SEGMENT_UNEXPECTED = "segment_unexpected"  # a segment no seal record names


class Issue(BaseModel):
    kind: IssueKind
    seqs: list[int]
    detail: str


class VerifyReport(BaseModel):
    records: int
    segments: int
    head: int
    issues: list[Issue]

    @property
    def ok(self) -> bool:
        return not self.issues

    def kinds(self) -> set[IssueKind]:
        return {i.kind for i in self.issues}


@dataclass(frozen=True)
class _Entry:
    key: int  # the sequence number the object is stored under
    record: AuditRecord
    raw: bytes


def read_records(store: AuditStore, seqs: Iterable[int]) -> Iterator[tuple[int, bytes | None]]:
    """(seq, stored bytes or None) in the order given, read ahead on threads."""
    # records are small: the number read ahead bounds what is held
    return read_ahead(seqs, store.get_record, threads=_READ_THREADS, max_items=_READ_AHEAD)


def verify_log(store: AuditStore) -> VerifyReport:
    issues: list[Issue] = []
    entries: list[_Entry] = []
    for key, raw in read_records(store, store.record_seqs()):
        if raw is None:
            continue  # removed while listing: the gap check names it
        try:
            record = AuditRecord.model_validate_json(raw)
        except ValidationError as exc:
            issues.append(Issue(kind=IssueKind.UNREADABLE, seqs=[key], detail=str(exc)[:200]))
            continue
        if record.computed_hash() != record.hash:
            issues.append(
                Issue(
                    kind=IssueKind.CHANGED,
                    seqs=[key],
                    detail=f"record {key} does not hash to its recorded hash",
                )
            )
        entries.append(_Entry(key, record, raw))

    chain, chain_issues = _walk(entries)
    issues += chain_issues
    issues += _check_placement(entries, inserted=any(i.kind == "inserted" for i in chain_issues))

    last = chain[-1].record.seq if chain else 0
    hint = store.get_head()
    if hint and int(hint.get("seq", 0)) > last:
        head = int(hint["seq"])
        issues.append(
            Issue(
                kind=IssueKind.REMOVED,
                seqs=list(range(last + 1, head + 1)),
                detail=f"the log ends at {last} but reached {head}",
            )
        )

    segment_issues, segments = _check_segments(store, chain)
    issues += segment_issues
    return VerifyReport(records=len(entries), segments=segments, head=last, issues=issues)


def _walk(entries: list[_Entry]) -> tuple[list[_Entry], list[Issue]]:
    """The chain in sequence order; gaps, broken links and duplicate numbers."""
    issues: list[Issue] = []
    ordered = sorted(entries, key=lambda e: (e.record.seq, e.key))
    chain: list[_Entry] = []
    for i, entry in enumerate(ordered):
        record = entry.record
        prev = chain[-1] if chain else None
        if prev is not None and record.seq == prev.record.seq:
            # two records claim one number: the genuine one is what the next record links to
            following = ordered[i + 1] if i + 1 < len(ordered) else None
            if following is not None and following.record.prev_hash == record.hash:
                chain[-1], fake = entry, prev
            else:
                fake = entry
            issues.append(
                Issue(
                    kind=IssueKind.INSERTED,
                    seqs=[record.seq],
                    detail=f"the record stored as {fake.key} claims number {record.seq},"
                    " which another record holds, and nothing links to it",
                )
            )
            continue
        expected = prev.record.seq + 1 if prev else 1
        expected_prev = prev.record.hash if prev else GENESIS
        if record.seq > expected:
            issues.append(
                Issue(
                    kind=IssueKind.REMOVED,
                    seqs=list(range(expected, record.seq)),
                    detail=f"records {expected}..{record.seq - 1} are missing",
                )
            )
        elif record.prev_hash != expected_prev:
            replaced = prev.record.seq if prev else record.seq
            issues.append(
                Issue(
                    kind=IssueKind.CHANGED,
                    seqs=[replaced],
                    detail=f"record {record.seq} links to another predecessor than the stored"
                    f" record {replaced}: that record was replaced",
                )
            )
        chain.append(entry)
    return chain, issues


def _check_placement(entries: list[_Entry], *, inserted: bool) -> list[Issue]:
    misplaced = [(e.key, e.record.seq) for e in entries if e.key != e.record.seq]
    if not misplaced:
        return []
    keys = {k for k, _ in misplaced}
    if inserted and keys != {s for _, s in misplaced}:
        return []  # the records after an insertion moved up one: reported as the insertion
    return [
        Issue(
            kind=IssueKind.REORDERED,
            seqs=sorted(keys),
            detail="records stored under other numbers: "
            + ", ".join(f"{s} at {k}" for k, s in misplaced),
        )
    ]


def _check_segments(store: AuditStore, chain: list[_Entry]) -> tuple[list[Issue], int]:
    issues: list[Issue] = []
    by_seq = {e.record.seq: e for e in chain}
    expected = {
        (int(e.record.details.get("first", 0)), e.record.seq)
        for e in chain
        if e.record.action == AuditAction.AUDIT_SEAL
    }
    present = set(store.segments())
    unmatched = [
        (expected - present, IssueKind.SEGMENT_MISSING, "named by a seal record, is missing"),
        (present - expected, IssueKind.SEGMENT_UNEXPECTED, "is named by no seal record"),
    ]
    for ranges, kind, what in unmatched:
        issues += [
            Issue(kind=kind, seqs=list(range(lo, hi + 1)), detail=f"segment {lo}..{hi} {what}")
            for lo, hi in sorted(ranges)
        ]
    for first, last in sorted(present & expected):
        data = store.get_segment(first, last)
        differing = _segment_differences(data or b"", first, last, by_seq)
        if differing:
            issues.append(
                Issue(
                    kind=IssueKind.SEGMENT_DIFFERS,
                    seqs=differing,
                    detail=f"segment {first}..{last} and the stored records differ",
                )
            )
    return issues, len(present)


def _segment_differences(
    data: bytes, first: int, last: int, by_seq: dict[int, _Entry]
) -> list[int]:
    """Sequence numbers whose sealed copy is absent, altered or differs from the record."""
    sealed: dict[int, AuditRecord] = {}
    last_hash = None
    for line in data.splitlines():
        try:
            value = json.loads(line)
            if "segment" in value:
                last_hash = value["segment"].get("last_hash")
                continue
            record = AuditRecord.model_validate(value)
        except (ValueError, ValidationError, AttributeError):
            continue  # an altered line: its number shows up as absent below
        if record.computed_hash() == record.hash:
            sealed[record.seq] = record
    differing = []
    for seq in range(first, last + 1):
        copy, entry = sealed.get(seq), by_seq.get(seq)
        if copy is None or entry is None or copy != entry.record:
            differing.append(seq)
    tail = sealed.get(last)
    if (tail is None or tail.hash != last_hash) and last not in differing:
        differing.append(last)
    return differing
