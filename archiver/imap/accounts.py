"""IMAP accounts to poll: pydantic models and the loader of the accounts file (TOML or JSON).

The file's path comes from the setting ``MAILVAULT_IMAP_ACCOUNTS``. A TOML example::

    [[accounts]]
    name = "journal"
    host = "imap.example.com"
    username = "journal@example.com"
    password = "..."
    mode = "journal"
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from archiver.errors import ImapAccountsError

TlsMode = Literal["implicit", "starttls", "none"]
_DEFAULT_PORTS: dict[str, int] = {"implicit": 993, "starttls": 143, "none": 143}


class ImapAccount(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The name is part of checkpoint keys and source details, hence the restricted alphabet.
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
    host: str
    port: int | None = Field(None, description="default 993 for implicit TLS, else 143")
    tls: TlsMode = "implicit"
    verify: bool = Field(True, description="verify the server certificate and host name")
    ca_file: Path | None = Field(None, description="CA bundle to verify against (default: system)")
    username: str
    password: SecretStr | None = None
    oauth2_token: SecretStr | None = Field(None, description="OAuth2 access token, for XOAUTH2")
    include: list[str] = Field(default_factory=lambda: ["*"], description="folder name globs")
    exclude: list[str] = Field(default_factory=list)
    poll_interval: int = Field(300, ge=10, description="seconds between scheduled polls")
    mode: Literal["copy", "journal"] = "copy"
    journal_folder: str | None = Field(
        None, description="journal mode: move archived mail here instead of deleting it"
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.password is None) == (self.oauth2_token is None):
            raise ValueError("give exactly one of password and oauth2_token")
        if self.journal_folder is not None and self.mode != "journal":
            raise ValueError("journal_folder only applies to mode = 'journal'")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or _DEFAULT_PORTS[self.tls]


class ImapAccounts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: list[ImapAccount] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names = [a.name for a in self.accounts]
        if len(names) != len(set(names)):
            raise ValueError("account names must be unique")
        return self

    def select(self, name: str | None) -> list[ImapAccount]:
        """Every account, or the one named (ImapAccountsError when there is none)."""
        if name is None:
            return list(self.accounts)
        chosen = [a for a in self.accounts if a.name == name]
        if not chosen:
            known = ", ".join(a.name for a in self.accounts) or "none"
            raise ImapAccountsError("(accounts)", f"no account named {name!r} (known: {known})")
        return chosen


def load_accounts(path: Path | None) -> ImapAccounts:
    """Read the accounts file; TOML unless its name ends in .json."""
    if path is None:
        raise ImapAccountsError("-", "not configured (set MAILVAULT_IMAP_ACCOUNTS)")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ImapAccountsError(str(path), exc.strerror or str(exc)) from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        return ImapAccounts.model_validate(data)
    except (ValueError, ValidationError) as exc:  # JSON/TOML decode errors are ValueErrors
        raise ImapAccountsError(str(path), str(exc)) from exc
