"""Every audited route writes exactly one audit record per request, with the actor, action,
target, outcome and request id, whether it is granted, denied or fails; and when the record
cannot be written the request fails with a 503 and serves nothing (real ES, S3, Redis; the
audit log under test is in memory so each request's records can be counted exactly)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from archiver import bootstrap
from archiver.access.model import BUILTIN_ROLES
from archiver.audit.log import AuditLog
from archiver.audit.records import AuditAction, AuditRecord, Outcome
from archiver.errors import BackendUnavailable
from archiver.models import Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.settings import Settings
from search_api import audit as audit_deps
from search_api import deps
from search_api.app import create_app
from search_api.auth import CSRF_HEADER
from tests.search_api.test_routes import _api_routes
from tests.support.fakes import InMemoryAuditStore
from tests.support.principals import PASSWORD, add_user, as_role
from ui import pages

pytestmark = pytest.mark.services

RAW = (
    b"Message-ID: <audit-complete@example.cn>\r\nFrom: a@example.cn\r\nTo: b@example.cn\r\n"
    b"Subject: audit completeness\r\nDate: Mon, 3 Jun 2024 10:00:00 +0800\r\n\r\n"
    b"\xe5\x90\x88\xe5\x90\x8c body\r\n"
)
SHA = hashlib.sha256(RAW).hexdigest()
# health; who am I reads nothing; the UI's page shells hold no mail (what a page shows comes
# from the audited routes, fetched by its script: ui/pages.py), nor does the root's redirect
# /metrics: counts and sizes, never mail or settings, scraped every 15 s (a record each would
# bury the ones people need); it still wants a manage_config token unless opened by setting
UNAUDITED = {("GET", "/healthz"), ("GET", "/api/session"), ("GET", "/"), ("GET", "/metrics")} | {
    ("GET", route.path) for route in _api_routes(pages.router.routes)
}
A = AuditAction


@dataclass
class Call:
    method: str
    route: str  # the route's path template, to check that the table covers every route
    path: str
    action: AuditAction
    kwargs: dict[str, Any] = field(default_factory=dict)
    # roles whose principal lacks the route's permission (None: any signed-in user may)
    denied_to: str | None = None
    target: str | None = None
    # the status a granted call answers when it is not a success (still exactly one record)
    fails_with: int | None = None
    # the response's "id" is kept under this name for the later rows' {name} in their path
    keep: str | None = None


# ids of things a row creates; these stand-ins (valid, missing) serve a denied call
PLACEHOLDERS = {
    "run": "run-0000000000",
    "matter": "matter-00000000",
    "hold": "hold-00000000",
    "export": "exp-0000000000",
}


def _calls(username: str) -> list[Call]:
    rule: dict[str, Any] = {
        "when": {"field": "subject", "op": "contains", "value": "audit"},
        "actions": {},
    }
    rule["actions"] = {"add_tags": ["project/审计"]}
    csv = b"address,name,department\na@example.cn,A,HR\n"
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    token = {"name": "t", "permissions": ["search"], "expires_at": expires}
    m = f"/api/messages/{SHA}"
    return [
        Call("GET", "/api/search", "/api/search", A.SEARCH, {"params": {"q": "合同"}}, "auditor"),
        Call("GET", "/api/messages/{message_id}", m, A.VIEW, {}, "auditor", SHA),
        Call("GET", "/api/messages/{message_id}/raw", f"{m}/raw", A.VIEW_RAW, {}, "auditor", SHA),
        Call("GET", "/api/messages/{message_id}/html", f"{m}/html", A.VIEW, {}, "auditor", SHA),
        # the sandboxed frame of the HTML body (ui/mail_frame.py); this message is plain text
        Call(
            "GET",
            "/ui/messages/{message_id}/body",
            f"/ui/messages/{SHA}/body",
            A.VIEW,
            {},
            "auditor",
            SHA,
            fails_with=404,
        ),
        # this message has no attachments: a granted read is a 404, recorded all the same
        Call(
            "GET",
            "/api/messages/{message_id}/attachments/{attachment_id}",
            f"{m}/attachments/{'0' * 64}",
            A.VIEW,
            {},
            "auditor",
            SHA,
            fails_with=404,
        ),
        Call(
            "GET",
            "/api/messages/{message_id}/attachments/{attachment_id}/text",
            f"{m}/attachments/{'0' * 64}/text",
            A.VIEW,
            {},
            "auditor",
            SHA,
            fails_with=404,
        ),
        Call("GET", "/api/threads/{message_id}", f"/api/threads/{SHA}", A.VIEW, {}, "auditor"),
        Call(
            "PUT",
            "/api/saved-searches",
            "/api/saved-searches",
            A.SAVED_SEARCH_CHANGE,
            {"json": {"name": "s", "query": "合同"}},
            "auditor",
        ),
        Call("GET", "/api/saved-searches", "/api/saved-searches", A.CONFIG_READ, {}, "auditor"),
        Call(
            "GET",
            "/api/saved-searches/{name}",
            "/api/saved-searches/s",
            A.CONFIG_READ,
            {},
            "auditor",
        ),
        Call(
            "DELETE",
            "/api/saved-searches/{name}",
            "/api/saved-searches/s",
            A.SAVED_SEARCH_CHANGE,
            {},
            "auditor",
        ),
        Call("GET", "/api/tags", "/api/tags", A.CONFIG_READ, {}, "auditor"),
        Call(
            "PUT",
            "/api/tags/{path:path}",
            "/api/tags/project/x",
            A.TAG_CHANGE,
            {"json": {"description": "d"}},
            "compliance_officer",
        ),
        Call(
            "DELETE",
            "/api/tags/{path:path}",
            "/api/tags/project/x",
            A.TAG_CHANGE,
            {},
            "compliance_officer",
        ),
        Call("GET", "/api/messages/{message_id}/tags", f"{m}/tags", A.VIEW, {}, "auditor", SHA),
        Call(
            "POST",
            "/api/messages/{message_id}/tags",
            f"{m}/tags",
            A.TAG_CHANGE,
            {"json": {"add": ["urgency/high"]}},
            "department_lead",
            SHA,
        ),
        Call(
            "DELETE",
            "/api/messages/{message_id}/tags/{tag:path}",
            f"{m}/tags/urgency/high",
            A.TAG_CHANGE,
            {},
            "auditor",
            SHA,
        ),
        Call("GET", "/api/rules", "/api/rules", A.CONFIG_READ, {}, "compliance_officer"),
        Call(
            "POST",
            "/api/rules/preview",
            "/api/rules/preview",
            A.CONFIG_READ,
            {"json": {"name": "r", **rule}},
            "legal",
        ),
        Call("PUT", "/api/rules/{name}", "/api/rules/r", A.RULE_CHANGE, {"json": rule}, "legal"),
        Call("GET", "/api/rules/{name}", "/api/rules/r", A.CONFIG_READ, {}, "legal"),
        Call(
            "GET", "/api/rules/{name}/versions", "/api/rules/r/versions", A.CONFIG_READ, {}, "legal"
        ),
        Call(
            "POST", "/api/rules/{name}/preview", "/api/rules/r/preview", A.CONFIG_READ, {}, "legal"
        ),
        Call(
            "POST",
            "/api/rules/{name}/apply",
            "/api/rules/r/apply",
            A.RULE_CHANGE,
            {"params": {"wait": "true"}},
            "legal",
        ),
        Call("GET", "/api/rules/{name}/apply", "/api/rules/r/apply", A.CONFIG_READ, {}, "legal"),
        Call("DELETE", "/api/rules/{name}", "/api/rules/r", A.RULE_CHANGE, {}, "legal"),
        Call("GET", "/api/directory", "/api/directory", A.CONFIG_READ, {}, "legal"),
        Call(
            "POST",
            "/api/directory/import",
            "/api/directory/import",
            A.CONFIG_CHANGE,
            {"content": csv, "headers": {"content-type": "text/csv"}},
            "legal",
        ),
        Call(
            "GET",
            "/api/directory/people/{address}",
            "/api/directory/people/a@example.cn",
            A.CONFIG_READ,
            {},
            "legal",
        ),
        Call(
            "POST", "/api/directory/preview", "/api/directory/preview", A.CONFIG_READ, {}, "legal"
        ),
        Call("POST", "/api/directory/apply", "/api/directory/apply", A.CONFIG_CHANGE, {}, "legal"),
        Call("POST", "/api/tokens", "/api/tokens", A.TOKEN_CHANGE, {"json": token}),
        Call("GET", "/api/tokens", "/api/tokens", A.CONFIG_READ),
        Call("DELETE", "/api/tokens/{token_id}", "/api/tokens/0000", A.TOKEN_CHANGE),
        Call("GET", "/api/users", "/api/users", A.CONFIG_READ, {}, "legal"),
        Call(
            "POST",
            "/api/users",
            "/api/users",
            A.USER_CHANGE,
            {"json": {"username": f"{username}-made", "roles": ["auditor"]}},
            "legal",
        ),
        Call(
            "PATCH",
            "/api/users/{username}",
            f"/api/users/{username}-made",
            A.USER_CHANGE,
            {"json": {"disabled": True}},
            "legal",
        ),
        Call(
            "PUT",
            "/api/users/{username}/password",
            f"/api/users/{username}-made/password",
            A.USER_CHANGE,
            {"json": {"password": "a long enough password"}},
            "legal",
        ),
        Call("GET", "/api/roles", "/api/roles", A.CONFIG_READ, {}, "legal"),
        Call("GET", "/api/status", "/api/status", A.CONFIG_READ, {}, "legal", "status"),
        Call(
            "PUT",
            "/api/roles/{name}",
            "/api/roles/reader",
            A.ROLE_CHANGE,
            {"json": {"permissions": ["search"]}},
            "legal",
        ),
        Call("DELETE", "/api/roles/{name}", "/api/roles/reader", A.ROLE_CHANGE, {}, "legal"),
        Call("GET", "/api/audit", "/api/audit", A.AUDIT_SEARCH, {}, "compliance_officer"),
        Call(
            "GET",
            "/api/audit/export",
            "/api/audit/export",
            A.AUDIT_EXPORT,
            {"params": {"format": "json"}},
            "compliance_officer",
        ),
        Call("GET", "/api/audit/verify", "/api/audit/verify", A.AUDIT_VERIFY, {}, "legal"),
        *_retention_calls(),
        *_export_calls(),
        Call("DELETE", "/api/session", "/api/session", A.SIGN_OUT),
    ]


def _retention_calls() -> list[Call]:
    """Retention (manage_retention: legal lacks it) and holds (manage_holds: a compliance
    officer lacks it), on the session's archive: the policy keeps and is deleted again, the
    hold is released and its matter closed, so later tests see the default alone."""
    policy = {"criteria": {"query": "audit completeness"}, "action": "keep"}
    pol, runs = "/api/retention/policies", "/api/retention/runs"
    wait = {"params": {"wait": "true"}}
    hold = {"name": "h", "custodians": {"addresses": ["a@example.cn"]}, "query": "合同"}
    return [
        Call("GET", pol, pol, A.CONFIG_READ, {}, "legal"),
        Call(
            "POST",
            f"{pol}/preview",
            f"{pol}/preview",
            A.CONFIG_READ,
            {"json": {"name": "audit-keep", **policy}},
            "legal",
        ),
        Call(
            "PUT",
            f"{pol}/{{name}}",
            f"{pol}/audit-keep",
            A.RETENTION_CHANGE,
            {"json": policy},
            "legal",
            "policy:audit-keep",
        ),
        Call("GET", f"{pol}/{{name}}", f"{pol}/audit-keep", A.CONFIG_READ, {}, "legal"),
        Call(
            "GET",
            f"{pol}/{{name}}/versions",
            f"{pol}/audit-keep/versions",
            A.CONFIG_READ,
            {},
            "legal",
        ),
        Call(
            "POST",
            "/api/retention/recompute",
            "/api/retention/recompute",
            A.RETENTION_CHANGE,
            wait,
            "legal",
        ),
        Call(
            "GET",
            "/api/retention/recompute",
            "/api/retention/recompute",
            A.CONFIG_READ,
            {},
            "legal",
        ),
        # nothing in the session's archive is due: the run is approved, runs, deletes nothing
        Call("POST", runs, runs, A.RETENTION_CHANGE, {"json": {"wait": True}}, "legal", keep="run"),
        Call("GET", runs, runs, A.CONFIG_READ, {}, "legal"),
        Call("GET", f"{runs}/{{run_id}}", f"{runs}/{{run}}", A.CONFIG_READ, {}, "legal"),
        # a run already done can be neither approved nor cancelled: a 422, recorded as failed
        Call(
            "POST",
            f"{runs}/{{run_id}}/approve",
            f"{runs}/{{run}}/approve",
            A.RETENTION_CHANGE,
            {},
            "legal",
            fails_with=422,
        ),
        Call(
            "POST",
            f"{runs}/{{run_id}}/cancel",
            f"{runs}/{{run}}/cancel",
            A.RETENTION_CHANGE,
            {},
            "legal",
            fails_with=422,
        ),
        Call(
            "GET",
            "/api/retention/tombstones/{message_id}",
            f"/api/retention/tombstones/{SHA}",
            A.CONFIG_READ,
            {},
            "legal",
            SHA,
            fails_with=404,  # nothing was disposed
        ),
        Call("DELETE", f"{pol}/{{name}}", f"{pol}/audit-keep", A.RETENTION_CHANGE, {}, "legal"),
        Call(
            "GET",
            "/api/messages/{message_id}/retention",
            f"/api/messages/{SHA}/retention",
            A.VIEW,
            {},
            "auditor",
            SHA,
        ),
        Call("GET", "/api/matters", "/api/matters", A.CONFIG_READ, {}, "compliance_officer"),
        Call(
            "POST",
            "/api/matters",
            "/api/matters",
            A.HOLD_CHANGE,
            {"json": {"name": "audit matter"}},
            "compliance_officer",
            keep="matter",
        ),
        Call(
            "GET",
            "/api/matters/{matter_id}",
            "/api/matters/{matter}",
            A.CONFIG_READ,
            {},
            "compliance_officer",
        ),
        Call(
            "POST",
            "/api/matters/{matter_id}/holds",
            "/api/matters/{matter}/holds",
            A.HOLD_CHANGE,
            {"json": hold},
            "compliance_officer",
            keep="hold",
        ),
        Call(
            "POST",
            "/api/holds/preview",
            "/api/holds/preview",
            A.CONFIG_READ,
            {"json": hold},
            "compliance_officer",
            "hold-preview",
        ),
        Call(
            "GET",
            "/api/holds/{hold_id}",
            "/api/holds/{hold}",
            A.CONFIG_READ,
            {},
            "compliance_officer",
        ),
        Call(
            "POST",
            "/api/holds/{hold_id}/release",
            "/api/holds/{hold}/release",
            A.HOLD_CHANGE,
            {"json": {"reason": "audit test done"}},
            "compliance_officer",
        ),
        Call(
            "PATCH",
            "/api/matters/{matter_id}",
            "/api/matters/{matter}",
            A.HOLD_CHANGE,
            {"json": {"status": "closed"}},
            "compliance_officer",
        ),
    ]


def _export_calls() -> list[Call]:
    """Exports (export: a compliance officer lacks it), of the session's one message by id:
    built at once by the service's enqueue, downloaded, then too late to cancel. The public key
    is for anyone signed in."""
    exports, one = "/api/exports", "/api/exports/{export_id}"
    request = {"name": "审计 audit", "kind": "ids", "ids": [SHA]}
    officer = "compliance_officer"
    return [
        Call("POST", exports, exports, A.EXPORT, {"json": request}, officer, keep="export"),
        Call("GET", exports, exports, A.EXPORT, {}, officer, "exports"),
        Call("GET", f"{exports}/pubkey", f"{exports}/pubkey", A.CONFIG_READ),
        Call("GET", one, f"{exports}/{{export}}", A.EXPORT, {}, officer),
        Call(
            "GET",
            f"{one}/parts/{{number}}",
            f"{exports}/{{export}}/parts/1",
            A.EXPORT,
            {},
            officer,
        ),
        Call("GET", f"{one}/custody", f"{exports}/{{export}}/custody", A.EXPORT, {}, officer),
        # built already: too late to cancel, a 422 recorded as failed
        Call(
            "POST",
            f"{one}/cancel",
            f"{exports}/{{export}}/cancel",
            A.EXPORT,
            {},
            officer,
            fails_with=422,
        ),
    ]


@dataclass
class World:
    app: FastAPI
    log: AuditLog
    settings: Settings
    username: str

    def records(self) -> list[AuditRecord]:
        return list(self.log.records())

    def one_new_record(self, before: int) -> AuditRecord:
        records = self.records()
        assert len(records) == before + 1, [
            (r.action.value, r.outcome.value) for r in records[before:]
        ]
        return records[-1]


@pytest.fixture(scope="module")
def world(archiver: Archiver, settings: Settings) -> Iterator[World]:
    source = Source(kind="import", detail="audit-completeness", received_at=datetime.now(UTC))
    assert archiver.ingest_many([Incoming(RAW, source)])[0].status in ("imported", "duplicate")
    archiver.index.refresh()
    log = AuditLog(InMemoryAuditStore(), bootstrap.audit_index(settings))
    app = create_app()
    app.dependency_overrides[audit_deps.get_audit_log] = lambda: log
    # built in the request, not by Celery: the builder's own records go to the session's S3
    # log, never this in-memory one, so each request still counts exactly one
    builder = bootstrap.export_builder(settings)

    def build_now(export_id: str) -> None:
        # as the Celery task does: a backend away for a moment is retried, anything else stays
        # with the job (and a download's 409 says what it was)
        for attempt in range(3):
            try:
                builder.build(export_id)
                return
            except BackendUnavailable:
                if attempt == 2:
                    raise

    exports = bootstrap.exports(settings, build_now)
    app.dependency_overrides[deps.get_exports] = lambda: exports
    username = add_user(settings, list(BUILTIN_ROLES))
    yield World(app, log, settings, username)


def _signed_in(world: World) -> tuple[TestClient, AuditRecord]:
    client = TestClient(world.app, base_url="https://testserver")
    before = len(world.records())
    response = client.post("/api/session", json={"username": world.username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    client.headers[CSRF_HEADER] = response.json()["csrf_token"]
    return client, world.one_new_record(before)


def test_the_table_covers_every_route_of_the_app(world: World) -> None:
    routes = {
        (method, route.path)
        for route in _api_routes(world.app.routes)
        for method in route.methods or ()
        if method != "HEAD"
    }
    covered = {(c.method, c.route) for c in _calls(world.username)} | {("POST", "/api/session")}
    assert routes - UNAUDITED == covered, "a new route needs its row here"


def test_every_granted_request_writes_exactly_one_record(world: World) -> None:
    client, sign_in = _signed_in(world)
    assert (sign_in.action, sign_in.outcome, sign_in.actor) == (
        A.SIGN_IN,
        Outcome.SUCCESS,
        world.username,
    )
    roles = set(sign_in.actor_roles)
    made: dict[str, str] = {}
    for call in _calls(world.username):
        before = len(world.records())
        response = client.request(call.method, call.path.format_map(made), **call.kwargs)
        if call.keep is not None and response.status_code in (200, 202):
            made[call.keep] = response.json()["id"]
        record = world.one_new_record(before)
        where = f"{call.method} {call.path} -> {response.status_code} {response.text[:200]}"
        assert record.action == call.action, where
        assert record.actor == world.username and set(record.actor_roles) == roles, where
        assert record.client == "testclient", where
        assert record.request_id == response.headers["x-request-id"], where
        if call.target is not None:
            assert record.target == call.target, where
        expected = Outcome.SUCCESS if response.status_code < 400 else Outcome.FAILED
        assert record.outcome == expected, where
        # every row is meant to succeed but revoking a token that does not exist and the
        # rows that say how they fail
        if call.fails_with is not None:
            assert response.status_code == call.fails_with, where
        else:
            assert response.status_code < 400 or call.path == "/api/tokens/0000", where


def test_a_search_record_says_what_was_asked_and_what_was_shown(world: World) -> None:
    client = TestClient(world.app, headers=as_role(world.settings, "compliance_officer"))
    before = len(world.records())
    response = client.get("/api/search", params={"q": "合同", "size": 5})
    record = world.one_new_record(before)
    assert record.details["q"] == "合同"
    assert record.details["total"] == response.json()["total"] >= 1
    assert record.details["hits"] == [h["id"] for h in response.json()["hits"]]


@pytest.mark.parametrize("role", ["auditor", "compliance_officer", "legal", "department_lead"])
def test_every_denied_request_writes_exactly_one_denied_record(world: World, role: str) -> None:
    client = TestClient(world.app, headers=as_role(world.settings, role))
    for call in _calls(world.username):
        if call.denied_to != role:
            continue
        before = len(world.records())
        response = client.request(call.method, call.path.format_map(PLACEHOLDERS), **call.kwargs)
        assert response.status_code == 403, f"{call.method} {call.path}: {response.text}"
        record = world.one_new_record(before)
        assert (record.action, record.outcome) == (call.action, Outcome.DENIED)
        assert record.details["error"] == "PermissionDenied"


def test_failed_sign_ins_are_recorded_under_the_name_tried(world: World) -> None:
    client = TestClient(world.app, base_url="https://testserver")
    before = len(world.records())
    response = client.post(
        "/api/session", json={"username": world.username, "password": "not the password"}
    )
    assert response.status_code == 401
    record = world.one_new_record(before)
    assert (record.action, record.outcome, record.actor) == (
        A.SIGN_IN_FAILED,
        Outcome.FAILED,
        world.username,
    )
    assert record.details["error"] == "SignInFailed"


def test_a_request_whose_record_cannot_be_written_is_a_503_and_serves_nothing(
    world: World, settings: Settings
) -> None:
    store = InMemoryAuditStore()
    store.faults.unavailable = True
    app = create_app()
    app.dependency_overrides[audit_deps.get_audit_log] = lambda: AuditLog(store)
    client = TestClient(app, headers=as_role(settings, "compliance_officer"))
    for path in ["/api/search?q=合同", f"/api/messages/{SHA}", f"/api/messages/{SHA}/raw"]:
        response = client.get(path)
        assert response.status_code == 503, path
        assert response.json()["error"] == "BackendUnavailable"
        assert "audit record could not be written" in response.json()["message"]
        assert SHA not in response.text and b"body" not in response.content
    assert store.records == {}
