"""Turning raw bytes and their sources into the document the search index stores."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from archiver.mime.attachments import ExtractLimits
from archiver.mime.parsing import parse_message
from archiver.models import Address, ParsedMessage, Source
from archiver.ports import Document
from archiver.text.subjects import REPLY_PREFIX, subject_key
from archiver.text.tokenizer import Tokenizer, get_tokenizer, han_runs

SCHEMA_VERSION = 1


def _addresses(addresses: Iterable[Address]) -> list[dict[str, str]]:
    return [a.model_dump() for a in addresses]


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower() if "@" in address else ""


def source_fields(sources: Sequence[Source]) -> Document:
    """Fields derived from a message's sources; recomputed whenever a source is added."""
    ordered = sorted(sources, key=lambda s: s.received_at)
    envelopes = [s.envelope for s in ordered if s.envelope is not None]
    return {
        "sources": [s.model_dump(mode="json") for s in ordered],
        "source_kinds": sorted({s.kind for s in ordered}),
        "envelope_from": sorted({e.mail_from.lower() for e in envelopes if e.mail_from}),
        "envelope_to": sorted({r.lower() for e in envelopes for r in e.rcpt_to}),
        "folders": sorted({s.attributes["folder"] for s in ordered if s.attributes.get("folder")}),
        "arrived_at": ordered[0].received_at.isoformat() if ordered else None,
    }


def normalised_subject(subject: str) -> str:
    """The subject without reply/forward prefixes, for threading messages that lack headers."""
    return " ".join(REPLY_PREFIX.sub("", subject).split()).lower()


def thread_key(parsed: ParsedMessage) -> str:
    """The conversation's root Message-ID as far as this message knows it."""
    root = parsed.references[0] if parsed.references else parsed.in_reply_to
    return root or parsed.message_id or ""


def merge_sources(existing: Sequence[Source], new: Sequence[Source]) -> list[Source] | None:
    """The union of sources, or None when new adds nothing."""
    known = {s.key() for s in existing}
    added = [s for s in new if s.key() not in known]
    if not added:
        return None
    return [*existing, *dict((s.key(), s) for s in added).values()]


def build_document(
    sha256: str,
    parsed: ParsedMessage,
    tokenizer: Tokenizer,
    *,
    ingested_at: datetime | None = None,
) -> Document:
    """The source-independent part of a message's document (sources are merged by the caller)."""
    people = [*parsed.from_, *parsed.to, *parsed.cc, *parsed.bcc, *parsed.reply_to]
    filenames = " ".join(a.filename for a in parsed.attachments if a.filename)
    key, is_reply = subject_key(parsed.subject)
    subject = tokenizer.fields(parsed.subject)
    body = tokenizer.fields(parsed.body_text)
    attachment = tokenizer.fields(parsed.attachment_text)
    return {
        "id": sha256,
        "schema_version": SCHEMA_VERSION,
        "message_id": parsed.message_id,
        "subject": parsed.subject,
        "subject_terms": subject.terms,
        "subject_words": subject.words,
        "subject_han": subject.han,
        "subject_key": key,
        "subject_is_reply": is_reply,
        "from": _addresses(parsed.from_),
        "to": _addresses(parsed.to),
        "cc": _addresses(parsed.cc),
        "bcc": _addresses(parsed.bcc),
        "reply_to": _addresses(parsed.reply_to),
        "from_domain": sorted({_domain(a.address) for a in parsed.from_} - {""}),
        "participants": sorted({a.address for a in people} - {""}),
        "names_terms": tokenizer.index_text(" ".join(a.name for a in people if a.name)),
        "date": parsed.date.isoformat(),
        "date_offset_minutes": parsed.date_offset_minutes,
        "date_source": parsed.date_source,
        "in_reply_to": parsed.in_reply_to,
        "references": parsed.references,
        "thread_key": thread_key(parsed),
        "subject_norm": normalised_subject(parsed.subject),
        "body": parsed.body_text,
        "body_terms": body.terms,
        "body_words": body.words,
        "body_han": body.han,
        "has_html": parsed.has_html,
        "attachments": [a.model_dump() for a in parsed.attachments],
        "attachment_names_terms": tokenizer.index_text(filenames),
        "attachment_names_han": han_runs(filenames),
        "attachment_text": parsed.attachment_text,
        "attachment_terms": attachment.terms,
        "attachment_words": attachment.words,
        "attachment_han": attachment.han,
        "extract_errors": parsed.extract_errors,
        "extract_failed": bool(parsed.extract_errors),
        "has_attachment": bool(parsed.attachments),
        "attachment_count": len(parsed.attachments),
        "size": parsed.size,
        "headers": parsed.headers,
        "warnings": parsed.warnings,
        "parse_error": parsed.parse_error,
        "parse_failed": parsed.parse_error is not None,
        "tags": [],
        "departments": [],
        "holds": [],
        "retain_until": None,
        "ingested_at": (ingested_at or datetime.now(UTC)).isoformat(),
    }


def with_participants(doc: Document, sources: Sequence[Source]) -> Document:
    """Add source fields, and the envelope recipients to participants (BCC lives only there)."""
    fields = source_fields(sources)
    merged = {**doc, **fields}
    merged["participants"] = sorted(set(doc.get("participants", [])) | set(fields["envelope_to"]))
    return merged


def fallback_document(sha256: str, size: int, error: str, arrival: datetime) -> Document:
    """What is indexed when even building the document failed: the message stays findable."""
    return {
        "id": sha256,
        "schema_version": SCHEMA_VERSION,
        "subject": "",
        "date": arrival.isoformat(),
        "date_source": "arrival",
        "size": size,
        "parse_error": error[:4000],
        "parse_failed": True,
        "tags": [],
        "departments": [],
        "holds": [],
        "ingested_at": datetime.now(UTC).isoformat(),
    }


def analyse(
    sha256: str,
    raw: bytes,
    arrival: datetime,
    user_dict: Path | None,
    max_body_chars: int,
    extract_limits: ExtractLimits | None,
) -> Document:
    """Parse and tokenize one message. Top-level so a process pool can run it. Attachment text
    is extracted within extract_limits (None: not at all)."""
    try:
        parsed = parse_message(raw, arrival, max_body_chars=max_body_chars, extract=extract_limits)
        return build_document(sha256, parsed, get_tokenizer(user_dict))
    except Exception as exc:  # the message must stay findable whatever went wrong
        return fallback_document(sha256, len(raw), f"{type(exc).__name__}: {exc}", arrival)


def analyse_many(
    messages: Sequence[tuple[str, bytes, datetime]],
    user_dict: Path | None,
    max_body_chars: int,
    extract_limits: ExtractLimits | None,
) -> list[Document]:
    """analyse() of several messages (sha256, raw, arrival) in one task of a process pool."""
    return [
        analyse(sha256, raw, arrival, user_dict, max_body_chars, extract_limits)
        for sha256, raw, arrival in messages
    ]
