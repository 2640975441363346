"""Rebuilding the search index from S3 while it answers (`mailvault reindex`).

A layout change an index cannot take in place (how a field is indexed) needs a new index. It is
filled beside the one searches use, from the raw store alone, by the pipeline that indexes new
mail; then it takes the old one's place in one step. What people changed on a document after it
was indexed, and which is not (yet) kept in S3, is carried over from the old index: the tags
with their provenance (a manual tag has no other home) and the computed topics, when a
document is copied and once more after the switch, for tags changed meanwhile. An interrupted
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
from archiver.ports import VERSION_TOKEN, Document, IndexGenerations, SearchIndex
from archiver.tagging.model import TagEvent, TagState, tag_fields

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
    retagged: int = 0  # documents given tag changes made on the old index meanwhile


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
    previous = generations.promote(generation)
    # the old index is read once more before it goes: mail that reached it in the moments
    # before the switch, and tags people changed on it after their message was copied
    live = archiver.index if previous is None else CarryingIndex(archiver.index, previous)
    caught_up = index_missing(archiver.with_index(live), failures=failures)
    retagged = 0 if previous is None else carry_tag_changes(previous, archiver.index)
    generations.retire(previous)
    summary = RebuildSummary(
        layout_before=before,
        layout=generations.layout(),
        built=built,
        caught_up=caught_up,
        retagged=retagged,
    )
    log.info("index rebuilt", extra=summary.model_dump(exclude={"built": {"errors"}}))
    return summary


def carry_tag_changes(previous: SearchIndex, live: SearchIndex, batch_size: int = 1000) -> int:
    """Give the live index's documents the tag events their old selves gained after they were
    copied; how many documents changed."""
    changed = 0
    previous.refresh()  # a scan reads what was refreshed only
    for batch in previous.scan({"match_all": {}}, CARRIED_FIELDS, batch_size):
        changed += _carry_batch({str(d["id"]): d for d in batch}, live)
    return changed


def _carry_batch(old: Mapping[str, Document], live: SearchIndex, attempts: int = 3) -> int:
    # conditional writes: a tag someone changes on the live document meanwhile is read again
    changed, pending, refused = 0, old, {}
    for _ in range(attempts):
        current = live.get_many(pending, CARRIED_FIELDS)
        updates = {
            doc_id: update
            for doc_id in pending
            if (update := merged_tags(old[doc_id], current.get(doc_id))) is not None
        }
        results = live.update_many(updates)
        refused = {doc_id: error for doc_id, error in results.items() if error is not None}
        changed += len(updates) - len(refused)
        if not refused:
            return changed
        pending = {doc_id: old[doc_id] for doc_id in refused}
    raise TagsNotCarried(refused)


def merged_tags(old: Document, new: Document | None) -> Document | None:
    """The tag fields of `new` with the events only `old` has, in time order (effective tags
    are a function of the events); None when `new` lacks nothing (or is gone: purged)."""
    if new is None:
        return None
    new_events = list(new.get("tag_events") or [])
    missing = [e for e in old.get("tag_events") or [] if e not in new_events]
    update: Document = {}
    if missing:
        events = sorted([*new_events, *missing], key=lambda e: TagEvent.model_validate(e).at)
        tags = {*(old.get("tags") or []), *(new.get("tags") or [])}
        state = TagState.of({"tag_events": events, "tags": sorted(tags)})
        update = tag_fields(state, [], events)
    if old.get("topics") and not new.get("topics"):
        update["topics"] = old["topics"]
    if update and VERSION_TOKEN in new:
        update[VERSION_TOKEN] = new[VERSION_TOKEN]
    return update or None


class TagsNotCarried(MailvaultError):
    """The live index refused tag changes carried from the index it replaced; that index is
    kept (not retired) so they can be carried again."""

    def __init__(self, refused: Mapping[str, str]) -> None:
        doc_id, reason = next(iter(refused.items()))
        super().__init__(f"{len(refused)} documents refused their tags (first: {doc_id}: {reason})")
        self.refused = dict(refused)
