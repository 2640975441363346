"""Permissions, roles and scope: pure rules, tested over every combination of built-in roles."""

from __future__ import annotations

from itertools import combinations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archiver.access.model import BUILTIN_ROLES, READING, Permission, Principal, Scope

ROLE_SETS = [
    tuple(BUILTIN_ROLES[n] for n in names)
    for k in range(len(BUILTIN_ROLES) + 1)
    for names in combinations(sorted(BUILTIN_ROLES), k)
]


def test_admin_and_auditor_read_no_mail() -> None:
    for name in ("admin", "auditor"):
        principal = Principal(username="u", roles=(BUILTIN_ROLES[name],))
        assert not (principal.permissions & READING)
        assert principal.scope().nothing and principal.scope(Permission.VIEW).nothing


def test_a_department_lead_reads_only_their_departments() -> None:
    lead = Principal(
        username="li", roles=(BUILTIN_ROLES["department_lead"],), departments=frozenset({"技术部"})
    )
    assert lead.scope() == Scope(tags=frozenset({"department/技术部"}))
    assert not lead.may(Permission.VIEW_RAW) and not lead.may(Permission.EXPORT)
    assert Principal(username="x", roles=(BUILTIN_ROLES["department_lead"],)).scope().nothing


@pytest.mark.parametrize("roles", ROLE_SETS, ids=lambda r: "+".join(x.name for x in r) or "none")
def test_scope_follows_the_widest_granting_role(roles: tuple) -> None:  # type: ignore[type-arg]
    principal = Principal(username="u", roles=roles, departments=frozenset({"财务部"}))
    for permission in Permission:
        scope = principal.scope(permission)
        granting = [r for r in roles if permission in r.permissions]
        if not granting:
            assert scope.nothing
        elif all(r.department_scoped for r in granting):
            assert scope == Scope(tags=frozenset({"department/财务部"}))
        else:
            assert scope.everything


@given(
    st.sets(st.sampled_from(sorted(BUILTIN_ROLES))),
    st.none() | st.frozensets(st.sampled_from(list(Permission))),
)
def test_a_token_never_widens_its_users_permissions(
    names: set[str], token: frozenset[Permission] | None
) -> None:
    roles = tuple(BUILTIN_ROLES[n] for n in sorted(names))
    user = Principal(username="u", roles=roles)
    acting = Principal(username="u", roles=roles, token_permissions=token)
    assert acting.permissions <= user.permissions
    if token is not None:
        assert acting.permissions <= token
