"""The policies and holds in force: one versioned document, changed by compare-and-swap.

Policies and holds together decide every message's retention, so they live in one document with
one generation number: a message stamped with generation g was decided by exactly the policies
and holds of g, and anything stamped earlier is due for recomputation. People change them rarely,
so one document costs no contention, and each evaluation reads them with a single GET. Jobs
(recompute, disposition runs) keep their progress beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from archiver.errors import ConcurrentEdit, NotFound
from archiver.holds.model import Hold, Matter
from archiver.ports import JsonStore
from archiver.retention.policy import BUILTIN_DEFAULT_VERSION, DEFAULT_POLICY, PolicyVersion

STATE_KEY = "retention/state.json"
JOBS_PREFIX = "retention/jobs/"
RUNS_PREFIX = "retention/runs/"
CAS_ATTEMPTS = 8
T = TypeVar("T")


class RetentionState(BaseModel):
    generation: int = 0
    policies: dict[str, list[PolicyVersion]] = Field(default_factory=dict)  # oldest first
    matters: dict[str, Matter] = Field(default_factory=dict)

    def history(self, name: str) -> list[PolicyVersion]:
        return list(self.policies.get(name, []))

    def latest(self, name: str) -> PolicyVersion | None:
        versions = self.policies.get(name)
        if versions:
            return versions[-1]
        return BUILTIN_DEFAULT_VERSION if name == DEFAULT_POLICY else None

    def default(self) -> PolicyVersion:
        found = self.latest(DEFAULT_POLICY)
        assert found is not None and found.policy is not None  # the default cannot be deleted
        return found

    def in_force(self) -> list[PolicyVersion]:
        """The current version of every policy but the default, deleted ones left out."""
        return [
            versions[-1]
            for name, versions in sorted(self.policies.items())
            if name != DEFAULT_POLICY and versions[-1].policy is not None
        ]

    def active_holds(self) -> list[Hold]:
        return [h for m in self.matters.values() for h in m.holds.values() if h.active]

    def hold(self, hold_id: str) -> Hold | None:
        return next((m.holds[hold_id] for m in self.matters.values() if hold_id in m.holds), None)


class StateStore:
    def __init__(self, store: JsonStore) -> None:
        self.store = store

    def load(self) -> RetentionState:
        found = self.store.get_json(STATE_KEY)
        return RetentionState.model_validate(found) if found else RetentionState()

    def change(self, edit: Callable[[RetentionState], T]) -> tuple[T, RetentionState]:
        """Apply `edit` to the current state and save it as the next generation; retried from a
        fresh read when someone else saved in between, so no change is ever lost."""
        for _ in range(CAS_ATTEMPTS):
            found = self.store.get_json_versioned(STATE_KEY)
            state = RetentionState.model_validate(found[0]) if found else RetentionState()
            result = edit(state)
            state.generation += 1
            try:
                self.store.put_json_if(
                    STATE_KEY, state.model_dump(mode="json"), etag=found[1] if found else None
                )
            except ConcurrentEdit:
                continue
            return result, state
        raise ConcurrentEdit("the retention policies and holds")

    # -- jobs and runs: their progress, written after every batch ----------------------------

    def save_job(self, name: str, value: BaseModel) -> None:
        self.store.put_json(f"{JOBS_PREFIX}{name}.json", value.model_dump(mode="json"))

    def job(self, name: str) -> dict[str, Any] | None:
        return self.store.get_json(f"{JOBS_PREFIX}{name}.json")

    def run(self, run_id: str) -> tuple[dict[str, Any], str]:
        found = self.store.get_json_versioned(f"{RUNS_PREFIX}{run_id}.json")
        if found is None:
            raise NotFound(f"no disposition run {run_id!r}")
        return found

    def save_run(self, run_id: str, value: BaseModel, etag: str | None) -> str:
        """Compare-and-swap: an approval and a start cannot both win on the same version."""
        return self.store.put_json_if(
            f"{RUNS_PREFIX}{run_id}.json", value.model_dump(mode="json"), etag=etag
        )

    def run_ids(self) -> list[str]:
        return [
            k.removeprefix(RUNS_PREFIX).removesuffix(".json")
            for k in self.store.list_keys(RUNS_PREFIX)
        ]
