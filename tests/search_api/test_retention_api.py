"""The retention and legal hold API against the real services, on an archive of its own (every
count here is of exactly this module's mail): versioned policies with clear 4xx errors, the dry
run and who sees its samples, the recompute, one message's explanation and who may ask for it,
the second-person approval of a disposition run and what it leaves behind (tombstones, audit
records), matters and holds, and which role may call which route.

The tests run in file order on one archive: the disposition test deletes the old newsletters,
the matter test holds the contract mail."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from archiver import bootstrap
from archiver.access.model import Permission, Role
from archiver.audit.log import AuditLog
from archiver.audit.records import AuditAction, Outcome
from archiver.holds.service import HoldService
from archiver.models import Source
from archiver.pipeline.archiver import Incoming
from archiver.retention.disposition import Disposition
from archiver.settings import Settings
from bench.cleanup import throwaway_archive, throwaway_settings
from search_api import auth, deps
from search_api.app import create_app
from search_api.audit import get_audit_log
from tests.support.fakes import InMemoryAuditStore
from tests.support.principals import add_user, as_role, bearer

pytestmark = pytest.mark.services

OLD = "Mon, 3 Jun 2019 10:00:00 +0800"  # past a one-year policy: due for disposition at once
RECENT = "Mon, 3 Jun 2024 10:00:00 +0800"
SALES = "销售部"
RETENTION_ONLY = "retention-only"  # a custom role: manage_retention, and no reading of mail


def _mail(n: int, subject: str, sender: str, date: str) -> bytes:
    return (
        f"Message-ID: <retapi-{n}@retapi.example>\r\nFrom: {sender}\r\nTo: b@retapi.example\r\n"
        f"Subject: {subject}\r\nDate: {date}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"\r\n{subject} 正文\r\n"
    ).encode()


NEWS = [_mail(i, f"RETAPI newsletter {i}", "news@letters.retapi.example", OLD) for i in (1, 2)]
CONTRACT = _mail(3, "RETAPI 合同 审批", "zhang@sales.retapi.example", RECENT)
LUNCH = _mail(4, "RETAPI 午饭", "li@hr.retapi.example", RECENT)
NEWS_IDS = [hashlib.sha256(r).hexdigest() for r in NEWS]
CONTRACT_ID, LUNCH_ID = (hashlib.sha256(r).hexdigest() for r in (CONTRACT, LUNCH))
NEWSLETTERS = {
    "criteria": {"query": "newsletter"},
    "period": {"amount": 1, "unit": "years"},
    "action": "delete",
}


@dataclass
class World:
    client: TestClient  # a compliance officer
    settings: Settings  # the session's: the app signs users in there
    log: AuditLog  # the app's requests and the disposition's own records

    def as_role(self, *roles: str, departments: tuple[str, ...] = ()) -> TestClient:
        return TestClient(
            self.client.app, headers=as_role(self.settings, *roles, departments=departments)
        )


@pytest.fixture(scope="module")
def world(settings: Settings, backends: None) -> Iterator[World]:
    own = throwaway_settings(settings, f"{settings.es_index}-retapi").model_copy(
        # two newsletters are due: a run deleting them needs a second person
        update={"retention_approval_limit": 1}
    )
    with throwaway_archive(own) as archiver:
        bootstrap.tagging(own).import_directory(
            f"address,name,department\nzhang@sales.retapi.example,Zhang,{SALES}\n".encode(), "csv"
        )
        retention = bootstrap.retention(own)
        # saved before the mail arrives: the default's rolling lock would otherwise keep it
        retention.save_policy({"name": "newsletters", **NEWSLETTERS}, "fixture")
        source = Source(kind="import", detail="retention-api", received_at=datetime.now(UTC))
        outcomes = archiver.ingest_many([Incoming(r, source) for r in [*NEWS, CONTRACT, LUNCH]])
        assert {o.status for o in outcomes} == {"imported"}
        archiver.index.refresh()
        log = AuditLog(InMemoryAuditStore(), bootstrap.audit_index(own))
        holds = HoldService(retention)
        disposition = Disposition(retention, log, bootstrap.spooled_messages(own))
        app = create_app()
        app.dependency_overrides |= {
            deps.get_index: lambda: archiver.index,
            deps.get_retention: lambda: retention,
            deps.get_holds: lambda: holds,
            deps.get_disposition: lambda: disposition,
            get_audit_log: lambda: log,
        }
        bootstrap.user_directory(settings).save_role(
            Role(name=RETENTION_ONLY, permissions=frozenset({Permission.MANAGE_RETENTION}))
        )
        auth.sign_in_service().forget()  # the process's cached roles must include the new one
        with TestClient(app, headers=as_role(settings, "compliance_officer")) as client:
            yield World(client, settings, log)


def test_policies_are_saved_in_versions(world: World) -> None:
    client = world.client
    keep = {"criteria": {"query": "合同"}, "period": {"amount": 10, "unit": "years"}}
    first = client.put("/api/retention/policies/contracts", json={**keep, "action": "keep"})
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1
    assert first.json()["saved_by"].startswith("u-complian")  # the signed-in user
    longer = {**keep, "period": {"amount": 30, "unit": "years"}, "action": "keep"}
    assert client.put("/api/retention/policies/contracts", json=longer).json()["version"] == 2
    latest = client.get("/api/retention/policies/contracts").json()
    assert (latest["version"], latest["policy"]["period"]) == (2, {"amount": 30, "unit": "years"})
    v1 = client.get("/api/retention/policies/contracts", params={"version": 1}).json()
    assert v1["policy"]["period"] == {"amount": 10, "unit": "years"}
    listed = [p["name"] for p in client.get("/api/retention/policies").json()]
    assert listed[0] == "default" and {"newsletters", "contracts"} <= set(listed)
    client.put("/api/retention/policies/scratch", json={**keep, "action": "keep"})
    deleted = client.delete("/api/retention/policies/scratch").json()
    assert (deleted["version"], deleted["policy"]) == (2, None)
    assert client.get("/api/retention/policies/scratch").status_code == 404
    history = client.get("/api/retention/policies/scratch/versions").json()
    assert [(v["version"], v["policy"] is None) for v in history] == [(1, False), (2, True)]
    assert client.delete("/api/retention/policies/default").status_code == 422
    assert client.get("/api/retention/policies/nothing-here").status_code == 404


def test_invalid_policies_are_clear_4xx_and_save_nothing(world: World) -> None:
    client = world.client
    bad_query = client.put(
        "/api/retention/policies/broken",
        json={"criteria": {"query": "合同 from:"}, "action": "keep"},
    )
    assert bad_query.status_code == 400, bad_query.text
    assert bad_query.json()["error"] == "InvalidQuery"
    assert isinstance(bad_query.json()["position"], int)
    no_period = client.put("/api/retention/policies/broken", json={"action": "delete"})
    assert no_period.status_code == 422
    assert no_period.json()["error"] == "InvalidRetention"
    assert "a policy that deletes needs a period" in no_period.json()["message"]
    endless = {"period": {"amount": 99_999, "unit": "years"}, "action": "delete"}
    too_long = client.put("/api/retention/policies/broken", json=endless)
    assert too_long.status_code == 422 and "at most 1000 years" in too_long.text
    assert client.get("/api/retention/policies/broken/versions").status_code == 404


def test_preview_counts_for_anyone_and_samples_only_for_whole_archive_readers(
    world: World,
) -> None:
    draft = {
        "name": "lunch",
        "criteria": {"query": "午饭"},
        "period": {"amount": 1, "unit": "years"},
        "action": "delete",
    }
    officer = world.client.post("/api/retention/policies/preview", json=draft)
    assert officer.status_code == 200, officer.text
    preview = officer.json()
    assert (preview["matched"], preview["changed"], preview["shorter"]) == (1, 1, 1)
    assert preview["by_month"] == {"2024-06": 1}
    assert [s["id"] for s in preview["samples"]] == [LUNCH_ID]
    manager = world.as_role(RETENTION_ONLY).post("/api/retention/policies/preview", json=draft)
    assert manager.status_code == 200, manager.text
    assert {k: v for k, v in manager.json().items() if k != "samples"} == {
        k: v for k, v in preview.items() if k != "samples"
    }
    assert manager.json()["samples"] == []
    assert world.client.get("/api/retention/policies/lunch").status_code == 404


def test_a_saved_policy_is_followed_by_a_finished_recompute(world: World) -> None:
    client = world.client
    saved = client.put(
        "/api/retention/policies/lunch-keep",
        json={
            "criteria": {"query": "午饭"},
            "period": {"amount": 5, "unit": "years"},
            "action": "keep",
        },
    )
    assert saved.status_code == 200
    status = client.get("/api/retention/recompute").json()
    assert status["status"] == "done" and status["failed"] == 0
    assert status["scanned"] == status["total"] == 4
    explained = client.get(f"/api/messages/{LUNCH_ID}/retention").json()
    assert explained["winner"] == "lunch-keep@v1" and explained["stored_up_to_date"]
    again = client.post("/api/retention/recompute", params={"wait": "true"}).json()
    assert (again["status"], again["generation"]) == ("done", status["generation"])


def test_explanation_names_the_winner_and_answers_only_those_who_may_read(world: World) -> None:
    path = f"/api/messages/{CONTRACT_ID}/retention"
    explained = world.client.get(path)
    assert explained.status_code == 200, explained.text
    body = explained.json()
    assert body["winner"] == "contracts@v2" and body["forever"]
    assert [(m["policy"], m["won"]) for m in body["matched"]] == [("contracts@v2", True)]
    assert (body["default_applies"], body["holds"]) == (False, [])
    assert world.as_role("department_lead", departments=(SALES,)).get(path).status_code == 200
    outside = world.as_role("department_lead", departments=("人事部",)).get(path)
    assert outside.status_code == 404
    assert world.client.get(f"/api/messages/{'0' * 64}/retention").status_code == 404
    assert world.as_role("auditor").get(path).status_code == 403


def test_a_run_over_the_limit_needs_a_second_person(world: World) -> None:
    alice, bob = (
        add_user(world.settings, ["compliance_officer"]),
        add_user(world.settings, ["compliance_officer"]),
    )
    as_alice = TestClient(world.client.app, headers=bearer(world.settings, alice))
    as_bob = TestClient(world.client.app, headers=bearer(world.settings, bob))
    requested = as_alice.post("/api/retention/runs", json={"wait": True})
    assert requested.status_code == 200, requested.text
    run = requested.json()
    assert (run["status"], run["planned"], run["requested_by"]) == (
        "awaiting_approval",
        2,
        alice,
    )
    assert {s["id"] for s in run["samples"]} == set(NEWS_IDS)
    own = as_alice.post(f"/api/retention/runs/{run['id']}/approve")
    assert own.status_code == 422 and "a second person must approve" in own.json()["message"]
    approved = as_bob.post(f"/api/retention/runs/{run['id']}/approve", params={"wait": "true"})
    assert approved.status_code == 200, approved.text
    done = approved.json()
    assert (done["status"], done["deleted"], done["failed"], done["approved_by"]) == (
        "done",
        2,
        0,
        bob,
    )
    assert world.client.get(f"/api/retention/runs/{run['id']}").json()["status"] == "done"
    for doc_id in NEWS_IDS:
        [tombstone] = world.client.get(f"/api/retention/tombstones/{doc_id}").json()
        assert (tombstone["run_id"], tombstone["approved_by"]) == (run["id"], bob)
        assert tombstone["policy"] == "newsletters@v1"
        assert world.client.get(f"/api/messages/{doc_id}/retention").status_code == 404
    assert world.client.get(f"/api/retention/tombstones/{CONTRACT_ID}").status_code == 404
    records = list(world.log.records())
    disposed = [r for r in records if r.action == AuditAction.DISPOSE]
    assert {r.target for r in disposed} == set(NEWS_IDS)
    assert {(r.actor, r.details["requested_by"], r.details["run"]) for r in disposed} == {
        (bob, alice, run["id"])
    }
    [approval] = [
        r
        for r in records
        if r.action == AuditAction.RETENTION_CHANGE
        and r.target == f"run:{run['id']}"
        and r.outcome == Outcome.SUCCESS
        and r.details.get("approve")
    ]
    assert (approval.actor, approval.details["requested_by"]) == (bob, alice)


def test_matters_and_holds(world: World) -> None:
    legal = world.as_role("legal")
    created = legal.post("/api/matters", json={"name": "RETAPI 诉讼", "case_number": "2026-7"})
    assert created.status_code == 200, created.text
    matter = created.json()["id"]
    hold = {"name": "zhang", "custodians": {"addresses": ["Zhang@sales.retapi.example"]}}
    # the preview counts by the hold's own query: what it will cover, before it is added
    preview = legal.post("/api/holds/preview", json={**hold, "query": "合同"})
    assert preview.status_code == 200 and preview.json() == {"matching": 1}, preview.text
    unnamed = legal.post("/api/holds/preview", json={"custodians": hold["custodians"]})
    assert unnamed.json() == {"matching": 1}, unnamed.text
    bad = legal.post("/api/holds/preview", json={"query": "from:"})
    assert bad.status_code == 400 and "position" in bad.json(), bad.text
    assert legal.post("/api/holds/preview", json={}).status_code == 422
    added = legal.post(f"/api/matters/{matter}/holds", json={**hold, "query": "合同"})
    assert added.status_code == 200, added.text
    hold_id = added.json()["id"]
    assert added.json()["custodians"]["addresses"] == ["zhang@sales.retapi.example"]
    world.client.post("/api/retention/recompute", params={"wait": "true"})
    detail = legal.get(f"/api/matters/{matter}").json()
    assert detail["matter"]["holds"][hold_id]["status"] == "active"
    assert [(c["hold"], c["held"], c["matching"]) for c in detail["counts"]] == [(hold_id, 1, 1)]
    explained = world.client.get(f"/api/messages/{CONTRACT_ID}/retention").json()
    assert [h["id"] for h in explained["holds"]] == [hold_id]
    assert explained["storage"]["legal_hold"] and explained["reason"].startswith("held by")
    closing = legal.patch(f"/api/matters/{matter}", json={"status": "closed"})
    assert closing.status_code == 422 and "release its holds" in closing.json()["message"]
    assert legal.post(f"/api/holds/{hold_id}/release", json={}).status_code == 422
    assert legal.post(f"/api/holds/{hold_id}/release", json={"reason": ""}).status_code == 422
    assert legal.post(f"/api/holds/{hold_id}/release", json={"reason": "  "}).status_code == 422
    released = legal.post(f"/api/holds/{hold_id}/release", json={"reason": "settled"})
    assert released.status_code == 200, released.text
    assert (released.json()["status"], released.json()["release_reason"]) == ("released", "settled")
    assert legal.get(f"/api/holds/{hold_id}").json()["status"] == "released"
    counts = legal.get(f"/api/matters/{matter}").json()["counts"]
    assert [(c["held"], c["matching"]) for c in counts] == [(0, 0)]
    assert not world.client.get(f"/api/messages/{CONTRACT_ID}/retention").json()["holds"]
    closed = legal.patch(f"/api/matters/{matter}", json={"status": "closed"})
    assert closed.status_code == 200 and closed.json()["closed_at"] is not None
    assert legal.post(f"/api/matters/{matter}/holds", json=hold).status_code == 422
    assert legal.get("/api/matters/matter-00000000").status_code == 404


RETENTION, HOLDS = "manage_retention", "manage_holds"
POLICY = {"criteria": {"query": "matrix"}, "action": "keep"}
# every retention and hold route: which permission it needs, called with ids that exist nowhere
# (the permission is checked first) and bodies that change nothing this module counts
ROUTES: list[tuple[str, str, dict[str, Any], str]] = [
    ("GET", "/api/retention/policies", {}, RETENTION),
    ("POST", "/api/retention/policies/preview", {"json": {"name": "m", **POLICY}}, RETENTION),
    ("GET", "/api/retention/policies/matrix", {}, RETENTION),
    ("GET", "/api/retention/policies/matrix/versions", {}, RETENTION),
    ("PUT", "/api/retention/policies/matrix", {"json": POLICY}, RETENTION),
    ("DELETE", "/api/retention/policies/matrix", {}, RETENTION),
    ("POST", "/api/retention/recompute", {"params": {"wait": "true"}}, RETENTION),
    ("GET", "/api/retention/recompute", {}, RETENTION),
    ("GET", "/api/retention/runs", {}, RETENTION),
    ("POST", "/api/retention/runs", {"json": {"dry_run": True}}, RETENTION),
    ("GET", "/api/retention/runs/run-0000000000", {}, RETENTION),
    ("POST", "/api/retention/runs/run-0000000000/approve", {}, RETENTION),
    ("POST", "/api/retention/runs/run-0000000000/cancel", {}, RETENTION),
    ("GET", f"/api/retention/tombstones/{'0' * 64}", {}, RETENTION),
    ("GET", "/api/matters", {}, HOLDS),
    ("POST", "/api/matters", {"json": {"name": "matrix"}}, HOLDS),
    ("GET", "/api/matters/matter-00000000", {}, HOLDS),
    ("PATCH", "/api/matters/matter-00000000", {"json": {"name": "m"}}, HOLDS),
    ("POST", "/api/matters/matter-00000000/holds", {"json": {"name": "m", "query": "x"}}, HOLDS),
    ("POST", "/api/holds/preview", {"json": {"query": "matrix"}}, HOLDS),
    ("GET", "/api/holds/hold-00000000", {}, HOLDS),
    ("POST", "/api/holds/hold-00000000/release", {"json": {"reason": "r"}}, HOLDS),
]
HOLDER = {RETENTION: "compliance_officer", HOLDS: "legal"}
LACKING = {RETENTION: "legal", HOLDS: "compliance_officer"}


def test_each_route_is_for_the_role_with_its_permission(world: World) -> None:
    clients = {role: world.as_role(role) for role in ("legal", "compliance_officer")}
    for method, path, kwargs, permission in ROUTES:
        denied = clients[LACKING[permission]].request(method, path, **kwargs)
        assert denied.status_code == 403, f"{LACKING[permission]} {method} {path}: {denied.text}"
        assert denied.json()["error"] == "PermissionDenied"
        granted = clients[HOLDER[permission]].request(method, path, **kwargs)
        assert granted.status_code in (200, 404), f"{method} {path}: {granted.text}"
