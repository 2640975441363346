"""Persistence of tagging configuration in the archive's own backends (the JsonStore port, S3).

Layout under the store (each object small JSON):

    tagging/rules/<name>/v000001.json   every saved version of a rule, never overwritten;
                                        deleting a rule saves a version with "deleted": true
    tagging/tags.json                   tag definitions (descriptions)
    tagging/directory.json              the department directory, its scope and version
    tagging/jobs/<job>.json             progress of apply jobs (resumable)
    tagging/generation.json             changes whenever rules or the directory change, so the
                                        pipeline reloads them at once and only then
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from archiver.errors import ConcurrentEdit, RuleNotFound
from archiver.ports import JsonStore
from archiver.tagging.directory import Person, Scope
from archiver.tagging.model import TagDefinition
from archiver.tagging.rules import Rule

PREFIX = "tagging/"
RULES = PREFIX + "rules/"
TAGS = PREFIX + "tags.json"
DIRECTORY = PREFIX + "directory.json"
JOBS = PREFIX + "jobs/"
GENERATION = PREFIX + "generation.json"


class RuleVersion(BaseModel):
    name: str
    version: int
    rule: Rule | None  # None when this version deletes the rule
    saved_at: datetime
    saved_by: str = ""
    save_id: str = Field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def deleted(self) -> bool:
        return self.rule is None


class DirectoryData(BaseModel):
    version: int = 0
    scope: Scope = "participants"
    imported_at: datetime | None = None
    imported_by: str = ""
    people: dict[str, Person] = Field(default_factory=dict)


def _rule_key(name: str, version: int) -> str:
    return f"{RULES}{name}/v{version:06d}.json"


def _version_of(key: str) -> int:
    return int(key.rsplit("/v", 1)[1].removesuffix(".json"))


class TaggingStore:
    def __init__(self, store: JsonStore) -> None:
        self.store = store

    # -- rules -------------------------------------------------------------------------------

    def save_rule(self, name: str, rule: Rule | None, user: str) -> RuleVersion:
        """Save the next version (rule None deletes). Raises ConcurrentEdit when another save of
        the same rule raced this one and won."""
        versions = self.versions(name)
        latest = versions[-1] if versions else 0
        if rule is None and (not latest or self.rule(name, latest).deleted):
            raise RuleNotFound(name)
        saved = RuleVersion(
            name=name, version=latest + 1, rule=rule, saved_at=datetime.now(UTC), saved_by=user
        )
        key = _rule_key(name, saved.version)
        self.store.put_json(key, saved.model_dump(mode="json"))
        stored = self.store.get_json(key)
        if stored is None or stored.get("save_id") != saved.save_id:
            raise ConcurrentEdit(f"rule {name!r}")
        self.bump_generation()
        return saved

    def versions(self, name: str) -> list[int]:
        return sorted(_version_of(k) for k in self.store.list_keys(f"{RULES}{name}/"))

    def rule(self, name: str, version: int | None = None) -> RuleVersion:
        """A version of a rule (the latest, which may be a deletion, when version is None)."""
        if version is None:
            versions = self.versions(name)
            if not versions:
                raise RuleNotFound(name)
            version = versions[-1]
        data = self.store.get_json(_rule_key(name, version))
        if data is None:
            raise RuleNotFound(name, version)
        return RuleVersion.model_validate(data)

    def history(self, name: str) -> list[RuleVersion]:
        history = [self.rule(name, v) for v in self.versions(name)]
        if not history:
            raise RuleNotFound(name)
        return history

    def current_rules(self) -> list[RuleVersion]:
        """The latest version of every rule that is not deleted."""
        latest: dict[str, int] = {}
        for key in self.store.list_keys(RULES):
            name = key.removeprefix(RULES).rsplit("/", 1)[0]
            latest[name] = max(latest.get(name, 0), _version_of(key))
        found = [self.rule(name, version) for name, version in sorted(latest.items())]
        return [r for r in found if not r.deleted]

    # -- tag definitions ---------------------------------------------------------------------

    def tag_definitions(self) -> dict[str, TagDefinition]:
        data = self.store.get_json(TAGS) or {}
        return {path: TagDefinition.model_validate(d) for path, d in data.items()}

    def save_tag_definitions(self, tags: dict[str, TagDefinition]) -> None:
        self.store.put_json(TAGS, {p: d.model_dump(mode="json") for p, d in sorted(tags.items())})

    # -- directory ---------------------------------------------------------------------------

    def directory(self) -> DirectoryData:
        data = self.store.get_json(DIRECTORY)
        return DirectoryData.model_validate(data) if data else DirectoryData()

    def save_directory(self, directory: DirectoryData) -> None:
        self.store.put_json(DIRECTORY, directory.model_dump(mode="json"))
        self.bump_generation()

    # -- jobs and change detection -----------------------------------------------------------

    def job(self, job_id: str) -> dict[str, Any] | None:
        return self.store.get_json(f"{JOBS}{job_id}.json")

    def save_job(self, job_id: str, state: dict[str, Any]) -> None:
        self.store.put_json(f"{JOBS}{job_id}.json", state)

    def generation(self) -> str:
        return str((self.store.get_json(GENERATION) or {}).get("value", ""))

    def bump_generation(self) -> None:
        self.store.put_json(GENERATION, {"value": uuid.uuid4().hex})
