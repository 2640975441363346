"""One audit record and its place in the hash chain.

Each record's ``hash`` is the SHA-256 of a canonical JSON encoding of every other field,
``prev_hash`` included, so changing, removing, inserting or reordering a record breaks the chain
at a point verification can name.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

# prev_hash of the first record: a fixed value, so a log cannot silently start anywhere else
GENESIS = "0" * 64


class AuditAction(StrEnum):
    SIGN_IN = "sign_in"
    SIGN_IN_FAILED = "sign_in_failed"
    SIGN_OUT = "sign_out"
    SEARCH = "search"
    VIEW = "view"
    VIEW_RAW = "view_raw"
    TAG_CHANGE = "tag_change"
    RULE_CHANGE = "rule_change"
    USER_CHANGE = "user_change"
    ROLE_CHANGE = "role_change"
    TOKEN_CHANGE = "token_change"
    SAVED_SEARCH_CHANGE = "saved_search_change"
    # reading settings rather than mail: rules, the directory, users, roles, tokens, tags
    CONFIG_READ = "config_read"
    EXPORT = "export"
    HOLD_CHANGE = "hold_change"
    RETENTION_CHANGE = "retention_change"
    # one message deleted by a disposition run (its tombstone names the run and the policy)
    DISPOSE = "dispose"
    CONFIG_CHANGE = "config_change"
    AUDIT_SEARCH = "audit_search"
    AUDIT_EXPORT = "audit_export"
    AUDIT_VERIFY = "audit_verify"
    # written by the log itself: the last record of a sealed segment, naming its first record
    AUDIT_SEAL = "audit_seal"


class Outcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    FAILED = "failed"


class AuditEvent(BaseModel):
    """What a caller records; the log adds the sequence number, the time and the hashes."""

    model_config = ConfigDict(frozen=True)

    actor: str = ""  # username; empty for an anonymous request (a failed sign-in names it)
    actor_roles: tuple[str, ...] = ()
    client: str = ""  # client address
    action: AuditAction
    target: str = ""  # message id, rule name, user name, ...
    details: dict[str, Any] = Field(default_factory=dict)  # e.g. query text and result total
    outcome: Outcome = Outcome.SUCCESS
    request_id: str = ""


class AuditRecord(AuditEvent):
    seq: int = Field(ge=1)
    time: AwareDatetime
    prev_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @classmethod
    def chained(
        cls, event: AuditEvent, *, seq: int, prev_hash: str, time: datetime | None = None
    ) -> AuditRecord:
        draft = cls.model_validate(
            {
                **event.model_dump(),
                "seq": seq,
                "time": time or datetime.now(UTC),
                "prev_hash": prev_hash,
                "hash": GENESIS,
            }
        )
        # hashed as it is stored (the JSON form), so a reader recomputes exactly this
        return draft.model_copy(update={"hash": draft.computed_hash()})

    def computed_hash(self) -> str:
        return chain_hash(self.model_dump(mode="json", exclude={"hash"}))

    def encode(self) -> bytes:
        """The stored form (one line of a segment too)."""
        return canonical_json(self.model_dump(mode="json"))


def canonical_json(value: Any) -> bytes:
    # sorted keys, no whitespace, UTF-8 as is: the same record always gives the same bytes
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def chain_hash(fields: dict[str, Any]) -> str:
    body = {k: v for k, v in fields.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()
