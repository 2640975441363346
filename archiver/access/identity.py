"""Who a sign-in provider says someone is: the outcome of checking their credentials.

A provider (archiver/ports.py ``IdentityProvider``) checks credentials against a directory and
answers an ``Identity``: the account's canonical name, how to show it, and the role names and
departments the directory grants through group membership (mapped in the settings, never taken
from the directory's own names). Turning it into a ``Principal`` (archiver/access/model.py) —
resolving role names to roles, adding what is granted locally — is the caller's job, so every
provider is mapped the same way.

Providers so far: LDAP / Active Directory (archiver/adapters/ldap.py). An OIDC provider would
implement the same Protocol, called on the authorization-code callback with the code (and the
PKCE verifier) in place of a password: it exchanges the code for an ID token, verifies it, and
maps claims to an ``Identity`` the same way (``preferred_username`` or ``sub`` to the username,
a groups claim through the same group -> role and group -> department maps), raising
``SignInFailed`` for a refused or invalid token and ``BackendUnavailable`` when the identity
provider cannot be reached. ``external_id`` holds what stays stable across renames there
(``sub``), as the entry's DN does for LDAP.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Identity(BaseModel):
    """A person whose credentials a provider has just checked."""

    model_config = ConfigDict(frozen=True)

    username: str = Field(min_length=1, description="canonical name, as the directory spells it")
    display_name: str = ""
    email: str = ""
    roles: frozenset[str] = frozenset()
    departments: frozenset[str] = frozenset()
    provider: str = Field(min_length=1, description="name of the provider that checked it")
    external_id: str = Field("", description="the provider's own id: LDAP entry DN, OIDC sub")
    groups: tuple[str, ...] = Field((), description="directory groups found (for the audit log)")
