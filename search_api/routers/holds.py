"""Matters and legal holds (manage_holds). A new or released hold is applied to the archived
mail in the background (a retention recompute); mail arriving later is checked as it is
indexed. Releasing needs a reason."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from archiver.access.model import Permission
from archiver.audit.records import AuditAction
from archiver.holds.model import Hold, HoldCriteria, Matter, MatterFields, MatterStatus
from archiver.holds.service import HoldCount, HoldPreview
from search_api.audit import AuditedRoute, RequestAudit, audited
from search_api.deps import FollowUpDep, HoldsDep

router = APIRouter(prefix="/api", tags=["holds"], route_class=AuditedRoute)
Reading = Annotated[
    RequestAudit, Depends(audited(AuditAction.CONFIG_READ, Permission.MANAGE_HOLDS))
]
Changing = Annotated[
    RequestAudit, Depends(audited(AuditAction.HOLD_CHANGE, Permission.MANAGE_HOLDS))
]
MatterId = Path(pattern=r"^matter-[0-9a-f]{8}$")
HoldId = Path(pattern=r"^hold-[0-9a-f]{8}$")
HoldBody = Body(
    examples=[
        {
            "name": "张伟 custodian",
            "custodians": {"addresses": ["zhang.wei@example.cn"], "departments": ["销售部"]},
            "query": "合同 OR 报价",
            "sent_after": "2024-01-01",
        }
    ]
)


class MatterDetail(BaseModel):
    matter: Matter
    counts: list[HoldCount] = Field(description="per hold: messages held, and matching now")


class MatterChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    case_number: str | None = Field(None, max_length=100)
    description: str | None = Field(None, max_length=4000)
    owners: list[str] | None = None
    status: MatterStatus | None = None


class HoldDraft(HoldCriteria):
    """A hold's criteria as they are being written: the name may come last."""

    name: str = Field("draft", min_length=1, max_length=200)


class Release(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


@router.get("/matters")
def list_matters(audit: Reading, holds: HoldsDep) -> list[Matter]:
    audit.target = "matters"
    return holds.matters()


@router.post("/matters")
def create_matter(audit: Changing, holds: HoldsDep, matter: MatterFields) -> Matter:
    """A matter: name, case number, description, owners."""
    audit.details["matter"] = matter.model_dump(mode="json")
    created = holds.create_matter(matter.model_dump(), audit.username)
    audit.target = f"matter:{created.id}"
    return created


@router.get("/matters/{matter_id}")
def get_matter(audit: Reading, holds: HoldsDep, matter_id: str = MatterId) -> MatterDetail:
    audit.target = f"matter:{matter_id}"
    return MatterDetail(matter=holds.matter(matter_id), counts=holds.counts(matter_id))


@router.patch("/matters/{matter_id}")
def update_matter(
    audit: Changing, holds: HoldsDep, changes: MatterChanges, matter_id: str = MatterId
) -> Matter:
    """Change name, case number, description, owners or status ("closed" needs every hold
    released first)."""
    changed = changes.model_dump(mode="json", exclude_unset=True)
    audit.target, audit.details["changes"] = f"matter:{matter_id}", changed
    return holds.update_matter(matter_id, changed, audit.username)


@router.post("/matters/{matter_id}/holds")
def add_hold(
    audit: Changing,
    holds: HoldsDep,
    follow_up: FollowUpDep,
    matter_id: str = MatterId,
    hold: HoldCriteria = HoldBody,
) -> Hold:
    """A hold on custodians (addresses, users, departments) and/or a query, optionally within
    dates sent. It covers archived mail (applied in the background) and all later mail."""
    audit.details["hold"] = hold.model_dump(mode="json")
    created = holds.add_hold(matter_id, hold.model_dump(), audit.username)
    audit.target = f"hold:{created.id}"
    follow_up.recompute()
    return created


@router.post("/holds/preview")
def preview_hold(audit: Reading, holds: HoldsDep, hold: HoldDraft = HoldBody) -> HoldPreview:
    """How many messages a hold with these criteria would cover now, counted by the query the
    hold would be applied with. Nothing is written."""
    criteria = hold.model_dump(mode="json")
    audit.target, audit.details["hold"] = "hold-preview", criteria
    preview = holds.preview(criteria)
    audit.details["matching"] = preview.matching
    return preview


@router.get("/holds/{hold_id}")
def get_hold(audit: Reading, holds: HoldsDep, hold_id: str = HoldId) -> Hold:
    audit.target = f"hold:{hold_id}"
    return holds.hold(hold_id)


@router.post("/holds/{hold_id}/release")
def release_hold(
    audit: Changing,
    holds: HoldsDep,
    follow_up: FollowUpDep,
    release: Release,
    hold_id: str = HoldId,
) -> Hold:
    """Release a hold, with a reason. Its messages lose the storage's legal hold flag only
    where no other active hold still covers them."""
    audit.target, audit.details["reason"] = f"hold:{hold_id}", release.reason
    released = holds.release_hold(hold_id, release.reason, audit.username)
    follow_up.recompute()
    return released
