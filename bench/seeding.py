"""A large archive fast, for the benchmarks that need one already there (retention, exports).

Seeding 100k messages through the whole pipeline would take longer than the benchmarks
themselves, so a few thousand generated messages (bench/mailgen.py) are analysed once and each
stored message is a distinct variant of one of them (one header line more: its own bytes, its
own SHA-256), its document the template's with its own id, date sent and departments, passed
through RetentionService.prepare as the pipeline does (then settled, as the pipeline does).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from archiver.adapters.s3 import S3RawStore
from archiver.models import Source
from archiver.pipeline.documents import analyse, with_participants
from archiver.ports import Document
from archiver.retention.service import RetentionService
from archiver.tagging.model import department_tag
from bench.mailgen import generate

BATCH = 250
THREADS = 8  # below the raw store's 16 pooled connections


@dataclass(frozen=True)
class Template:
    raw: bytes
    doc: Document


def templates(count: int, seed: int) -> list[Template]:
    """`count` generated messages, each analysed once."""
    out = []
    for message in generate(count, seed=seed):
        doc = analyse("template", message.raw, datetime.now(UTC), None, 200_000, None)
        out.append(Template(message.raw, doc))
    return out


def seed(
    service: RetentionService,
    store: S3RawStore,
    pool: list[Template],
    numbers: range,
    sent: Callable[[int], datetime],
    departments: Callable[[int], list[str]],
) -> float:
    """Store and index the variants numbered `numbers`, decided as the pipeline decides new
    mail (prepare before indexing, settle after); messages per second."""
    began = time.perf_counter()

    def batch(first: int) -> None:
        docs = []
        for n in range(first, min(first + BATCH, numbers.stop)):
            template = pool[n % len(pool)]
            raw = f"X-Bench-Variant: {n}\r\n".encode() + template.raw
            when = sent(n)
            source = Source(kind="import", detail=f"bench#{n}", received_at=when)
            sha256, _ = store.put(raw, source)
            depts = departments(n)
            doc = {
                **template.doc,
                "id": sha256,
                "date": when.isoformat(),
                "size": len(raw),
                "departments": depts,
                "tags": [department_tag(d) for d in depts],
                "ingested_at": datetime.now(UTC).isoformat(),
            }
            docs.append(with_participants(doc, [source]))
        docs = service.prepare(docs)
        failed = {k: v for k, v in service.index.create_many(docs).items() if v is not None}
        if failed:
            raise RuntimeError(f"not indexed: {next(iter(failed.items()))}")
        service.settle([str(d["id"]) for d in docs])

    with ThreadPoolExecutor(THREADS) as threads:
        list(threads.map(batch, range(numbers.start, numbers.stop, BATCH)))
    service.index.refresh()
    return len(numbers) / (time.perf_counter() - began)
