"""Sign in and out, who am I, and a user's own API tokens. Not yet included in the app: the
wiring session includes it together with the real Authenticator and PrincipalSource."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from archiver.access.model import Permission, Principal
from archiver.access.tokens import ApiToken
from search_api.auth import (
    AuthenticatorDep,
    CheckedCredential,
    CookieDep,
    CredentialDep,
    CurrentUser,
    SessionsDep,
    TokensDep,
)

router = APIRouter(prefix="/api", tags=["session"])


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=4096)


class Me(BaseModel):
    username: str
    roles: list[str]
    permissions: list[Permission]
    departments: list[str]
    # send it back in X-CSRF-Token on every state-changing request; None with an API token
    csrf_token: str | None = None
    via: str = Field(description="'session' or 'token'")

    @classmethod
    def of(cls, principal: Principal, csrf_token: str | None, via: str) -> Me:
        return cls(
            username=principal.username,
            roles=[r.name for r in principal.roles],
            permissions=sorted(principal.permissions),
            departments=sorted(principal.departments),
            csrf_token=csrf_token,
            via=via,
        )


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    permissions: frozenset[Permission] = Field(min_length=1)
    expires_at: datetime


class TokenCreated(BaseModel):
    secret: str = Field(description="shown this once: the archive keeps only its hash")
    token: ApiToken


@router.post("/session", response_model=Me)
def sign_in(
    body: SignIn,
    request: Request,
    response: Response,
    authenticator: AuthenticatorDep,
    sessions: SessionsDep,
    cookie: CookieDep,
) -> Me:
    """Check the password; set the session cookie (a new id each time: no fixation). The body
    must be application/json: a cross-site form cannot send that without a CORS preflight, so
    no other site can sign a browser in to an account of its choosing (login CSRF)."""
    address = request.client.host if request.client else ""
    principal = authenticator.authenticate(body.username, body.password, address)
    previous = request.cookies.get(cookie.name)
    if previous is not None and (replaced := sessions.lookup(previous)) is not None:
        sessions.revoke(replaced)  # one browser, one session
    created = sessions.create(principal.username)
    cookie.set(response, created.session_id)
    return Me.of(principal, created.record.csrf_token, "session")


@router.get("/session", response_model=Me)
def who_am_i(found: CredentialDep) -> Me:
    if found.session is not None:
        return Me.of(found.principal, found.session.csrf_token, "session")
    return Me.of(found.principal, None, "token")


@router.delete("/session", status_code=204)
def sign_out(found: CheckedCredential, sessions: SessionsDep, cookie: CookieDep) -> Response:
    response = Response(status_code=204)
    if found.session is not None:  # with a token there is no session to end
        sessions.revoke(found.session)
        cookie.clear(response)
    return response


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(body: TokenIn, found: CheckedCredential, tokens: TokensDep) -> TokenCreated:
    # a token's principal carries token_permissions: ApiTokens.create refuses it
    created = tokens.create(found.principal, body.name, body.permissions, body.expires_at)
    return TokenCreated(secret=created.secret, token=created.token)


@router.get("/tokens", response_model=list[ApiToken])
def list_tokens(user: CurrentUser, tokens: TokensDep) -> list[ApiToken]:
    return tokens.of(user.username)


@router.delete("/tokens/{token_id}", response_model=ApiToken)
def revoke_token(token_id: str, user: CurrentUser, tokens: TokensDep) -> ApiToken:
    return tokens.revoke(user.username, token_id)
