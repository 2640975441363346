"""Tagging rules: versioned CRUD, preview and apply to archived mail."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Body

from archiver.errors import InvalidTagging, NotFound
from search_api.deps import TaggingDep

router = APIRouter(prefix="/api/rules", tags=["rules"])
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
def list_rules(tagging: TaggingDep) -> list[dict[str, Any]]:
    return [v.model_dump(mode="json") for v in tagging.store.current_rules()]


@router.post("/preview")
def preview_draft(tagging: TaggingDep, rule: dict[str, Any] = RuleBody) -> dict[str, Any]:
    """What saving and applying this (unsaved) rule would change: messages gaining and losing
    each tag, with samples."""
    return tagging.preview_rule(draft=rule).model_dump(mode="json")


@router.get("/{name}")
def get_rule(tagging: TaggingDep, name: str, version: int | None = None) -> dict[str, Any]:
    return tagging.store.rule(name, version).model_dump(mode="json")


@router.get("/{name}/versions")
def rule_history(tagging: TaggingDep, name: str) -> list[dict[str, Any]]:
    return [v.model_dump(mode="json") for v in tagging.store.history(name)]


@router.put("/{name}")
def save_rule(
    tagging: TaggingDep, name: str, user: str = "", rule: dict[str, Any] = RuleBody
) -> dict[str, Any]:
    """Validate and save a new version (invalid regexes, unknown fields: 422)."""
    if rule.get("name", name) != name:
        raise InvalidTagging("rule", f"the body names {rule.get('name')!r}, the URL {name!r}")
    return tagging.save_rule({**rule, "name": name}, user).model_dump(mode="json")


@router.delete("/{name}")
def delete_rule(tagging: TaggingDep, name: str, user: str = "") -> dict[str, Any]:
    """Save a deleting version. Apply the rule afterwards to take back the tags it set."""
    return tagging.delete_rule(name, user).model_dump(mode="json")


@router.post("/{name}/preview")
def preview_rule(tagging: TaggingDep, name: str) -> dict[str, Any]:
    return tagging.preview_rule(name).model_dump(mode="json")


@router.post("/{name}/apply")
def apply_rule(
    tagging: TaggingDep,
    name: str,
    background: BackgroundTasks,
    wait: bool = False,
    restart: bool = False,
) -> dict[str, Any]:
    """Re-tag archived mail with the rule's current version. Without wait, runs in the
    background: poll GET /api/rules/{name}/apply for progress. An interrupted apply resumes."""
    if wait:
        return tagging.apply_rule(name, restart=restart).model_dump(mode="json")
    version = tagging.store.rule(name)
    background.add_task(tagging.apply_rule, name, restart=restart)
    return {"job": f"rule:{name}:v{version.version}", "status": "started"}


@router.get("/{name}/apply")
def apply_status(tagging: TaggingDep, name: str) -> dict[str, Any]:
    version = tagging.store.rule(name)
    status = tagging.apply_status(f"rule:{name}:v{version.version}")
    if status is None:
        raise NotFound(f"rule {name!r} version {version.version} has not been applied")
    return status
