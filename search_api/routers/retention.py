"""Retention policies (versioned), their dry run, the recompute that follows a change, and
disposition runs with their second-person approval. Everything needs manage_retention; every
request is audited, and each deletion a run makes has an audit record of its own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Body, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from archiver.access.model import Permission
from archiver.audit.records import AuditAction
from archiver.errors import NotFound
from archiver.models import Tombstone
from archiver.retention import recompute as jobs
from archiver.retention.disposition import Disposition, DispositionRun
from archiver.retention.policy import POLICY_NAME, Action, Basis, Criteria, Period, PolicyVersion
from archiver.retention.recompute import RecomputeReport
from archiver.retention.service import PolicyPreview
from search_api.audit import AuditedRoute, RequestAudit, audited
from search_api.deps import DispositionDep, FollowUpDep, RetentionDep

router = APIRouter(prefix="/api/retention", tags=["retention"], route_class=AuditedRoute)
Reading = Annotated[
    RequestAudit, Depends(audited(AuditAction.CONFIG_READ, Permission.MANAGE_RETENTION))
]
Changing = Annotated[
    RequestAudit, Depends(audited(AuditAction.RETENTION_CHANGE, Permission.MANAGE_RETENTION))
]
PolicyName = Path(pattern=r"^[\w.\-]{1,64}$")
RunId = Path(pattern=r"^run-[0-9a-f]{10}$")
PolicyBody = Body(
    examples=[
        {
            "name": "contracts",
            "criteria": {"query": "合同", "departments": ["法务部"]},
            "period": {"amount": 7, "unit": "years"},
            "basis": "sent",
            "action": "delete",
        }
    ]
)


class PolicyIn(BaseModel):
    """A policy as saved under its name (see archiver/retention/policy.py)."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field("", max_length=2000)
    criteria: Criteria = Criteria()
    period: Period | None = None
    basis: Basis = "sent"
    action: Action


class PolicyDraft(PolicyIn):
    name: str = Field(pattern=POLICY_NAME)


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(False, description="count and sample what would go; delete nothing")
    wait: bool = Field(False, description="delete before answering (otherwise in the background)")


def _without_samples(preview: PolicyPreview, audit: RequestAudit) -> PolicyPreview:
    """Sample subjects only for someone who may search the whole archive."""
    return preview if audit.reads_whole_archive else preview.model_copy(update={"samples": []})


@router.get("/policies")
def list_policies(audit: Reading, service: RetentionDep) -> list[PolicyVersion]:
    """The default policy first, then every policy in force."""
    audit.target = "retention-policies"
    return service.policies()


@router.post("/policies/preview")
def preview_policy(
    audit: Reading, service: RetentionDep, policy: PolicyDraft = PolicyBody
) -> PolicyPreview:
    """What saving this policy would change, before it is saved: messages whose retention
    would change, counted by department and month sent, with samples. Nothing is written."""
    draft = policy.model_dump(mode="json")
    audit.target, audit.details["draft"] = f"policy:{policy.name}", draft
    return _without_samples(service.preview(draft), audit)


@router.get("/policies/{name}")
def get_policy(
    audit: Reading, service: RetentionDep, name: str = PolicyName, version: int | None = None
) -> PolicyVersion:
    audit.target = f"policy:{name}"
    return service.policy(name, version)


@router.get("/policies/{name}/versions")
def policy_history(
    audit: Reading, service: RetentionDep, name: str = PolicyName
) -> list[PolicyVersion]:
    audit.target = f"policy:{name}"
    return service.history(name)


@router.put("/policies/{name}")
def save_policy(
    audit: Changing,
    service: RetentionDep,
    follow_up: FollowUpDep,
    name: str = PolicyName,
    policy: PolicyIn = PolicyBody,
) -> PolicyVersion:
    """Save a new version (the policy named "default" covers mail no other policy matches).
    Every message's retention is then recomputed in the background: follow it at GET
    /api/retention/recompute."""
    body = policy.model_dump(mode="json")
    audit.target, audit.details["policy"] = f"policy:{name}", body
    saved = service.save_policy({**body, "name": name}, audit.username)
    audit.details["version"] = saved.version
    follow_up.recompute()
    return saved


@router.delete("/policies/{name}")
def delete_policy(
    audit: Changing, service: RetentionDep, follow_up: FollowUpDep, name: str = PolicyName
) -> PolicyVersion:
    """Save a deleting version; retention is recomputed without the policy."""
    audit.target, audit.details["deleted"] = f"policy:{name}", True
    saved = service.delete_policy(name, audit.username)
    follow_up.recompute()
    return saved


@router.post("/recompute")
def start_recompute(
    audit: Changing,
    service: RetentionDep,
    background: BackgroundTasks,
    wait: bool = False,
    restart: bool = False,
) -> RecomputeReport | dict[str, str]:
    """Recompute every message's retention and holds (resumes an interrupted run)."""
    audit.target, audit.details["recompute"] = "retention", {"wait": wait, "restart": restart}
    if wait:
        return jobs.recompute(service, restart=restart)
    background.add_task(jobs.recompute, service, restart=restart)
    return {"status": "started"}


@router.get("/recompute")
def recompute_status(audit: Reading, service: RetentionDep) -> RecomputeReport:
    audit.target = "retention"
    found = jobs.status(service)
    if found is None:
        raise NotFound("retention has not been recomputed yet")
    return found


@router.get("/runs")
def list_runs(audit: Reading, disposition: DispositionDep) -> list[DispositionRun]:
    audit.target = "disposition"
    return disposition.runs()


@router.post("/runs")
def request_run(
    audit: Changing,
    disposition: DispositionDep,
    background: BackgroundTasks,
    request: RunRequest | None = None,
) -> DispositionRun:
    """Plan a disposition run. A dry run only counts and samples. A real run deletes at once
    when it is within the approval limit; a larger one waits for a second person's approval
    (POST /api/retention/runs/{id}/approve)."""
    request = request or RunRequest()
    audit.details["run"] = request.model_dump()
    run = disposition.plan(audit.username, dry_run=request.dry_run)
    audit.target, audit.details["planned"] = f"run:{run.id}", run.planned
    audit.details["status"] = run.status
    return _started(disposition, run, background, wait=request.wait)


def _started(
    disposition: Disposition, run: DispositionRun, background: BackgroundTasks, *, wait: bool
) -> DispositionRun:
    if run.status != "approved":
        return run
    if wait:
        return disposition.execute(run.id)
    background.add_task(disposition.execute, run.id)
    return run


@router.get("/runs/{run_id}")
def get_run(audit: Reading, disposition: DispositionDep, run_id: str = RunId) -> DispositionRun:
    audit.target = f"run:{run_id}"
    return disposition.run(run_id)


@router.post("/runs/{run_id}/approve")
def approve_run(
    audit: Changing,
    disposition: DispositionDep,
    background: BackgroundTasks,
    run_id: str = RunId,
    wait: bool = False,
) -> DispositionRun:
    """The second person's approval of a run over the limit (not the one who requested it);
    the run then deletes."""
    audit.target, audit.details["approve"] = f"run:{run_id}", True
    run = disposition.approve(run_id, audit.username)
    audit.details["requested_by"] = run.requested_by
    return _started(disposition, run, background, wait=wait)


@router.post("/runs/{run_id}/cancel")
def cancel_run(audit: Changing, disposition: DispositionDep, run_id: str = RunId) -> DispositionRun:
    audit.target, audit.details["cancel"] = f"run:{run_id}", True
    return disposition.cancel(run_id)


@router.get("/tombstones/{message_id}")
def tombstones(
    audit: Reading,
    service: RetentionDep,
    message_id: str = Path(pattern="^[0-9a-f]{64}$"),
) -> list[Tombstone]:
    """What remains of a disposed message: when, by which run and policy, approved by whom."""
    audit.target = message_id
    found = list(service.storage.tombstones(message_id))
    if not found:
        raise NotFound(f"no tombstone for {message_id}")
    return found
