"""Sign-in, sessions, CSRF and API tokens through FastAPI, on a tiny app with protected probe
routes and in-memory users, against the real Redis and S3 (tests/search_api/test_session_app.py
does the same through the real app and the real sign-in service)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from archiver import bootstrap
from archiver.access.model import BUILTIN_ROLES, Permission, Principal
from archiver.access.sessions import Sessions, SessionTimeouts, secret_hash
from archiver.access.tokens import ID_CHARS, ApiTokens
from archiver.settings import Settings
from search_api import auth
from search_api.app import install_error_handlers
from search_api.auth import CSRF_HEADER, CookieSettings, CurrentUser, require
from search_api.routers import session
from tests.support.fakes import InMemoryUsers
from tests.support.sessions import FakeClock, throwaway_session_store

pytestmark = pytest.mark.services

PASSWORD = "correct horse 电池 staple"
IDLE = timedelta(minutes=30)
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

probe = APIRouter()


@probe.api_route("/probe", methods=METHODS)
def probe_route(user: CurrentUser) -> dict[str, Any]:
    return {"username": user.username, "permissions": sorted(user.permissions)}


@probe.get("/needs-export")
def needs_export(
    user: Annotated[Principal, Depends(require(Permission.EXPORT))],
) -> dict[str, str]:
    return {"username": user.username}


@dataclass
class World:
    app: FastAPI
    users: InMemoryUsers
    clock: FakeClock

    def client(self) -> TestClient:
        # https: the cookie is Secure, and httpx (like a browser) keeps it off plain HTTP
        return TestClient(self.app, base_url="https://testserver")

    def signed_in(self, username: str = "zhang") -> tuple[TestClient, str]:
        client = self.client()
        response = client.post("/api/session", json={"username": username, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return client, response.json()["csrf_token"]

    def token(self, permissions: list[str], username: str = "zhang") -> str:
        client, csrf = self.signed_in(username)
        expires = (self.clock() + timedelta(days=7)).isoformat()
        response = client.post(
            "/api/tokens",
            json={"name": "script", "permissions": permissions, "expires_at": expires},
            headers={CSRF_HEADER: csrf},
        )
        assert response.status_code == 201, response.text
        secret: str = response.json()["secret"]
        return secret


@pytest.fixture
def world(settings: Settings, backends: None) -> Iterator[World]:
    clock = FakeClock()
    users = InMemoryUsers(
        [
            (Principal(username="zhang", roles=(BUILTIN_ROLES["legal"],)), PASSWORD),
            (Principal(username="li", roles=(BUILTIN_ROLES["auditor"],)), PASSWORD),
        ]
    )
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(session.router)
    app.include_router(probe)
    with throwaway_session_store(settings) as store:
        sessions = Sessions(store, SessionTimeouts(IDLE, timedelta(hours=12)), clock)
        tokens = ApiTokens(bootstrap.json_store(settings), timedelta(days=30), clock)
        app.dependency_overrides |= {
            auth.get_sessions: lambda: sessions,
            auth.get_api_tokens: lambda: tokens,
            auth.get_authenticator: lambda: users,
            auth.get_principals: lambda: users,
            auth.get_cookie_settings: lambda: CookieSettings(secure=True, samesite="lax"),
        }
        yield World(app, users, clock)


def test_no_credential_is_a_clear_401(world: World) -> None:
    response = world.client().get("/probe")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "error": "NotAuthenticated",
        "message": "not authenticated: sign in, or send an API token",
    }
    assert world.client().get("/probe", headers={"Authorization": "Basic eDp5"}).status_code == 401


def test_a_wrong_password_or_unknown_user_signs_nobody_in(world: World) -> None:
    client = world.client()
    for username, password in [("zhang", "wrong"), ("nobody", PASSWORD)]:
        response = client.post("/api/session", json={"username": username, "password": password})
        assert response.status_code == 401
        assert response.json()["error"] == "SignInFailed"
        assert "set-cookie" not in response.headers
    assert world.users.attempts[-1] == ("nobody", "testclient")


def test_sign_in_sets_an_httponly_samesite_secure_cookie_and_returns_the_principal(
    world: World,
) -> None:
    client = world.client()
    response = client.post("/api/session", json={"username": "zhang", "password": PASSWORD})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite", "path"} <= attributes
    assert "samesite=lax" in cookie.lower() and "path=/" in cookie.lower()
    assert "max-age" not in attributes and "expires" not in attributes
    body = response.json()
    assert body["username"] == "zhang" and body["roles"] == ["legal"] and body["via"] == "session"
    assert set(body["permissions"]) == set(BUILTIN_ROLES["legal"].permissions)
    me = client.get("/api/session").json()
    assert me["csrf_token"] == body["csrf_token"] and me["username"] == "zhang"
    assert client.get("/probe").json()["username"] == "zhang"


def test_signing_in_again_replaces_the_session_and_only_json_signs_in(world: World) -> None:
    client, _ = world.signed_in()
    first = client.cookies.get("mailvault_session")
    again = client.post("/api/session", json={"username": "zhang", "password": PASSWORD})
    assert again.status_code == 200 and client.cookies.get("mailvault_session") != first
    replay = world.client()
    replay.cookies.set("mailvault_session", first or "")
    assert replay.get("/probe").status_code == 401
    # what a cross-site <form> can send: not JSON, so no sign-in (no login CSRF)
    form = f'{{"username": "zhang", "password": "{PASSWORD}"}}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        response = world.client().post(
            "/api/session", content=form.encode(), headers={"content-type": content_type}
        )
        assert response.status_code == 422 and "set-cookie" not in response.headers


def test_sign_out_needs_the_csrf_token_and_ends_the_session(world: World) -> None:
    client, csrf = world.signed_in()
    old_cookie = client.cookies.get("mailvault_session")
    assert old_cookie
    assert client.delete("/api/session").status_code == 403
    assert client.get("/probe").status_code == 200  # the refused sign-out changed nothing
    response = client.delete("/api/session", headers={CSRF_HEADER: csrf})
    assert response.status_code == 204
    assert 'mailvault_session=""' in response.headers["set-cookie"]
    replay = world.client()
    replay.cookies.set("mailvault_session", old_cookie)
    assert replay.get("/probe").status_code == 401
    assert replay.get("/api/session").status_code == 401


def test_an_idle_session_ends_and_a_disabled_user_is_signed_out(world: World) -> None:
    client, _ = world.signed_in()
    world.clock.advance(IDLE)
    assert client.get("/probe").status_code == 401
    client, _ = world.signed_in()
    world.users.disabled.add("zhang")
    assert client.get("/probe").status_code == 401
    world.users.disabled.clear()
    assert client.get("/probe").status_code == 401  # revoked, not just refused that once


def test_a_bearer_token_is_limited_to_its_permissions(world: World) -> None:
    script = world.client()
    search_only = {"Authorization": f"Bearer {world.token(['search'])}"}
    assert script.get("/probe", headers=search_only).json()["permissions"] == ["search"]
    assert script.get("/needs-export", headers=search_only).status_code == 403
    exporting = {"Authorization": f"Bearer {world.token(['export'])}"}
    assert script.get("/needs-export", headers=exporting).status_code == 200
    me = script.get("/api/session", headers=exporting).json()
    assert me["via"] == "token" and me["csrf_token"] is None
    browser, _ = world.signed_in()
    assert browser.get("/needs-export").status_code == 200


def test_tokens_ask_for_no_more_than_the_owner_has_and_are_made_only_from_a_session(
    world: World,
) -> None:
    client, csrf = world.signed_in("li")  # an auditor
    expires = (world.clock() + timedelta(days=7)).isoformat()
    asking = {"name": "x", "permissions": ["export"], "expires_at": expires}
    response = client.post("/api/tokens", json=asking, headers={CSRF_HEADER: csrf})
    assert response.status_code == 422 and response.json()["error"] == "InvalidToken"
    without_csrf = client.post("/api/tokens", json=asking | {"permissions": ["read_audit"]})
    assert without_csrf.status_code == 403
    secret = world.token(["search"])
    by_token = world.client().post(
        "/api/tokens",
        json=asking | {"permissions": ["search"]},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert by_token.status_code == 422


def test_own_tokens_are_listed_without_secrets_and_revoked(world: World) -> None:
    secret = world.token(["search"])
    client, csrf = world.signed_in()
    listed = client.get("/api/tokens").json()
    assert listed and all("secret" not in t for t in listed) and secret not in str(listed)
    token_id = secret_hash(secret)[:ID_CHARS]
    assert token_id in {t["id"] for t in listed if t["revoked_at"] is None}
    assert client.delete(f"/api/tokens/{token_id}").status_code == 403  # no CSRF token
    revoked = client.delete(f"/api/tokens/{token_id}", headers={CSRF_HEADER: csrf})
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    bearer = {"Authorization": f"Bearer {secret}"}
    assert world.client().get("/probe", headers=bearer).status_code == 401
    other, other_csrf = world.signed_in("li")
    not_theirs = other.delete(f"/api/tokens/{token_id}", headers={CSRF_HEADER: other_csrf})
    assert not_theirs.status_code == 404


def test_a_bad_bearer_token_is_refused_even_with_a_good_cookie(world: World) -> None:
    client, _ = world.signed_in()
    response = client.get("/probe", headers={"Authorization": "Bearer mv_forged"})
    assert response.status_code == 401


@pytest.mark.parametrize("csrf", ["absent", "wrong", "right"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["none", "session", "token"])
def test_credential_method_and_csrf_matrix(world: World, kind: str, method: str, csrf: str) -> None:
    client, right = world.signed_in() if kind == "session" else (world.client(), "")
    headers: dict[str, str] = {}
    if kind == "token":
        headers["Authorization"] = f"Bearer {world.token(['search'])}"
        _, right = world.signed_in()  # a real session's token, which a token does not need
    if csrf == "right":
        headers[CSRF_HEADER] = right
    elif csrf == "wrong":
        headers[CSRF_HEADER] = right[:-2] + ("AA" if not right.endswith("AA") else "BB")
    response = client.request(method, "/probe", headers=headers)
    if kind == "none":
        expected = 401
    elif kind == "session" and method != "GET" and csrf != "right":
        expected = 403
    else:
        expected = 200
    assert response.status_code == expected, response.text
    if expected == 403:
        assert response.json()["error"] == "CsrfRejected"
