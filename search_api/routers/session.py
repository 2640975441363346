"""Sign in and out, who am I, and a user's own API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from archiver.access.lockout import normalise_username
from archiver.access.model import Permission, Principal
from archiver.access.tokens import ApiToken
from archiver.audit.records import AuditAction
from search_api.audit import AuditedRoute, RequestAudit, audited, audited_anonymously
from search_api.auth import (
    AuthenticatorDep,
    CheckedCredential,
    CookieDep,
    CredentialDep,
    SessionsDep,
    TokensDep,
)

router = APIRouter(prefix="/api", tags=["session"], route_class=AuditedRoute)
SigningIn = Annotated[
    RequestAudit,
    Depends(audited_anonymously(AuditAction.SIGN_IN, failure_action=AuditAction.SIGN_IN_FAILED)),
]
SigningOut = Annotated[RequestAudit, Depends(audited(AuditAction.SIGN_OUT))]
ChangingTokens = Annotated[RequestAudit, Depends(audited(AuditAction.TOKEN_CHANGE))]
ReadingTokens = Annotated[RequestAudit, Depends(audited(AuditAction.CONFIG_READ))]


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
    audit: SigningIn,
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
    # the name as typed (bounded) is the actor of a failed attempt: whom it was tried against
    audit.actor = normalise_username(body.username)[:64]
    principal = authenticator.authenticate(body.username, body.password, audit.client)
    audit.principal = principal
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
def sign_out(
    audit: SigningOut, found: CheckedCredential, sessions: SessionsDep, cookie: CookieDep
) -> Response:
    audit.details["via"] = "session" if found.session is not None else "token"
    response = Response(status_code=204)
    if found.session is not None:  # with a token there is no session to end
        sessions.revoke(found.session)
        cookie.clear(response)
    return response


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(
    audit: ChangingTokens, body: TokenIn, found: CheckedCredential, tokens: TokensDep
) -> TokenCreated:
    audit.details.update(
        name=body.name,
        permissions=sorted(body.permissions),
        expires_at=body.expires_at.isoformat(),
    )
    # a token's principal carries token_permissions: ApiTokens.create refuses it
    created = tokens.create(found.principal, body.name, body.permissions, body.expires_at)
    audit.target = f"token:{created.token.id}"
    return TokenCreated(secret=created.secret, token=created.token)


@router.get("/tokens", response_model=list[ApiToken])
def list_tokens(audit: ReadingTokens, tokens: TokensDep) -> list[ApiToken]:
    assert audit.principal is not None
    audit.target = "tokens"
    return tokens.of(audit.principal.username)


@router.delete("/tokens/{token_id}", response_model=ApiToken)
def revoke_token(audit: ChangingTokens, token_id: str, tokens: TokensDep) -> ApiToken:
    assert audit.principal is not None
    audit.target, audit.details["revoked"] = f"token:{token_id}", True
    return tokens.revoke(audit.principal.username, token_id)
