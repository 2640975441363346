"""What an export request covers, read through the requester's scope.

A search export selects what the search language finds; a matter export what its active holds
cover now (their criteria as the retention uses them, each a named clause, so one walk says which
holds cover each message); an ids export the ids given that exist and are in scope. Every read
goes through a ScopedIndex: a principal exports only what it may see. Items come in id order (one
point in time), numbered in that order, each with its folder and file name in the package.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from archiver.exports.layout import (
    custodian_folder,
    custodian_of,
    hold_folder,
    message_file_name,
)
from archiver.exports.model import ExportItem, ExportRequest, ItemAttachment
from archiver.holds.model import Hold
from archiver.retention.decision import instant
from archiver.retention.evaluate import HOLD, CriteriaQueries, matches_of
from archiver.search.scoped import ScopedIndex
from archiver.search.walk import walk_hits

SELECT_FIELDS = (
    "id",
    "size",
    "from",
    "to",
    "cc",
    "bcc",
    "envelope_to",
    "subject",
    "date",
    "date_offset_minutes",
    "attachments",
    "tags",
    "arrived_at",
    "ingested_at",
)
Query = dict[str, Any]


def _display(address: Mapping[str, Any]) -> str:
    name, addr = str(address.get("name") or ""), str(address.get("address") or "")
    return f"{name} <{addr}>" if name else addr


def _displays(values: Any) -> list[str]:
    return [_display(a) for a in values or [] if isinstance(a, Mapping)]


@dataclass
class HoldGroup:
    """A hold of the matter being exported, with the addresses its custodians stand for."""

    hold: Hold
    addresses: tuple[str, ...]
    folder: str = field(init=False)

    def __post_init__(self) -> None:
        self.folder = hold_folder(self.hold.name, self.hold.id)


class Selector:
    def __init__(self, index: ScopedIndex, queries: CriteriaQueries, batch_size: int = 500) -> None:
        self.index = index
        self.queries = queries
        self.batch_size = batch_size

    def items(self, request: ExportRequest, holds: Sequence[Hold] = ()) -> Iterator[ExportItem]:
        """The request's messages as package items, numbered from 1 in id order."""
        query, groups = self._query(request, holds)
        named = [
            {"constant_score": {"filter": self.queries.hold(g.hold), "_name": HOLD + g.hold.id}}
            for g in groups
        ]
        by_id = {g.hold.id: g for g in groups}
        number = 0
        for hits in walk_hits(self.index, SELECT_FIELDS, self.batch_size, query=query, named=named):
            for hit in hits:
                number += 1
                doc = {**hit.get("_source", {}), "id": hit["_id"]}
                held = [by_id[h] for h in sorted(matches_of(hit).holds) if h in by_id]
                yield self._item(doc, number, request, held)

    def _query(
        self, request: ExportRequest, holds: Sequence[Hold]
    ) -> tuple[Query, list[HoldGroup]]:
        if request.kind == "ids":
            return {"ids": {"values": sorted(set(request.ids))}}, []
        if request.kind == "query":
            query = self.queries.query_text(request.query)
            return query or {"match_all": {}}, []
        groups = [HoldGroup(h, self._addresses(h)) for h in sorted(holds, key=lambda h: h.id)]
        if not groups:  # a matter with no active hold covers nothing
            return {"match_none": {}}, []
        covering = [self.queries.hold(g.hold) for g in groups]
        return {"bool": {"should": covering, "minimum_should_match": 1}}, groups

    def _addresses(self, hold: Hold) -> tuple[str, ...]:
        return tuple(sorted(self.queries.custodian_addresses(hold)))

    @staticmethod
    def _item(
        doc: Mapping[str, Any], number: int, request: ExportRequest, held: Sequence[HoldGroup]
    ) -> ExportItem:
        first = held[0] if held else None
        custodian = custodian_of(doc, first.addresses if first else ())
        folder = custodian_folder(custodian)
        if first is not None:
            folder = f"{first.folder}/{folder}"
        sent = instant(doc.get("date")) or instant(doc.get("arrived_at"))
        senders = doc.get("from") or []
        sender = str(senders[0].get("address") or "") if senders else ""
        subject = str(doc.get("subject") or "")
        sha256 = str(doc["id"])
        name = message_file_name(sent, sender, subject, sha256)
        item = ExportItem(
            id=sha256,
            number=number,
            size=int(doc.get("size") or 0),
            custodian=custodian,
            sender=sender,
            holds=[g.hold.id for g in held],
            folder=folder,
            path=f"{folder}/{name}" if request.format != "mbox" else "",
            pdf_path=_pdf_path(request, folder, name),
            to=_displays(doc.get("to")),
            cc=_displays(doc.get("cc")),
            bcc=_displays(doc.get("bcc")),
            envelope_to=list(doc.get("envelope_to") or []),
            subject=subject,
            date=sent,
            date_offset_minutes=doc.get("date_offset_minutes"),
            attachments=[
                ItemAttachment(
                    name=str(a.get("filename") or ""),
                    sha256=str(a.get("sha256") or ""),
                    size=int(a.get("size") or 0),
                )
                for a in doc.get("attachments") or []
                if isinstance(a, Mapping)
            ],
            tags=sorted(doc.get("tags") or []),
        )
        item.from_ = ", ".join(_displays(senders))
        return item


def _pdf_path(request: ExportRequest, folder: str, name: str) -> str:
    if not request.with_pdf:
        return ""
    stem = name.rsplit(".", 1)[0]
    # beside the native for EML packages; a tree of its own beside the mbox files
    return f"{folder}/{stem}.pdf" if request.format != "mbox" else f"pdf/{folder}/{stem}.pdf"
