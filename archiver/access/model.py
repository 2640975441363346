"""Who may do what: permissions, roles (built-in and custom), the signed-in principal and its scope.

A role is a named set of permissions. Reading mail is never implied by administering the archive
(separation of duties: an admin manages users and rules but reads no mail unless also given a
role that may). A department lead's reading is limited to mail tagged with their departments;
every other reading role sees the whole archive. The scope is computed here, once, and enforced
where every Elasticsearch request passes (archiver/search/).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from archiver.tagging.model import department_tag

# Injected wherever time decides (expiry, lockout), so tests move it instead of sleeping.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Permission(StrEnum):
    SEARCH = "search"  # search, facets, counts, saved searches, tag counts
    VIEW = "view"  # one message, its conversation, attachments
    VIEW_RAW = "view_raw"  # the byte-exact message
    TAG = "tag"  # add and remove tags of messages one may view, by hand
    EXPORT = "export"
    MANAGE_HOLDS = "manage_holds"
    MANAGE_RETENTION = "manage_retention"
    MANAGE_RULES = "manage_rules"  # tagging rules, tags, the directory
    READ_AUDIT = "read_audit"  # search and export the audit log
    MANAGE_USERS = "manage_users"  # users, roles, tokens of others
    MANAGE_CONFIG = "manage_config"


READING = frozenset({Permission.SEARCH, Permission.VIEW, Permission.VIEW_RAW, Permission.EXPORT})


class Role(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    permissions: frozenset[Permission]
    # Reading limited to mail tagged department/<name> for the principal's departments.
    department_scoped: bool = False
    builtin: bool = False
    description: str = ""


BUILTIN_ROLES: dict[str, Role] = {
    role.name: role
    for role in [
        Role(
            name="admin",
            permissions=frozenset(
                {Permission.MANAGE_USERS, Permission.MANAGE_RULES, Permission.MANAGE_CONFIG}
            ),
            builtin=True,
            description="users, roles, rules, configuration; reads no mail",
        ),
        Role(
            name="compliance_officer",
            permissions=frozenset(
                {
                    Permission.SEARCH,
                    Permission.VIEW,
                    Permission.VIEW_RAW,
                    Permission.TAG,
                    Permission.MANAGE_RETENTION,
                }
            ),
            builtin=True,
            description="search and view the whole archive, raw download, retention",
        ),
        Role(
            name="legal",
            permissions=frozenset(
                {
                    Permission.SEARCH,
                    Permission.VIEW,
                    Permission.VIEW_RAW,
                    Permission.EXPORT,
                    Permission.TAG,
                    Permission.MANAGE_HOLDS,
                }
            ),
            builtin=True,
            description="matters, holds, exports, plus search and view",
        ),
        Role(
            name="auditor",
            permissions=frozenset({Permission.READ_AUDIT}),
            builtin=True,
            description="read and export the audit log, nothing else",
        ),
        Role(
            name="department_lead",
            permissions=frozenset({Permission.SEARCH, Permission.VIEW}),
            department_scoped=True,
            builtin=True,
            description="search, browse and view only mail tagged with their departments",
        ),
    ]
}


class Scope(BaseModel):
    """What mail a principal may read: everything, nothing, or mail carrying one of the tags."""

    model_config = ConfigDict(frozen=True)

    everything: bool = False
    tags: frozenset[str] = frozenset()

    @property
    def nothing(self) -> bool:
        return not self.everything and not self.tags


class Principal(BaseModel):
    """A signed-in user (or a token acting for one), with the roles in force for this request."""

    model_config = ConfigDict(frozen=True)

    username: str
    roles: tuple[Role, ...] = ()
    departments: frozenset[str] = frozenset()
    # A token is limited to a subset of its user's permissions; None: all of them.
    token_permissions: frozenset[Permission] | None = None

    @property
    def permissions(self) -> frozenset[Permission]:
        granted = frozenset().union(*(r.permissions for r in self.roles))
        if self.token_permissions is not None:
            granted &= self.token_permissions
        return granted

    def may(self, permission: Permission) -> bool:
        return permission in self.permissions

    def scope(self, permission: Permission = Permission.SEARCH) -> Scope:
        """The mail this principal may read with `permission`. The widest role that grants the
        permission wins: one unscoped role means the whole archive."""
        if not self.may(permission):
            return Scope()
        granting = [r for r in self.roles if permission in r.permissions]
        if any(not r.department_scoped for r in granting):
            return Scope(everything=True)
        return Scope(tags=frozenset(department_tag(d) for d in self.departments))
