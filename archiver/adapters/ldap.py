"""Sign-in against LDAP / Active Directory (ldap3): search the user, bind as them, map groups.

One sign-in: (1) refuse an empty password before anything else — a simple bind with a DN and no
password is an *unauthenticated* bind that servers answer with success (RFC 4513 5.1.2); (2)
connect as the search account (or anonymously) and find exactly one entry with the user filter,
the username escaped (RFC 4515) so that ``*)(uid=*`` is a name, not a filter; (3) bind as that
entry's DN with the password on a connection of its own; (4) read the user's groups (memberOf,
or a search of the group base) with the search account; (5) map groups to role names and
departments through the configured maps. Group DNs are compared normalised (attribute types and
values case-folded, spaces around separators dropped), as directories compare them.

A user in no mapped group signs in with no roles and no departments: whether someone may sign in
is the directory's business, what they may see is the archive's, and the archive's roles can be
granted locally too (the composition merges them). With none, the principal may do nothing and
its scope is empty (archiver/access/model.py), so nothing leaks either way, and the person sees
"you have no access" rather than a "wrong password" they would keep retrying.

Every connection has a connect and a receive timeout, so an unreachable or hung directory answers
BackendUnavailable within a few seconds instead of holding the sign-in request.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ldap3 import ANONYMOUS, NONE, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPCommunicationError,
    LDAPException,
    LDAPInvalidDnError,
    LDAPResponseTimeoutError,
    LDAPSASLPrepError,
    LDAPStartTLSError,
)
from ldap3.protocol.sasl.sasl import sasl_prep
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from archiver.access.identity import Identity
from archiver.errors import BackendFailed, BackendUnavailable, SignInFailed

BACKEND = "LDAP"
MAX_USERNAME = 256
# Result codes (RFC 4511 4.1.9) that mean "try again later" rather than "misconfigured".
_TRANSIENT = {3: "timeLimitExceeded", 51: "busy", 52: "unavailable", 80: "other"}
_INVALID_CREDENTIALS = 49


class LdapConfig(BaseModel):
    """How to reach the directory and read it; built from the settings in archiver/bootstrap.py."""

    model_config = ConfigDict(frozen=True)

    url: str = Field(pattern=r"^ldaps?://\S+$")
    start_tls: bool = False
    ca_file: Path | None = None
    bind_dn: str = ""
    bind_password: SecretStr = SecretStr("")
    user_base: str
    user_filter: str = "(uid={username})"
    username_attribute: str = "uid"
    display_name_attribute: str = "displayName"
    email_attribute: str = "mail"
    group_base: str = ""
    group_filter: str = "(member={dn})"
    role_map: dict[str, list[str]] = Field(default_factory=dict)
    department_map: dict[str, list[str]] = Field(default_factory=dict)
    timeout: float = Field(5.0, gt=0)
    name: str = "ldap"

    @field_validator("user_filter")
    @classmethod
    def _has_username(cls, value: str) -> str:
        if "{username}" not in value:
            raise ValueError("the user filter must contain {username}")
        return value

    @field_validator("group_filter")
    @classmethod
    def _has_dn(cls, value: str) -> str:
        if "{dn}" not in value:
            raise ValueError("the group filter must contain {dn}")
        return value

    @field_validator("role_map", "department_map")
    @classmethod
    def _dns_parse(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for dn in value:
            normal_dn(dn)  # raises ValueError on a DN that is not one
        return value


def normal_dn(dn: str) -> str:
    """A DN as directories compare it: ``CN=Legal, ou=Groups`` and ``cn=legal,ou=groups`` alike."""
    try:
        parts = parse_dn(dn, strip=True)
    except LDAPInvalidDnError as e:
        raise ValueError(f"not a DN: {dn!r} ({e})") from e
    return ",".join(f"{kind.lower()}={value.lower()}" for kind, value, _ in parts)


class LdapProvider:
    """An IdentityProvider (archiver/ports.py) backed by an LDAP or Active Directory server."""

    def __init__(self, config: LdapConfig) -> None:
        self._config = config
        self._roles = _normalised(config.role_map)
        self._departments = _normalised(config.department_map)
        tls = Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=str(config.ca_file) if config.ca_file else None,
        )
        self._server = Server(
            config.url,
            tls=tls,
            connect_timeout=config.timeout,
            get_info=NONE,  # no schema reads: one request less per bind
        )

    @property
    def name(self) -> str:
        return self._config.name

    def authenticate(self, username: str, password: str) -> Identity:
        if not password:
            raise SignInFailed(username, "empty password (LDAP would take it as anonymous)")
        if not username.strip() or len(username) > MAX_USERNAME:
            raise SignInFailed(username)
        try:
            # what ldap3 sends (RFC 4013 SASLprep): a password it cannot send is no one's
            sasl_prep(password)  # type: ignore[no-untyped-call]
        except LDAPSASLPrepError as e:
            raise SignInFailed(username, f"password not sendable: {e}") from e
        config = self._config
        with self._connection(config.bind_dn, config.bind_password.get_secret_value()) as search:
            if search is None:
                raise BackendFailed(BACKEND, f"the search account {config.bind_dn!r} was refused")
            entry = self._find_user(search, username)
            with self._connection(entry["dn"], password) as user:
                if user is None:
                    raise SignInFailed(username)
            groups = self._groups(search, entry)
        attributes = entry["attributes"]
        return Identity(
            username=_first(attributes, config.username_attribute) or username,
            display_name=_first(attributes, config.display_name_attribute),
            email=_first(attributes, config.email_attribute),
            roles=_mapped(groups, self._roles),
            departments=_mapped(groups, self._departments),
            provider=self.name,
            external_id=entry["dn"],
            groups=tuple(sorted(groups)),
        )

    def _find_user(self, search: Connection, username: str) -> dict[str, Any]:
        config = self._config
        query = config.user_filter.replace("{username}", escape_filter_chars(username))
        attributes = [
            config.username_attribute,
            config.display_name_attribute,
            config.email_attribute,
        ]
        if not config.group_base:
            attributes.append("memberOf")
        entries = self._search(search, config.user_base, query, attributes, size_limit=2)
        if len(entries) != 1:
            # None or ambiguous alike: never guess which entry the password belongs to
            raise SignInFailed(username)
        return entries[0]

    def _groups(self, search: Connection, entry: dict[str, Any]) -> set[str]:
        config = self._config
        if not config.group_base:
            return {str(dn) for dn in entry["attributes"].get("memberOf", [])}
        query = config.group_filter.replace("{dn}", escape_filter_chars(entry["dn"]))
        return {e["dn"] for e in self._search(search, config.group_base, query, [], size_limit=0)}

    def _search(
        self,
        conn: Connection,
        base: str,
        query: str,
        attributes: list[str],
        size_limit: int,
    ) -> list[dict[str, Any]]:
        with _mapped_errors():
            conn.search(base, query, SUBTREE, attributes=attributes, size_limit=size_limit)
        code = conn.result.get("result", 0)
        if code not in (0, 4):  # 4: sizeLimitExceeded, with the entries up to the limit
            _raise_for_result(conn.result, f"search of {base!r}")
        return [r for r in conn.response or [] if r.get("type") == "searchResEntry"]

    @contextmanager
    def _connection(self, dn: str, password: str) -> Iterator[Connection | None]:
        """A connection bound as dn (anonymous when dn is empty); None when the server refuses
        the credentials. Closed on exit."""
        conn = Connection(
            self._server,
            user=dn or None,
            password=password or None,
            authentication=SIMPLE if dn else ANONYMOUS,
            # whole seconds: ldap3 packs it into SO_RCVTIMEO as an integer
            receive_timeout=math.ceil(self._config.timeout),
            auto_referrals=False,  # AD refers to other domains' controllers: never follow
            read_only=True,
            raise_exceptions=False,
        )
        try:
            with _mapped_errors():
                conn.open()
                if self._config.start_tls and not conn.start_tls():
                    _raise_for_result(conn.result, "StartTLS")
                bound = conn.bind()
            if not bound and conn.result.get("result") != _INVALID_CREDENTIALS:
                _raise_for_result(conn.result, "bind")
            yield conn if bound else None
        finally:
            # a connection that failed is closed already: its error is the one that counts
            with suppress(LDAPException, OSError):
                conn.unbind()


@contextmanager
def _mapped_errors() -> Iterator[None]:
    """ldap3's exceptions as the archive's typed errors."""
    try:
        yield
    except (LDAPCommunicationError, LDAPResponseTimeoutError, OSError) as e:
        # ldap3 re-raises an ldaps handshake failure as a new exception holding only the text
        if isinstance(e, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(e):
            raise BackendFailed(
                BACKEND, f"the server's certificate is not trusted (LDAP_CA_FILE?): {e}"
            ) from e
        raise BackendUnavailable(BACKEND, f"{type(e).__name__}: {e}") from e
    except LDAPStartTLSError as e:
        raise BackendFailed(BACKEND, f"StartTLS failed: {e}") from e
    except LDAPException as e:
        raise BackendFailed(BACKEND, f"{type(e).__name__}: {e}") from e


def _raise_for_result(result: Mapping[str, Any], what: str) -> None:
    code = result.get("result")
    detail = f"{what}: {result.get('description')} ({code}) {result.get('message') or ''}".strip()
    if code in _TRANSIENT:
        raise BackendUnavailable(BACKEND, detail)
    raise BackendFailed(BACKEND, detail)


def _normalised(mapping: Mapping[str, list[str]]) -> dict[str, frozenset[str]]:
    return {normal_dn(dn): frozenset(values) for dn, values in mapping.items()}


def _mapped(groups: set[str], mapping: Mapping[str, frozenset[str]]) -> frozenset[str]:
    found: set[str] = set()
    for dn in groups:
        try:
            found |= mapping.get(normal_dn(dn), frozenset())
        except ValueError:
            continue  # a value that is no DN names no mapped group
    return frozenset(found)


def _first(attributes: Mapping[str, Any], name: str) -> str:
    value = attributes.get(name)
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)
