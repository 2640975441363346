"""Pipeline resilience against real backends: analyser processes that die do not lose mail."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import UTC, datetime

import pytest

from archiver import bootstrap
from archiver.models import Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.settings import Settings

pytestmark = pytest.mark.services


def _pool(*, dying: bool) -> Executor:
    # a worker that aborts in its initializer is a real process death (BrokenProcessPool)
    return ProcessPoolExecutor(
        max_workers=2,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=os.abort if dying else None,
    )


def _messages(tag: str) -> list[Incoming]:
    now = datetime.now(UTC)
    return [
        Incoming(
            f"Message-ID: <{tag}-{n}@pool.test>\r\nSubject: 池 {tag} {n}\r\n\r\n正文\r\n".encode(),
            Source(kind="import", detail=f"{tag}-{n}", received_at=now),
        )
        for n in range(3)
    ]


def _archiver(settings: Settings, factory: Callable[[], Executor]) -> Archiver:
    return Archiver(
        bootstrap.raw_store(settings), bootstrap.search_index(settings), analysers=factory
    )


def test_a_dead_analyser_pool_is_replaced_and_the_batch_analysed(
    settings: Settings, backends: None
) -> None:
    pools = iter([True, False, False])
    archiver = _archiver(settings, lambda: _pool(dying=next(pools)))
    try:
        outcomes = archiver.ingest_many(_messages("recovered"))
    finally:
        archiver.close()
    assert [(o.status, o.parse_error) for o in outcomes] == [("imported", None)] * 3, outcomes
    doc = archiver.index.get(outcomes[0].sha256 or "")
    assert doc is not None and doc["subject"].startswith("池 recovered")


def test_a_message_that_keeps_killing_its_worker_is_indexed_bare_with_the_reason(
    settings: Settings, backends: None
) -> None:
    archiver = _archiver(settings, lambda: _pool(dying=True))
    try:
        outcomes = archiver.ingest_many(_messages("doomed"))
    finally:
        archiver.close()
    assert [o.status for o in outcomes] == ["imported"] * 3
    assert {o.parse_error for o in outcomes} == {"analysis crashed its worker process"}
    for outcome in outcomes:
        assert archiver.store.exists(outcome.sha256 or "")
        doc = archiver.index.get(outcome.sha256 or "")
        assert doc is not None and doc["parse_failed"] is True
