"""Routes run in the threadpool: a route that is `async def` runs on the event loop, where one
blocking S3 or Elasticsearch call stalls every other request (no services)."""

from __future__ import annotations

import fnmatch
import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from search_api.app import create_app
from ui import pages

# Coroutines that await only non-blocking calls (reading the request body) or only return what a
# cached builder made, check a token against the session, or fill in the request's audit entry:
# none calls a backend.
ALLOWED_ASYNC = {
    "search_api.routers.directory._file",
    "search_api.deps.get_*",
    "search_api.auth.get_*",
    "search_api.auth.csrf_checked",
    "search_api.auth.current_user",
    "search_api.audit.get_audit_log",
    "search_api.audit.audited.<locals>.opened",
    "search_api.audit.audited_anonymously.<locals>.opened",
}


def _allowed(call: Callable[..., Any]) -> bool:
    name = f"{call.__module__}.{call.__qualname__}"
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in ALLOWED_ASYNC)


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """The app's routes; FastAPI (0.165) keeps an included router's routes inside it."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _api_routes(included.routes)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def test_no_route_or_dependency_is_a_coroutine_unless_allowed() -> None:
    routes = list(_api_routes(create_app().routes))
    assert len(routes) > 20
    on_the_loop = {
        f"{sorted(route.methods or ())} {route.path}: {call.__qualname__}"
        for route in routes
        for call in _calls(route.dependant)
        if inspect.iscoroutinefunction(call) and not _allowed(call)
    }
    assert not on_the_loop, f"async def routes or dependencies calling backends: {on_the_loop}"


IDENTITY_NAMES = {"user", "owner", "actor", "username", "by"}
# who is *acted on* (an administrator naming a user), or the credentials of sign-in itself
ACTED_ON = {
    ("/api/users/{username}", "username"),
    ("/api/users/{username}/password", "username"),
    ("/api/audit", "actor"),  # whose records an auditor asks for
    ("/api/audit/export", "actor"),
}


def test_no_route_takes_who_is_asking_from_a_parameter() -> None:
    """Identity comes from the session or token only: a query, path or body field named like a
    user would let a caller claim to be someone else."""
    found = set()
    for route in _api_routes(create_app().routes):
        params = [
            *route.dependant.query_params,
            *route.dependant.path_params,
            *route.dependant.header_params,
        ]
        for sub in _dependants(route.dependant):
            params += [*sub.query_params, *sub.path_params, *sub.header_params]
        names = {(route.path, p.name) for p in params if p.name in IDENTITY_NAMES}
        bodies = [p for p in route.dependant.body_params]
        for body in bodies:
            fields = getattr(body.field_info.annotation, "model_fields", {})
            names |= {(route.path, f) for f in fields if f in IDENTITY_NAMES}
        found |= names - ACTED_ON - {("/api/session", "username"), ("/api/users", "username")}
    assert not found, f"identity taken from a parameter: {sorted(found)}"


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependants(sub)


OPEN = {("GET", "/healthz"), ("POST", "/api/session")}


def _page_sends_to_sign_in(client: TestClient, template: str, path: str) -> int:
    """A UI page answers a signed-out reader with the sign-in page (nothing else shown)."""
    response = client.get(path.replace("a" * 64, "en"), follow_redirects=False)
    if template == "/ui/sign-in":
        assert response.status_code == 200 and 'id="sign-in-form"' in response.text
    elif template == "/ui/language/{language}":  # sets a cookie, shows nothing
        assert response.status_code == 303 and response.headers["location"] == "/ui/"
    else:
        assert response.status_code == 303, f"GET {template}: {response.status_code}"
        assert response.headers["location"].startswith("/ui/sign-in?next=")
    return 1


def test_every_route_but_health_and_sign_in_refuses_an_anonymous_request() -> None:
    """401 before anything else is looked at, for every method of every route."""
    app = create_app()
    client = TestClient(app)
    checked = 0
    for route in _api_routes(app.routes):
        path = re.sub(r"\{[^}]+\}", "a" * 64, route.path)
        for method in (route.methods or set()) - {"HEAD"}:
            if (method, route.path) in OPEN or route.path == "/":
                continue
            if route.path.startswith("/ui/") and route in list(_api_routes(pages.router.routes)):
                checked += _page_sends_to_sign_in(client, route.path, path)
                continue
            response = client.request(method, path, json={})
            assert response.status_code == 401, f"{method} {route.path}: {response.status_code}"
            if not route.path.startswith("/ui/"):  # the UI's answer is a page (the mail frame)
                assert response.json()["error"] == "NotAuthenticated"
            checked += 1
    assert checked >= 40
