"""Tagging rules: versioned CRUD, preview and apply to archived mail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Body, Depends

from archiver.access.model import Permission
from archiver.audit.records import AuditAction
from archiver.errors import InvalidTagging, NotFound
from archiver.tagging.apply import Report
from search_api.audit import AuditedRoute, RequestAudit, audited
from search_api.deps import FollowUpDep, TaggingDep

router = APIRouter(prefix="/api/rules", tags=["rules"], route_class=AuditedRoute)
ReadingRules = Annotated[
    RequestAudit, Depends(audited(AuditAction.CONFIG_READ, Permission.MANAGE_RULES))
]
ChangingRules = Annotated[
    RequestAudit, Depends(audited(AuditAction.RULE_CHANGE, Permission.MANAGE_RULES))
]


def previewed(report: Report | dict[str, Any], audit: RequestAudit) -> dict[str, Any]:
    """A preview's or an apply's counts; its sample subjects only for someone who may search
    the whole archive (an administrator writes rules without reading mail)."""
    body = report.model_dump(mode="json") if isinstance(report, Report) else dict(report)
    if "samples" in body and not audit.reads_whole_archive:
        body["samples"] = {"gained": {}, "lost": {}}
    return body


RuleBody = Body(
    examples=[
        {
            "name": "jira",
            "when": {"field": "subject", "op": "regex", "value": "JIRA-\\d+"},
            "actions": {"set_department": "技术部"},
        }
    ]
)


@router.get("")
def list_rules(audit: ReadingRules, tagging: TaggingDep) -> list[dict[str, Any]]:
    audit.target = "rules"
    return [v.model_dump(mode="json") for v in tagging.store.current_rules()]


@router.post("/preview")
def preview_draft(
    audit: ReadingRules, tagging: TaggingDep, rule: dict[str, Any] = RuleBody
) -> dict[str, Any]:
    """What saving and applying this (unsaved) rule would change: messages gaining and losing
    each tag, with samples."""
    audit.target, audit.details["draft"] = "rule:draft", rule
    return previewed(tagging.preview_rule(draft=rule), audit)


@router.get("/{name}")
def get_rule(
    audit: ReadingRules, tagging: TaggingDep, name: str, version: int | None = None
) -> dict[str, Any]:
    audit.target = f"rule:{name}"
    return tagging.store.rule(name, version).model_dump(mode="json")


@router.get("/{name}/versions")
def rule_history(audit: ReadingRules, tagging: TaggingDep, name: str) -> list[dict[str, Any]]:
    audit.target = f"rule:{name}"
    return [v.model_dump(mode="json") for v in tagging.store.history(name)]


@router.put("/{name}")
def save_rule(
    audit: ChangingRules, tagging: TaggingDep, name: str, rule: dict[str, Any] = RuleBody
) -> dict[str, Any]:
    """Validate and save a new version (invalid regexes, unknown fields: 422)."""
    assert audit.principal is not None
    audit.target, audit.details["rule"] = f"rule:{name}", rule
    if rule.get("name", name) != name:
        raise InvalidTagging("rule", f"the body names {rule.get('name')!r}, the URL {name!r}")
    saved = tagging.save_rule({**rule, "name": name}, audit.principal.username)
    audit.details["version"] = saved.version
    return saved.model_dump(mode="json")


@router.delete("/{name}")
def delete_rule(audit: ChangingRules, tagging: TaggingDep, name: str) -> dict[str, Any]:
    """Save a deleting version. Apply the rule afterwards to take back the tags it set."""
    assert audit.principal is not None
    audit.target, audit.details["deleted"] = f"rule:{name}", True
    return tagging.delete_rule(name, audit.principal.username).model_dump(mode="json")


@router.post("/{name}/preview")
def preview_rule(audit: ReadingRules, tagging: TaggingDep, name: str) -> dict[str, Any]:
    audit.target = f"rule:{name}"
    return previewed(tagging.preview_rule(name), audit)


@router.post("/{name}/apply")
def apply_rule(
    audit: ChangingRules,
    tagging: TaggingDep,
    name: str,
    background: BackgroundTasks,
    follow_up: FollowUpDep,
    wait: bool = False,
    restart: bool = False,
) -> dict[str, Any]:
    """Re-tag archived mail with the rule's current version. Without wait, runs in the
    background: poll GET /api/rules/{name}/apply for progress. An interrupted apply resumes.
    Retention is recomputed afterwards (policies and holds may name tags and departments)."""
    audit.target, audit.details["apply"] = f"rule:{name}", {"wait": wait, "restart": restart}
    if wait:
        report = tagging.apply_rule(name, restart=restart)
        follow_up.recompute()
        return previewed(report, audit)
    version = tagging.store.rule(name)
    background.add_task(tagging.apply_rule, name, restart=restart)
    follow_up.recompute()
    return {"job": f"rule:{name}:v{version.version}", "status": "started"}


@router.get("/{name}/apply")
def apply_status(audit: ReadingRules, tagging: TaggingDep, name: str) -> dict[str, Any]:
    audit.target = f"rule:{name}"
    version = tagging.store.rule(name)
    status = tagging.apply_status(f"rule:{name}:v{version.version}")
    if status is None:
        raise NotFound(f"rule {name!r} version {version.version} has not been applied")
    return previewed(status, audit)
