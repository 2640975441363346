"""Real users with API tokens in the test session's archive, for calling the API as a role."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from archiver import bootstrap
from archiver.access.users import UserDirectory
from archiver.settings import Settings

PASSWORD = "correct horse battery staple"


def add_user(
    settings: Settings,
    roles: Sequence[str],
    departments: Sequence[str] = (),
    *,
    name: str | None = None,
) -> str:
    """A new user (a fresh name unless given) with these roles; returns the user name."""
    label = "-".join(r[:8] for r in roles[:3]) or "none"
    username = name or f"u-{label}-{uuid.uuid4().hex[:8]}".replace("_", "-")
    bootstrap.user_directory(settings).add(username, PASSWORD, roles=roles, departments=departments)
    return username


def bearer(settings: Settings, username: str) -> dict[str, str]:
    """Headers that authenticate as `username` with a token of all their permissions."""
    directory: UserDirectory = bootstrap.user_directory(settings)
    principal = directory.principal(directory.get(username))
    permissions = principal.permissions
    if not permissions:  # a token needs one permission: a user without any gets no token
        raise ValueError(f"{username} has no permissions to put in a token")
    created = bootstrap.api_tokens(settings).create(
        principal, "tests", permissions, datetime.now(UTC) + timedelta(days=1)
    )
    return {"Authorization": f"Bearer {created.secret}"}


def as_role(settings: Settings, *roles: str, departments: Sequence[str] = ()) -> dict[str, str]:
    return bearer(settings, add_user(settings, roles, departments))
