"""Requests, jobs and the items of an evidence export."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from archiver.access.model import Scope

ExportFormat = Literal["eml", "mbox", "pdf"]  # pdf: the EML natives plus a PDF of each
ExportKind = Literal["query", "matter", "ids"]
JobStatus = Literal["queued", "selecting", "building", "done", "failed", "cancelled", "expired"]
CustodyEvent = Literal["requested", "built", "download", "cancelled", "failed", "expired"]
FINISHED: frozenset[str] = frozenset({"done", "failed", "cancelled", "expired"})


def new_export_id() -> str:
    return f"exp-{secrets.token_hex(5)}"


class ExportRequest(BaseModel):
    """What a person asks for: a search, a matter (all its active holds) or a list of ids."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: ExportKind
    query: str = Field("", max_length=4000)
    matter: str = ""
    # one Elasticsearch ids query takes them all (under its 65,536 terms limit)
    ids: tuple[str, ...] = Field((), max_length=50_000)
    format: ExportFormat = "eml"
    pdf: bool = False  # PDF renderings beside the natives (always with format "pdf")
    load_file: bool = False  # an EDRM-style DAT load file beside metadata.csv

    @model_validator(mode="after")
    def _names_what(self) -> ExportRequest:
        given = {
            "query": bool(self.query.strip()),
            "matter": bool(self.matter),
            "ids": bool(self.ids),
        }
        if not given[self.kind]:
            raise ValueError(f"an export of kind {self.kind!r} needs its {self.kind}")
        others = [k for k, v in given.items() if v and k != self.kind]
        if others:
            raise ValueError(f"an export of kind {self.kind!r} takes no {', '.join(others)}")
        return self

    @property
    def with_pdf(self) -> bool:
        return self.pdf or self.format == "pdf"


class ItemAttachment(BaseModel):
    name: str = ""
    sha256: str = ""
    size: int = 0


class ExportItem(BaseModel):
    """One message of a package, as selected: everything metadata.csv says of it except the
    hashes of its bytes, which the builder adds as it reads them."""

    id: str  # the SHA-256 of the stored bytes
    number: int  # control number: 1, 2, ... in package order
    size: int = 0
    custodian: str = ""  # whose mail it is in this package (an address)
    holds: list[str] = Field(default_factory=list)  # hold ids covering it (matter exports)
    folder: str = ""  # its folder in the package: hold and/or custodian
    path: str = ""  # the native's path in the package (EML file, or the mbox holding it)
    pdf_path: str = ""  # its rendering's path, when the package has renderings
    from_: str = Field("", alias="from")
    sender: str = ""  # the first sender's address (the mbox From_ line)
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    envelope_to: list[str] = Field(default_factory=list)
    subject: str = ""
    date: AwareDatetime | None = None  # sent, in UTC
    date_offset_minutes: int | None = None  # the sender's offset from UTC
    attachments: list[ItemAttachment] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    model_config = ConfigDict(populate_by_name=True)


class PackageFile(BaseModel):
    """One file of a package as the manifest lists it."""

    path: str
    size: int
    sha256: str
    part: int  # the part (zip) that holds it, from 1


class ExportPart(BaseModel):
    number: int
    key: str  # object key in the exports bucket
    name: str  # file name for downloading
    size: int
    sha256: str
    files: int


class ExportProgress(BaseModel):
    selected: int = 0  # messages the request covers (known once selected)
    selected_bytes: int = 0
    missing: int = 0  # ids asked for that are not archived or not visible to the requester
    missing_ids: list[str] = Field(default_factory=list)  # the first of them
    written: int = 0  # messages in completed parts
    in_part: int = 0  # messages written so far in the part being built
    written_bytes: int = 0


class ExportJob(BaseModel):
    id: str = Field(default_factory=new_export_id)
    request: ExportRequest
    status: JobStatus = "queued"
    requested_by: str
    requested_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    # the requester's scope when asked: every read of the build goes through it
    scope_everything: bool = False
    scope_tags: list[str] = Field(default_factory=list)
    built_by: str = ""
    started_at: AwareDatetime | None = None
    built_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    lease_until: AwareDatetime | None = None  # a builder holds the job until then
    attempts: int = 0  # builds started (a resumed build is another attempt)
    progress: ExportProgress = Field(default_factory=ExportProgress)
    parts: list[ExportPart] = Field(default_factory=list)
    selection_batches: int = 0  # work files the selection was saved in
    # resuming: the next item to write, and how many mbox files each group has had
    next_item: int = 0
    mbox_counts: dict[str, int] = Field(default_factory=dict)
    error: str = ""
    manifest_sha256: str = ""
    key_fingerprint: str = ""  # the signing key's, as `mailvault export pubkey` prints it

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def scope(self) -> Scope:
        """The requester's scope when asked: every read of the build goes through it."""
        return Scope(everything=self.scope_everything, tags=frozenset(self.scope_tags))


class CustodyEntry(BaseModel):
    """One line of a package's chain of custody."""

    time: AwareDatetime
    event: CustodyEvent
    actor: str
    client: str = ""  # where from: the client address, or the host of a worker
    detail: str = ""

    def line(self) -> str:
        fields = [self.time.isoformat(), self.event, self.actor, self.client or "-", self.detail]
        return "\t".join(f.replace("\t", " ").replace("\n", " ") for f in fields)
