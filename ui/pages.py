"""The UI's pages: which exist, who may open them, and the shell each is served in.

A page shell reads no mail: it holds the translated strings, the navigation the principal may
use and the session's CSRF token. What a page shows comes from the audited JSON API, fetched by
the page's own script (ui/static/pages/<name>.js), so the UI can show nothing the API would not
and every read it makes is audited once, by the route that made it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from archiver.access.model import Permission, Principal
from archiver.errors import NotAuthenticated, NotFound, PermissionDenied
from search_api.auth import (
    CookieDep,
    Credential,
    PrincipalsDep,
    SessionsDep,
    SignInDep,
    TokensDep,
    credential,
)
from ui.i18n import LANGUAGE_COOKIE, LANGUAGES, Translator, choose_language
from ui.render import TEMPLATES, render

router = APIRouter(prefix="/ui", include_in_schema=False)


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    # any one of these lets the principal open it; none: every signed-in user
    permissions: frozenset[Permission] = frozenset()
    in_nav: bool = True

    @property
    def built(self) -> bool:
        return (TEMPLATES / "pages" / f"{self.name}.html").is_file()

    def open_to(self, principal: Principal) -> bool:
        return not self.permissions or any(principal.may(p) for p in self.permissions)


def _page(name: str, path: str, *permissions: Permission, in_nav: bool = True) -> Page:
    return Page(name, path, frozenset(permissions), in_nav)


PAGES: dict[str, Page] = {
    page.name: page
    for page in [
        _page("search", "/ui/search", Permission.SEARCH),
        _page("message", "/ui/messages/{message_id}", Permission.VIEW, in_nav=False),
        _page("departments", "/ui/departments", Permission.SEARCH),
        _page("matters", "/ui/matters", Permission.MANAGE_HOLDS),
        _page("matter", "/ui/matters/{matter_id}", Permission.MANAGE_HOLDS, in_nav=False),
        _page("exports", "/ui/exports", Permission.EXPORT),
        _page("export", "/ui/exports/{export_id}", Permission.EXPORT, in_nav=False),
        _page("retention", "/ui/retention", Permission.MANAGE_RETENTION),
        _page("rules", "/ui/rules", Permission.MANAGE_RULES),
        _page("audit", "/ui/audit", Permission.READ_AUDIT),
        _page("users", "/ui/users", Permission.MANAGE_USERS),
        # the administrators run the archive; an auditor reads the audit log and nothing else
        _page("status", "/ui/status", Permission.MANAGE_CONFIG),
    ]
}


def translator(request: Request) -> Translator:
    return Translator(
        choose_language(
            request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language")
        )
    )


TranslatorDep = Annotated[Translator, Depends(translator)]


def signed_in(
    request: Request,
    sessions: SessionsDep,
    tokens: TokensDep,
    principals: PrincipalsDep,
    cookie: CookieDep,
) -> Credential | None:
    """The browser's session, or None: a page answers a signed-out reader with the sign-in
    page, which brings them back to where they were (the page's state is in its URL)."""
    try:
        found = credential(request, sessions, tokens, principals, cookie)
    except NotAuthenticated:
        return None
    return found if found.session is not None else None


SignedIn = Annotated[Credential | None, Depends(signed_in)]


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a path of this UI (no open redirect)."""
    if not target:
        return "/ui/"
    parts = urlsplit(target)
    odd = "\\" in target or "/../" in parts.path or parts.path.endswith("/..")
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui/") or odd:
        return "/ui/"
    return target


def _to_sign_in(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ui/sign-in?next={quote(here, safe='')}", status_code=303)


def home_of(principal: Principal) -> str:
    """A department lead starts on their departments; everyone else on the first page they
    may open (the search, for readers)."""
    departments = PAGES["departments"]
    if any(role.department_scoped for role in principal.roles) and departments.open_to(principal):
        return departments.path
    return next(
        (p.path for p in PAGES.values() if p.in_nav and p.built and p.open_to(principal)),
        "/ui/account",
    )


def shell(
    request: Request, name: str, found: Credential | None, t: Translator, **params: str
) -> Response:
    if found is None:
        return _to_sign_in(request)
    page = PAGES[name]
    if not page.built:
        raise NotFound(f"the page {name} is not part of this version")
    if not page.open_to(found.principal):
        raise PermissionDenied(found.principal.username, "/".join(sorted(page.permissions)))
    return render(request, f"pages/{name}.html", t, found, page=name, params=params)


@router.get("/", response_class=HTMLResponse)
def ui_home(request: Request, found: SignedIn) -> Response:
    if found is None:
        return _to_sign_in(request)
    return RedirectResponse(home_of(found.principal), status_code=303)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(
    request: Request, found: SignedIn, t: TranslatorDep, service: SignInDep, next: str = ""
) -> Response:
    target = safe_next(next)
    if found is not None:
        return RedirectResponse(target if target != "/ui/" else home_of(found.principal), 303)
    return render(
        request,
        "sign_in.html",
        t,
        None,
        page="sign_in",
        params={"next": target, "ldap": "1" if service.providers else ""},
    )


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, found: SignedIn, t: TranslatorDep) -> Response:
    if found is None:
        return _to_sign_in(request)
    return render(request, "pages/account.html", t, found, page="account", params={})


@router.get("/language/{language}")
def set_language(
    language: Annotated[str, Path(pattern="^(zh-CN|en)$")], next: str = ""
) -> Response:
    response = RedirectResponse(safe_next(next), status_code=303)
    if language in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE, language, max_age=365 * 86400, samesite="lax", path="/"
        )
    return response


def _shell_route(name: str) -> Callable[..., Response]:
    def endpoint(request: Request, found: SignedIn, t: TranslatorDep) -> Response:
        return shell(request, name, found, t, **request.path_params)

    return endpoint


for _page_entry in PAGES.values():
    router.add_api_route(
        _page_entry.path.removeprefix(router.prefix),
        _shell_route(_page_entry.name),
        methods=["GET"],
        response_class=HTMLResponse,
        name=f"ui_{_page_entry.name}",
    )
