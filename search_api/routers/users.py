"""Users and roles, for administrators (manage_users). Every change is audited; disabling a user
or setting a password ends that user's browser sessions at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from archiver.access.model import Permission, Role
from archiver.access.users import User, UserDirectory, generate_password
from archiver.audit.records import AuditAction
from archiver.errors import PermissionDenied
from search_api.audit import AuditedRoute, RequestAudit, audited
from search_api.auth import SessionsDep, SignInDep, get_user_directory

router = APIRouter(prefix="/api", tags=["users"], route_class=AuditedRoute)
Reading = Annotated[
    RequestAudit, Depends(audited(AuditAction.CONFIG_READ, Permission.MANAGE_USERS))
]
ChangingUsers = Annotated[
    RequestAudit, Depends(audited(AuditAction.USER_CHANGE, Permission.MANAGE_USERS))
]
ChangingRoles = Annotated[
    RequestAudit, Depends(audited(AuditAction.ROLE_CHANGE, Permission.MANAGE_USERS))
]
UsersDep = Annotated[UserDirectory, Depends(get_user_directory)]


class UserOut(BaseModel):
    username: str
    display_name: str
    email: str
    provider: str = Field(description="'local', or the sign-in provider of a shadow account")
    roles: list[str] = Field(description="granted here")
    departments: list[str]
    directory_roles: list[str] = Field(description="granted by the provider's group mapping")
    directory_departments: list[str]
    disabled: bool


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str | None = Field(
        None, max_length=1024, description="omitted: a one-time password is generated"
    )
    roles: list[str] = Field(default_factory=list)
    departments: list[str] = Field(default_factory=list)
    display_name: str = Field("", max_length=200)
    email: str = Field("", max_length=320)


class CreatedUser(BaseModel):
    user: UserOut
    password: str | None = Field(None, description="the generated password, shown this once")


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: list[str] | None = None
    departments: list[str] | None = None
    disabled: bool | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=1024)


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    permissions: frozenset[Permission]
    department_scoped: bool = False
    description: str = Field("", max_length=500)


RoleName = Path(pattern=r"^[a-z][a-z0-9_-]{0,63}$")


def _out(user: User) -> UserOut:
    return UserOut.model_validate(user.public())


@router.get("/users", response_model=list[UserOut])
def list_users(audit: Reading, users: UsersDep) -> list[UserOut]:
    audit.target = "users"
    return [_out(u) for u in users.list()]


@router.post("/users", response_model=CreatedUser, status_code=201)
def add_user(audit: ChangingUsers, users: UsersDep, body: NewUser) -> CreatedUser:
    audit.target = f"user:{body.username}"
    audit.details.update(added=True, roles=body.roles, departments=body.departments)
    password = body.password or generate_password()
    user = users.add(
        body.username,
        password,
        roles=body.roles,
        departments=body.departments,
        display_name=body.display_name,
        email=body.email,
    )
    return CreatedUser(user=_out(user), password=None if body.password else password)


@router.patch("/users/{username}", response_model=UserOut)
def change_user(
    audit: ChangingUsers,
    users: UsersDep,
    sign_in: SignInDep,
    sessions: SessionsDep,
    username: str,
    body: UserChange,
) -> UserOut:
    """Set roles, departments, or disable/enable. Disabling ends the user's sessions. Nobody
    changes their own roles or departments (separation of duties: an administrator who wants
    to read mail needs a second administrator, and the audit log shows both)."""
    audit.target = f"user:{username}"
    audit.details.update(body.model_dump(exclude_none=True))
    user = users.get(username)
    assert audit.principal is not None
    own = user.username == audit.principal.username
    if own and (body.roles is not None or body.departments is not None):
        raise PermissionDenied(audit.principal.username, "change own roles or departments")
    if body.roles is not None:
        user = users.change_roles(username, set_to=body.roles)
    if body.departments is not None:
        user = users.set_departments(username, body.departments)
    if body.disabled is not None:
        user = users.set_disabled(username, body.disabled)
        if body.disabled:
            sessions.revoke_all(user.username)
    sign_in.forget(user.username)  # in force for this process's next request already
    return _out(user)


@router.put("/users/{username}/password", status_code=204)
def set_password(
    audit: ChangingUsers,
    users: UsersDep,
    sessions: SessionsDep,
    username: str,
    body: PasswordChange,
) -> Response:
    """A new password (the policy applies); the user's sessions end."""
    audit.target, audit.details["password"] = f"user:{username}", "set"
    user = users.set_password(username, body.password)
    sessions.revoke_all(user.username)
    return Response(status_code=204)


@router.get("/roles", response_model=list[Role])
def list_roles(audit: Reading, users: UsersDep) -> list[Role]:
    audit.target = "roles"
    return sorted(users.roles().values(), key=lambda r: r.name)


@router.put("/roles/{name}", response_model=Role)
def save_role(
    audit: ChangingRoles, users: UsersDep, sign_in: SignInDep, body: RoleIn, name: str = RoleName
) -> Role:
    """Create or replace a custom role (a named set of permissions)."""
    audit.target = f"role:{name}"
    audit.details.update(
        permissions=sorted(body.permissions), department_scoped=body.department_scoped
    )
    saved = users.save_role(Role(name=name, **body.model_dump()))
    sign_in.forget()
    return saved


@router.delete("/roles/{name}", status_code=204)
def delete_role(audit: ChangingRoles, users: UsersDep, sign_in: SignInDep, name: str) -> Response:
    audit.target, audit.details["deleted"] = f"role:{name}", True
    users.delete_role(name)
    sign_in.forget()
    return Response(status_code=204)
