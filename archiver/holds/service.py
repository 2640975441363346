"""Matters and holds: creating, changing, releasing, and counting what each hold covers.

Holds live with the retention policies in one versioned document (archiver/retention/state.py):
every change starts a new generation, and a recompute (archiver/retention/recompute.py) brings
the archive's mail and its storage flags in line; mail that arrives later is checked as it is
indexed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from archiver.errors import InvalidRetention, NotFound
from archiver.holds.model import Hold, HoldCriteria, Matter, MatterFields
from archiver.retention.evaluate import with_named
from archiver.retention.policy import validated
from archiver.retention.service import RetentionService
from archiver.retention.state import RetentionState


class HoldCount(BaseModel):
    hold: str
    name: str
    status: str
    held: int  # messages the index records as held by it
    matching: int  # messages its criteria match now (differs while a recompute runs)


class HoldPreview(BaseModel):
    matching: int  # messages the criteria match now: what the hold would cover if added


class HoldService:
    def __init__(self, retention: RetentionService) -> None:
        self.retention = retention

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.retention.clock

    def matters(self) -> list[Matter]:
        return sorted(self.retention.state.load().matters.values(), key=lambda m: m.created_at)

    def matter(self, matter_id: str) -> Matter:
        found = self.retention.state.load().matters.get(matter_id)
        if found is None:
            raise NotFound(f"no matter {matter_id!r}")
        return found

    def hold(self, hold_id: str) -> Hold:
        found = self.retention.state.load().hold(hold_id)
        if found is None:
            raise NotFound(f"no hold {hold_id!r}")
        return found

    def create_matter(self, data: Mapping[str, Any], actor: str) -> Matter:
        fields: MatterFields = validated(MatterFields, data, "matter")
        matter = Matter(**fields.model_dump(), created_by=actor, created_at=self.clock())

        def edit(state: RetentionState) -> Matter:
            state.matters[matter.id] = matter
            return matter

        return self.retention.state.change(edit)[0]

    def update_matter(self, matter_id: str, data: Mapping[str, Any], actor: str) -> Matter:
        """Change a matter's fields or status; closing needs every hold released first."""
        allowed = {*MatterFields.model_fields, "status"}
        unknown = set(data) - allowed
        if unknown:
            raise InvalidRetention("matter", f"cannot change {', '.join(sorted(unknown))}")

        def edit(state: RetentionState) -> Matter:
            current = state.matters.get(matter_id)
            if current is None:
                raise NotFound(f"no matter {matter_id!r}")
            changed: Matter = validated(Matter, {**current.model_dump(), **data}, "matter")
            if changed.status == "closed" and any(h.active for h in changed.holds.values()):
                raise InvalidRetention(
                    "matter", "release its holds (each with a reason) before closing it"
                )
            if changed.status == "closed" and current.status != "closed":
                changed = changed.model_copy(update={"closed_at": self.clock()})
            state.matters[matter_id] = changed
            return changed

        return self.retention.state.change(edit)[0]

    def add_hold(self, matter_id: str, data: Mapping[str, Any], actor: str) -> Hold:
        criteria: HoldCriteria = validated(HoldCriteria, data, "hold")
        self.retention.queries.hold(criteria)  # InvalidQuery (with the position) for a bad query
        hold = Hold(
            **criteria.model_dump(), matter=matter_id, created_by=actor, created_at=self.clock()
        )

        def edit(state: RetentionState) -> Hold:
            matter = state.matters.get(matter_id)
            if matter is None:
                raise NotFound(f"no matter {matter_id!r}")
            if matter.status != "open":
                raise InvalidRetention("hold", f"matter {matter_id} is closed")
            matter.holds[hold.id] = hold
            return hold

        return self.retention.state.change(edit)[0]

    def release_hold(self, hold_id: str, reason: str, actor: str) -> Hold:
        """Release a hold; its messages lose the storage's legal hold flag only where no other
        active hold still covers them (at the recompute that follows)."""
        if not reason.strip():
            raise InvalidRetention("release", "a reason is required")

        def edit(state: RetentionState) -> Hold:
            hold = state.hold(hold_id)
            if hold is None:
                raise NotFound(f"no hold {hold_id!r}")
            if not hold.active:
                raise InvalidRetention("release", f"hold {hold_id} is already released")
            released = hold.model_copy(
                update={
                    "status": "released",
                    "released_by": actor,
                    "released_at": self.clock(),
                    "release_reason": reason.strip(),
                }
            )
            state.matters[hold.matter].holds[hold_id] = released
            return released

        return self.retention.state.change(edit)[0]

    def matching(self, criteria: HoldCriteria) -> int:
        """Messages the criteria match now, by the very query a hold with them is applied
        with, so a preview's count is what the hold will cover."""
        found = self.retention.index.search(
            {
                "size": 0,
                "track_total_hits": True,
                "query": with_named(self.retention.queries.hold(criteria), []),
            }
        )
        return int(found["hits"]["total"]["value"])

    def preview(self, data: Mapping[str, Any]) -> HoldPreview:
        """What a hold with these criteria would cover, before it is added; nothing is
        written. InvalidQuery (with the position) for a bad query."""
        criteria: HoldCriteria = validated(HoldCriteria, data, "hold")
        self.retention.index.refresh()
        return HoldPreview(matching=self.matching(criteria))

    def counts(self, matter_id: str) -> list[HoldCount]:
        matter = self.matter(matter_id)
        service = self.retention
        service.index.refresh()
        out: list[HoldCount] = []
        for hold in matter.holds.values():
            held = service.index.search(
                {"size": 0, "track_total_hits": True, "query": {"term": {"holds": hold.id}}}
            )
            out.append(
                HoldCount(
                    hold=hold.id,
                    name=hold.name,
                    status=hold.status,
                    held=int(held["hits"]["total"]["value"]),
                    matching=self.matching(hold) if hold.active else 0,
                )
            )
        return out
