"""Rebuilding the search index from S3 while it answers (`mailvault reindex`).

A layout change an index cannot take in place (how a field is indexed) needs a new index. It is
filled beside the one searches use, from the raw store alone, by the pipeline that indexes new
mail; then it takes the old one's place in one step. What people changed on a document after it
was indexed, and which is not (yet) kept in S3, is carried over from the old index: the tags
with their provenance (a manual tag has no other home) and the computed topics. An interrupted
rebuild is run again and takes up where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from archiver.errors import MailvaultError
from archiver.pipeline.archiver import Archiver
from archiver.pipeline.failures import FailureLog
from archiver.pipeline.reconcile import ReconcileSummary, index_missing
from archiver.ports import Document, IndexGenerations, SearchIndex

log = logging.getLogger(__name__)

CARRIED_FIELDS = ("tags", "departments", "tag_events", "topics")


class RebuildIncomplete(MailvaultError):
    """Some stored messages could not be indexed into the new index, so it does not replace
    the old one (searches would miss them); run the rebuild again once the cause is fixed."""

    def __init__(self, summary: ReconcileSummary) -> None:
        first = summary.errors[0] if summary.errors else {}
        super().__init__(
            f"{summary.failed} messages could not be indexed into the new index "
            f"(first: {first.get('sha256', '?')}: {first.get('error', '?')}); "
            "the index searches use is unchanged"
        )
        self.summary = summary


class RebuildSummary(BaseModel):
    layout_before: int
    layout: int
    built: ReconcileSummary  # the new index filled from S3, before it took over
    caught_up: ReconcileSummary  # mail that reached the old index meanwhile


class CarryingIndex:
    """The new index, whose documents take the carried fields of their old selves."""

    def __init__(self, target: SearchIndex, old: SearchIndex) -> None:
        self.target = target
        self.old = old

    def create_many(self, docs: Sequence[Document]) -> dict[str, str | None]:
        before = self.old.get_many([str(d["id"]) for d in docs], CARRIED_FIELDS)
        return self.target.create_many([_carried(d, before.get(str(d["id"]))) for d in docs])

    def get_many(self, ids: Iterable[str], fields: Sequence[str]) -> dict[str, Document]:
        return self.target.get_many(ids, fields)

    def update_many(self, updates: Mapping[str, Document]) -> dict[str, str | None]:
        return self.target.update_many(updates)

    def __getattr__(self, name: str) -> Any:  # the rest of SearchIndex, as the target has it
        return getattr(self.target, name)


def _carried(doc: Document, old: Document | None) -> Document:
    if old is None:
        return doc
    return {**doc, **{k: v for k, v in old.items() if k in CARRIED_FIELDS}}


def rebuild_index(
    archiver: Archiver,
    generations: IndexGenerations,
    *,
    failures: FailureLog | None = None,
    progress: Callable[[int, ReconcileSummary], None] | None = None,
) -> RebuildSummary:
    before = generations.layout()
    generation = generations.new_generation()
    filling = archiver.with_index(CarryingIndex(generation, archiver.index))
    built = index_missing(filling, failures=failures, progress=progress)
    # a second pass takes the mail that arrived during the first (with its tags, if it has
    # any) and tries again what the first could not index: what it cannot is missing
    again = index_missing(filling, failures=failures)
    if again.failed:
        raise RebuildIncomplete(again)
    built.indexed += again.indexed
    built.failed, built.errors = 0, []
    generations.promote(generation)
    caught_up = index_missing(archiver, failures=failures)  # the moments before the switch
    summary = RebuildSummary(
        layout_before=before, layout=generations.layout(), built=built, caught_up=caught_up
    )
    log.info("index rebuilt", extra=summary.model_dump(exclude={"built": {"errors"}}))
    return summary
