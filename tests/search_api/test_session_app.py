"""A browser's round trip through the real app: sign in with the real sign-in service (local
user, Argon2id, Redis session), CSRF on every state change, sign-out revokes, an administrator
disabling a user ends their session at once (real S3, Redis, Elasticsearch)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from archiver.settings import Settings
from search_api.app import create_app
from search_api.auth import CSRF_HEADER
from tests.support.principals import PASSWORD, add_user, as_role, bearer

pytestmark = [pytest.mark.services, pytest.mark.usefixtures("backends")]


def _browser() -> TestClient:
    # https: the session cookie is Secure, and httpx (like a browser) keeps it off plain HTTP
    return TestClient(create_app(), base_url="https://testserver")


def _sign_in(client: TestClient, username: str) -> str:
    response = client.post("/api/session", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
    csrf: str = response.json()["csrf_token"]
    return csrf


def test_a_session_reads_and_changes_only_with_its_csrf_token(settings: Settings) -> None:
    browser = _browser()
    username = add_user(settings, ["compliance_officer"])
    csrf = _sign_in(browser, username)
    assert browser.get("/api/session").json()["username"] == username
    assert browser.get("/api/search", params={"q": "合同"}).status_code == 200
    body = {"name": "mine", "query": "合同"}
    refused = browser.put("/api/saved-searches", json=body)
    assert refused.status_code == 403 and refused.json()["error"] == "CsrfRejected"
    wrong = browser.put("/api/saved-searches", json=body, headers={CSRF_HEADER: "x" * 43})
    assert wrong.status_code == 403
    saved = browser.put("/api/saved-searches", json=body, headers={CSRF_HEADER: csrf})
    assert saved.status_code == 200 and saved.json()["owner"] == username
    assert browser.delete("/api/session", headers={CSRF_HEADER: csrf}).status_code == 204
    assert browser.get("/api/search", params={"q": "合同"}).status_code == 401


def test_disabling_a_user_ends_their_session_at_once(settings: Settings) -> None:
    browser = _browser()
    username = add_user(settings, ["legal"])
    _sign_in(browser, username)
    assert browser.get("/api/search").status_code == 200
    admin = TestClient(create_app(), headers=as_role(settings, "admin"))
    assert admin.patch(f"/api/users/{username}", json={"disabled": True}).status_code == 200
    assert browser.get("/api/search").status_code == 401
    again = _browser().post("/api/session", json={"username": username, "password": PASSWORD})
    assert again.status_code == 403 and again.json()["error"] == "AccountDisabled"


def test_a_role_change_applies_to_the_next_request(settings: Settings) -> None:
    username = add_user(settings, ["auditor"])
    browser = _browser()
    _sign_in(browser, username)
    assert browser.get("/api/search").status_code == 403
    admin = TestClient(create_app(), headers=as_role(settings, "admin"))
    changed = admin.patch(f"/api/users/{username}", json={"roles": ["compliance_officer"]})
    assert changed.status_code == 200 and changed.json()["roles"] == ["compliance_officer"]
    assert browser.get("/api/search").status_code == 200


def test_nobody_changes_their_own_roles(settings: Settings) -> None:
    username = add_user(settings, ["admin"])
    admin = TestClient(create_app(), headers=bearer(settings, username))
    grab = admin.patch(f"/api/users/{username}", json={"roles": ["admin", "compliance_officer"]})
    assert grab.status_code == 403 and grab.json()["error"] == "PermissionDenied"
    assert admin.get("/api/search").status_code == 403  # still reads no mail
    other = add_user(settings, ["admin"])  # a second administrator may, and is audited
    second = TestClient(create_app(), headers=bearer(settings, other))
    given = second.patch(f"/api/users/{username}", json={"roles": ["compliance_officer"]})
    assert given.status_code == 200
