"""Who is asking: a browser session (cookie + CSRF token) or a script's API token (bearer).

Every route but /healthz and sign-in takes `CurrentUser` (or `audited(...)`, which does); that
resolves the principal and, for a request made with the session cookie that changes state
(POST, PUT, PATCH, DELETE), requires the session's CSRF token in the X-CSRF-Token header. A
request with `Authorization: Bearer mv_...` needs no CSRF token: a browser never attaches that
header on its own, so a cross-site page cannot make one (no ambient credential to abuse).

The cookie is HttpOnly (page scripts, and so an XSS, cannot read the session id), Secure unless
configured off for local HTTP, path /, and SameSite=Lax by default: it is not sent with
cross-site POSTs, fetches or frames, but it is sent when a person follows a link to the archive
from mail or chat, which then opens signed in. GETs change nothing, and state changes need the
CSRF token anyway, so Strict (configurable) would add little but those broken links. No
Max-Age: the cookie ends with the browser; the server's idle and absolute timeouts end the
session in any case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Literal

from fastapi import Depends, Request, Response

from archiver import bootstrap
from archiver.access.model import Permission, Principal
from archiver.access.sessions import ActiveSession, Sessions, same_secret
from archiver.access.signin import SignInService
from archiver.access.tokens import ApiToken, ApiTokens
from archiver.access.users import UserDirectory
from archiver.errors import CsrfRejected, NotAuthenticated, PermissionDenied
from archiver.ports import Authenticator, PrincipalSource
from archiver.settings import get_settings

CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class CookieSettings:
    name: str = "mailvault_session"
    secure: bool = True
    samesite: Literal["lax", "strict"] = "lax"

    def set(self, response: Response, session_id: str) -> None:
        response.set_cookie(
            self.name,
            session_id,
            httponly=True,
            secure=self.secure,
            samesite=self.samesite,
            path="/",
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(
            self.name, httponly=True, secure=self.secure, samesite=self.samesite, path="/"
        )


@dataclass(frozen=True)
class Credential:
    """The principal of a request and what it signed in with (exactly one of the two)."""

    principal: Principal
    session: ActiveSession | None = None
    token: ApiToken | None = None


# -- the pieces, built once per process; tests and the wiring session override them -----------


@lru_cache(maxsize=1)
def _sessions() -> Sessions:
    return bootstrap.sessions(get_settings())


async def get_sessions() -> Sessions:
    return _sessions()


@lru_cache(maxsize=1)
def _api_tokens() -> ApiTokens:
    return bootstrap.api_tokens(get_settings())


async def get_api_tokens() -> ApiTokens:
    return _api_tokens()


@lru_cache(maxsize=1)
def _cookie_settings() -> CookieSettings:
    settings = get_settings()
    return CookieSettings(
        settings.session_cookie_name,
        settings.session_cookie_secure,
        settings.session_cookie_samesite,
    )


async def get_cookie_settings() -> CookieSettings:
    return _cookie_settings()


@lru_cache(maxsize=1)
def sign_in_service() -> SignInService:
    return bootstrap.sign_in_service(get_settings())


async def get_sign_in() -> SignInService:
    return sign_in_service()


async def get_user_directory() -> UserDirectory:
    return sign_in_service().directory


async def get_authenticator() -> Authenticator:
    return sign_in_service()


async def get_principals() -> PrincipalSource:
    return sign_in_service()


SessionsDep = Annotated[Sessions, Depends(get_sessions)]
TokensDep = Annotated[ApiTokens, Depends(get_api_tokens)]
CookieDep = Annotated[CookieSettings, Depends(get_cookie_settings)]
AuthenticatorDep = Annotated[Authenticator, Depends(get_authenticator)]
PrincipalsDep = Annotated[PrincipalSource, Depends(get_principals)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise NotAuthenticated("the Authorization header must be 'Bearer mv_...'")
    return value.strip()


def credential(
    request: Request,
    sessions: SessionsDep,
    tokens: TokensDep,
    principals: PrincipalsDep,
    cookie: CookieDep,
) -> Credential:
    """The request's credential. A bearer token, when sent, is the only one considered: a bad
    token is refused even if a session cookie came along."""
    secret = _bearer(request)
    if secret is not None:
        token = tokens.authenticate(secret)
        if token is None:
            raise NotAuthenticated("the API token is unknown, expired or revoked")
        owner = principals.principal(token.owner)
        if owner is None:
            raise NotAuthenticated("the API token's owner is disabled or no longer exists")
        limited = owner.model_copy(update={"token_permissions": token.permissions})
        return Credential(principal=limited, token=token)
    session_id = request.cookies.get(cookie.name)
    if session_id is None:
        raise NotAuthenticated()
    session = sessions.lookup(session_id)
    if session is None:
        raise NotAuthenticated("the session has ended; sign in again")
    principal = principals.principal(session.username)
    if principal is None:
        sessions.revoke(session)
        raise NotAuthenticated("the account is disabled or no longer exists")
    return Credential(principal=principal, session=session)


CredentialDep = Annotated[Credential, Depends(credential)]


async def csrf_checked(request: Request, found: CredentialDep) -> Credential:
    """The credential, once a state-changing request made with the session cookie has shown
    the session's CSRF token."""
    if found.session is not None and request.method.upper() not in SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER)
        if given is None:
            raise CsrfRejected(f"the {CSRF_HEADER} header is missing")
        if not same_secret(given, found.session.csrf_token):
            raise CsrfRejected(f"the {CSRF_HEADER} header does not match the session")
    return found


CheckedCredential = Annotated[Credential, Depends(csrf_checked)]


async def current_user(found: CheckedCredential) -> Principal:
    return found.principal


CurrentUser = Annotated[Principal, Depends(current_user)]


def require(permission: Permission) -> Callable[[Principal], Principal]:
    """A dependency: the current user, if they have the permission (403 otherwise).
    `Annotated[Principal, Depends(require(Permission.EXPORT))]`."""

    def permitted(principal: CurrentUser) -> Principal:
        if not principal.may(permission):
            raise PermissionDenied(principal.username, permission.value)
        return principal

    return permitted


SignInDep = Annotated[SignInService, Depends(get_sign_in)]
