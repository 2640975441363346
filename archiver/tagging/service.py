"""Tagging use cases: rules, tags, the directory, manual tags, preview/apply, the pipeline hook."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archiver.errors import InvalidTagging, MessageNotFound
from archiver.pipeline.failures import FailureLog, rule_timeout
from archiver.ports import VERSION_TOKEN, Document, SearchIndex
from archiver.tagging import apply as jobs
from archiver.tagging.directory import Directory, Format, Scope, parse_directory
from archiver.tagging.engine import Evaluation, TagSource, Topics, evaluate, manual_change
from archiver.tagging.model import NAMESPACES, TagDefinition, TagEvent, normalise_tag
from archiver.tagging.rules import CompiledRule, Rule, compile_rule, parse_rule
from archiver.tagging.store import DirectoryData, RuleVersion, TaggingStore
from archiver.text.tokenizer import Tokenizer, get_tokenizer

log = logging.getLogger(__name__)
MANUAL_FIELDS = ["id", "subject", "tags", "departments", "tag_events"]
WRITE_ATTEMPTS = 5


@dataclass(frozen=True)
class TaggingOptions:
    topics_count: int = 8
    stop_words: frozenset[str] = frozenset()
    batch_size: int = 500
    user_dict: Path | None = None
    regex_timeout: float | None = 1.0  # seconds a rule's regexes may run on one message


class TaggingService:
    def __init__(
        self,
        index: SearchIndex,
        store: TaggingStore,
        options: TaggingOptions | None = None,
        failures: FailureLog | None = None,
    ) -> None:
        self.index = index
        self.store = store
        self.options = options or TaggingOptions()
        self.failures = failures  # where new mail's rule timeouts are recorded

    def through(self, index: SearchIndex) -> TaggingService:
        """The same service, reading and tagging mail through `index`: a person's ScopedIndex,
        so tag counts and a message's tags cover only the mail they may read."""
        return TaggingService(index, self.store, self.options, self.failures)

    @property
    def tokenizer(self) -> Tokenizer:
        # loaded on first use (~0.5 s): only rules on `words` need it
        return get_tokenizer(self.options.user_dict)

    # -- rules -------------------------------------------------------------------------------

    def save_rule(self, data: Mapping[str, Any], user: str = "") -> RuleVersion:
        rule = parse_rule(data, self.tokenizer)
        saved = self.store.save_rule(rule.name, rule, user)
        self._forget_timeouts(rule.name)
        return saved

    def delete_rule(self, name: str, user: str = "") -> RuleVersion:
        """Save a deleting version; apply it to take back the tags the rule set."""
        saved = self.store.save_rule(name, None, user)
        self._forget_timeouts(name)
        return saved

    def compile(self, rule: Rule, version: int | None) -> CompiledRule:
        return compile_rule(rule, version, self.tokenizer, self.options.regex_timeout)

    def rule_evaluation(self, version: RuleVersion) -> Evaluation:
        if version.rule is None:
            return Evaluation([TagSource.released(version.name, version.version)])
        return Evaluation([TagSource.of_rule(self.compile(version.rule, version.version))])

    def preview_rule(
        self, name: str | None = None, draft: Mapping[str, Any] | None = None
    ) -> jobs.Report:
        """What applying a saved rule (or an unsaved draft) would change in the archive."""
        if draft is not None:
            rule = parse_rule(draft, self.tokenizer)
            evaluation = Evaluation([TagSource.of_rule(self.compile(rule, None))])
            return self._preview(evaluation, f"rule:{rule.name}:draft")
        if name is None:
            raise InvalidTagging("preview", "give a rule name or a draft rule")
        version = self.store.rule(name)
        return self._preview(self.rule_evaluation(version), _rule_job(version))

    def apply_rule(
        self, name: str, *, restart: bool = False, progress: jobs.Progress | None = None
    ) -> jobs.Report:
        version = self.store.rule(name)
        return self._apply(self.rule_evaluation(version), _rule_job(version), restart, progress)

    def apply_status(self, job: str) -> dict[str, Any] | None:
        return self.store.job(job)

    # -- directory ---------------------------------------------------------------------------

    def import_directory(
        self,
        data: bytes,
        fmt: Format,
        *,
        scope: Scope | None = None,
        replace: bool = False,
        user: str = "",
    ) -> DirectoryData:
        """Add or update people (replace: the file is the whole directory); a new version."""
        people = parse_directory(data, fmt)
        current = self.store.directory()
        merged = {} if replace else dict(current.people)
        merged.update({p.address: p for p in people})
        updated = DirectoryData(
            version=current.version + 1,
            scope=scope or current.scope,
            imported_at=datetime.now(UTC),
            imported_by=user,
            people=merged,
        )
        self.store.save_directory(updated)
        return updated

    def directory_evaluation(self) -> Evaluation:
        return Evaluation([TagSource.of_directory(_directory(self.store.directory()))])

    def preview_directory(self) -> jobs.Report:
        data = self.store.directory()
        return self._preview(self.directory_evaluation(), f"directory:v{data.version}")

    def apply_directory(
        self, *, restart: bool = False, progress: jobs.Progress | None = None
    ) -> jobs.Report:
        data = self.store.directory()
        job = f"directory:v{data.version}"
        return self._apply(self.directory_evaluation(), job, restart, progress)

    # -- topics ------------------------------------------------------------------------------

    def topics(self) -> Topics:
        return Topics(self.options.topics_count, self.options.stop_words)

    def apply_topics(
        self, *, restart: bool = False, progress: jobs.Progress | None = None
    ) -> jobs.Report:
        return self._apply(Evaluation(topics=self.topics()), "topics", restart, progress)

    # -- tags --------------------------------------------------------------------------------

    def define_tag(self, path: str, description: str = "") -> TagDefinition:
        tag = normalise_tag(path)
        tags = self.store.tag_definitions()
        created = tags[tag].created_at if tag in tags else datetime.now(UTC)
        tags[tag] = TagDefinition(path=tag, description=description, created_at=created)
        self.store.save_tag_definitions(tags)
        return tags[tag]

    def delete_tag(self, path: str) -> bool:
        """Forget a tag's definition (messages keep the tag; remove it with a rule or by hand)."""
        tag = normalise_tag(path)
        tags = self.store.tag_definitions()
        if tags.pop(tag, None) is None:
            return False
        self.store.save_tag_definitions(tags)
        return True

    def list_tags(self) -> dict[str, Any]:
        """Namespaces, defined tags, and every tag in use with its number of messages."""
        filters = {ns: {"prefix": {"tags": f"{ns}/"}} for ns in NAMESPACES}
        response = self.index.search(
            {
                "size": 0,
                "aggs": {
                    "used": {"terms": {"field": "tags", "size": 10_000}},
                    "namespaces": {"filters": {"filters": filters}},
                },
            }
        )
        aggs = response.get("aggregations", {})
        buckets = aggs.get("namespaces", {}).get("buckets", {})
        return {
            "namespaces": [
                {"path": ns, "description": d, "messages": buckets.get(ns, {}).get("doc_count", 0)}
                for ns, d in NAMESPACES.items()
            ],
            "defined": [t.model_dump(mode="json") for t in self.store.tag_definitions().values()],
            "used": [
                {"path": b["key"], "messages": b["doc_count"]}
                for b in aggs.get("used", {}).get("buckets", [])
            ],
        }

    # -- one message -------------------------------------------------------------------------

    def message_tags(self, doc_id: str) -> dict[str, Any]:
        doc = self.index.get_many([doc_id], MANUAL_FIELDS).get(doc_id)
        if doc is None:
            raise MessageNotFound(doc_id)
        return _tags_view(doc_id, doc)

    def change_message_tags(
        self, doc_id: str, add: Sequence[str], remove: Sequence[str], user: str
    ) -> dict[str, Any]:
        """Add or remove tags by hand, recorded with who did it."""
        if not user.strip():
            raise InvalidTagging("tag change", "say who makes it (user)", "user")
        added, removed = [normalise_tag(t) for t in add], [normalise_tag(t) for t in remove]
        for _ in range(WRITE_ATTEMPTS):
            doc = self.index.get_many([doc_id], MANUAL_FIELDS).get(doc_id)
            if doc is None:
                raise MessageNotFound(doc_id)
            change = manual_change(doc, added, removed, user.strip(), datetime.now(UTC))
            if change is None:
                return _tags_view(doc_id, doc)
            update = {**change.fields, VERSION_TOKEN: doc[VERSION_TOKEN]}
            status = self.index.update_many({doc_id: update}).get(doc_id)
            if status is None:
                return _tags_view(doc_id, {**doc, **change.fields})
            if status != "conflict":
                raise InvalidTagging("tag change", str(status))
        raise InvalidTagging("tag change", "the message kept changing concurrently; try again")

    # -- the pipeline ------------------------------------------------------------------------

    def tagger(self) -> Tagger:
        return Tagger(self)

    def current_evaluation(self) -> Evaluation:
        """Every current rule, the directory and topics: what new mail gets."""
        sources = [
            TagSource.of_rule(self.compile(v.rule, v.version))
            for v in self.store.current_rules()
            if v.rule is not None and v.rule.enabled
        ]
        directory = self.store.directory()
        if directory.people:
            sources.append(TagSource.of_directory(_directory(directory)))
        return Evaluation(sources, self.topics())

    # -- helpers -----------------------------------------------------------------------------

    def _forget_timeouts(self, rule: str) -> None:
        if self.failures is not None:
            self.failures.clear_rule(rule)

    def _preview(self, evaluation: Evaluation, job: str) -> jobs.Report:
        return jobs.preview(self.index, evaluation, job, batch_size=self.options.batch_size)

    def _apply(
        self, evaluation: Evaluation, job: str, restart: bool, progress: jobs.Progress | None
    ) -> jobs.Report:
        return jobs.apply(
            self.index,
            self.store,
            evaluation,
            job,
            batch_size=self.options.batch_size,
            restart=restart,
            progress=progress,
        )


class Tagger:
    """The pipeline hook: tags and topics for new documents before they are indexed.

    Rules and the directory are reloaded only when their generation changes (one small read
    per batch), so a saved rule applies to the very next message."""

    def __init__(self, service: TaggingService) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._generation: str | None = None
        self._evaluation = Evaluation()

    def evaluation(self) -> Evaluation:
        generation = self.service.store.generation()
        with self._lock:
            if generation != self._generation:
                self._evaluation = self.service.current_evaluation()
                self._generation = generation
            return self._evaluation

    def __call__(self, docs: list[Document]) -> list[Document]:
        if not docs:
            return docs
        evaluation = self.evaluation()
        now = datetime.now(UTC)
        tagged = []
        failures = self.service.failures
        for doc in docs:
            try:
                outcome = evaluate(doc, evaluation, now)
            except Exception:  # a message is indexed untagged rather than not at all
                log.exception("tagging failed", extra={"sha256": doc.get("id")})
                tagged.append(doc)
                continue
            for timeout in outcome.timeouts:
                log.warning("tagging rule timed out", extra={"error": str(timeout)})
                if failures is not None:
                    failures.record_safely(rule_timeout(timeout))
            change = outcome.change
            tagged.append({**doc, **change.fields} if change else doc)
        return tagged


def _rule_job(version: RuleVersion) -> str:
    return f"rule:{version.name}:v{version.version}"


def _directory(data: DirectoryData) -> Directory:
    return Directory(data.people, data.scope, data.version)


def _tags_view(doc_id: str, doc: Document) -> dict[str, Any]:
    events = [
        TagEvent.model_validate(e).model_dump(mode="json") for e in doc.get("tag_events") or []
    ]
    return {
        "id": doc_id,
        "tags": doc.get("tags") or [],
        "departments": doc.get("departments") or [],
        "events": events,
    }
