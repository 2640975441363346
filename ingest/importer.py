"""Bulk import of mail files into the archive, in batches, with progress."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path

from archiver.models import ImportSummary, IngestOutcome
from archiver.pipeline import Archiver, Incoming
from ingest.files import MailItem, read_paths

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
