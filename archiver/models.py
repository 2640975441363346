"""Pydantic models at the domain's boundaries: what a parsed message, a source and a hit are."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SourceKind = Literal["smtp", "imap", "import"]
SUMMARY_SAMPLES = 20  # names kept in an ImportSummary for each kind of note; the counts are exact


class Address(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = ""
    address: str = ""  # lower-cased local@domain; may be empty for an unparseable header


class AttachmentInfo(BaseModel):
    filename: str = ""
    content_type: str = "application/octet-stream"
    size: int = 0
    sha256: str = ""
    disposition: str = ""  # attachment / inline / ""
    text_chars: int = 0  # characters of text extracted from it (archiver.mime.attachments)
    extract_error: str | None = None  # why its text is missing or partial


class ParsedMessage(BaseModel):
    """What the parser could read of one raw message. Never raises: failures land in parse_error."""

    model_config = ConfigDict(populate_by_name=True)

    message_id: str | None = None
    subject: str = ""
    from_: list[Address] = Field(default_factory=list, alias="from")
    to: list[Address] = Field(default_factory=list)
    cc: list[Address] = Field(default_factory=list)
    bcc: list[Address] = Field(default_factory=list)
    reply_to: list[Address] = Field(default_factory=list)
    date: datetime  # UTC
    date_offset_minutes: int | None = None  # the header's original UTC offset
    date_source: Literal["header", "arrival"] = "header"
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    body_text: str = ""
    has_html: bool = False
    attachments: list[AttachmentInfo] = Field(default_factory=list)
    attachment_text: str = ""  # each attachment's text after a line with its filename
    extract_errors: list[str] = Field(default_factory=list)  # "filename: error" per failure
    headers: dict[str, list[str]] = Field(default_factory=dict)  # lower-cased names, decoded
    size: int = 0
    warnings: list[str] = Field(default_factory=list)  # e.g. charset relabelled
    parse_error: str | None = None


class Envelope(BaseModel):
    mail_from: str = ""
    rcpt_to: list[str] = Field(default_factory=list)
    client_address: str = ""
    helo: str = ""
    tls: bool = False


class Source(BaseModel):
    """How one copy of a message reached the archive. A message may have several."""

    kind: SourceKind
    detail: str = ""  # import: file path (+ mbox index); imap: account/folder/uid; smtp: queue id
    received_at: datetime
    envelope: Envelope | None = None
    attributes: dict[str, str] = Field(default_factory=dict)

    def key(self) -> str:
        """Identity used to avoid recording the same delivery twice."""
        env = self.envelope.model_dump_json() if self.envelope else ""
        return f"{self.kind}|{self.detail}|{env}"


class SourceRecord(BaseModel):
    """Durable note stored next to the raw bytes: this sha256 arrived this way."""

    sha256: str
    source: Source


IngestStatus = Literal["imported", "duplicate", "failed"]


class IngestOutcome(BaseModel):
    sha256: str | None
    status: IngestStatus
    label: str = ""  # where the message came from, for error reports
    error: str | None = None
    parse_error: str | None = None
    # False when the failure is permanent (archiver/errors.py BackendFailed): not retried
    retryable: bool = True


class ImportSummary(BaseModel):
    imported: int = 0
    duplicates: int = 0
    failed: int = 0
    parse_errors: int = 0
    bytes: int = 0
    errors: list[dict[str, str]] = Field(default_factory=list)
    skipped: int = 0  # files in a directory that are not mail
    skipped_files: list[str] = Field(default_factory=list)  # the first SUMMARY_SAMPLES of them
    doubtful_splits: int = 0  # mbox "From " lines that may or may not separate messages
    notes: list[dict[str, str]] = Field(default_factory=list)  # the first SUMMARY_SAMPLES

    def add(self, outcome: IngestOutcome, size: int = 0) -> None:
        self.bytes += size
        if outcome.status == "imported":
            self.imported += 1
        elif outcome.status == "duplicate":
            self.duplicates += 1
        else:
            self.failed += 1
            self.errors.append({"message": outcome.label, "error": outcome.error or ""})
        if outcome.parse_error and outcome.status != "failed":
            self.parse_errors += 1

    def skip(self, label: str) -> None:
        self.skipped += 1
        if len(self.skipped_files) < SUMMARY_SAMPLES:
            self.skipped_files.append(label)

    def note(self, label: str, note: str) -> None:
        self.doubtful_splits += 1
        if len(self.notes) < SUMMARY_SAMPLES:
            self.notes.append({"message": label, "note": note})


class SearchHit(BaseModel):
    id: str
    subject: str
    subject_highlight: str = ""  # HTML: escaped, matches in <em>
    from_: str = Field("", alias="from")
    date: datetime | None = None
    snippet: str = ""  # HTML: escaped, matches in <em>
    attachment_snippet: str = ""  # HTML, when the match is in attachment text
    has_attachment: bool = False
    tags: list[str] = Field(default_factory=list)
    score: float | None = None

    model_config = ConfigDict(populate_by_name=True)


class FacetValue(BaseModel):
    value: str
    count: int


class SpoolSegment(BaseModel):
    """A written spool segment (archiver/pipeline/spool.py): its key and object version."""

    key: str
    version: str | None = None
    written_at: datetime | None = None
    # The bytes as written, handed on in memory (and in a small filing task) so the worker need
    # not read them back from S3; never part of a stored record.
    data: bytes | None = Field(default=None, exclude=True, repr=False)


class TaskFailure(BaseModel):
    """A pipeline task that gave up (retries exhausted or a permanent error), about one
    message or, for the spool task, one segment (whose messages it could not read)."""

    sha256: str = ""
    segment: SpoolSegment | None = None
    task: str
    error: str
    attempts: int = 0
    failed_at: datetime
    # a tagging rule that timed out on the message (archived, but the rule could not decide)
    rule: str = ""
    rule_version: int | None = None

    def subject(self) -> str:
        """What failed, and the failure's record name."""
        if self.rule:
            return f"rule:{self.rule}:{self.sha256}"
        if self.segment is not None:
            return self.segment.key.replace("/", "-")
        return self.sha256


class SearchResult(BaseModel):
    total: int
    hits: list[SearchHit]
    facets: dict[str, list[FacetValue]] | None = None
    next_cursor: str | None = None  # pass back as `cursor` for the next page of a deep walk
    # how the query was read: "query" (the query language) or "text" (it was not valid syntax
    # but read as text, e.g. a pasted subject with a stray bracket; query_note says why)
    interpreted_as: Literal["query", "text"] = "query"
    query_note: str | None = None


@dataclass(frozen=True)
class MessageInfo:
    """What the server says about a message before its body is fetched."""

    uid: int
    flags: tuple[str, ...]
    internaldate: datetime
    size: int


class LockState(BaseModel):
    """What the storage enforces on a stored message (S3 Object Lock), over all its versions:
    the latest retention date in force and whether a legal hold flag is set."""

    retain_until: datetime | None = None
    mode: Literal["GOVERNANCE", "COMPLIANCE"] | None = None
    legal_hold: bool = False


class Tombstone(BaseModel):
    """What remains of a disposed message: proof that it existed, what it was, and why and when
    it went. Written once, under Object Lock, before the index forgets the message."""

    model_config = ConfigDict(frozen=True)

    sha256: str
    run_id: str
    policy: str  # the deciding policy and version, "name@v3"
    retain_until: datetime | None
    disposed_at: datetime
    approved_by: str = ""  # the second person, for a run that needed one
    message_id: str | None = None
    date: datetime | None = None
    size: int = 0
    versions_deleted: int = 0
    records_deleted: int = 0


class IndexStorage(BaseModel):
    """How much room the search index takes and has: its store (primaries and replicas) and the
    file systems of the nodes holding it (summed over the cluster's data nodes)."""

    documents: int
    store_bytes: int
    fs_total_bytes: int | None = None
    fs_available_bytes: int | None = None


class DiskFigures(BaseModel):
    """One local file system, by a path on it."""

    path: str
    total_bytes: int
    free_bytes: int
