"""Matters and legal holds.

A matter (a case: name, case number, owners, status) holds one or more holds. A hold covers mail
by custodians (addresses, users of the archive, departments: any of them) and/or a query in the
search query language, optionally within a date range on the date sent. Every criterion given
must hold; a hold must name custodians or a query. A hold covers mail archived before it and mail
that arrives later, until it is released (with a reason); released holds stay in their matter as
a record.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

MatterStatus = Literal["open", "closed"]
HoldStatus = Literal["active", "released"]


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


class Custodians(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    addresses: tuple[str, ...] = ()
    users: tuple[str, ...] = ()  # archive users: their email addresses, looked up when applied
    departments: tuple[str, ...] = ()

    @field_validator("addresses")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted({a.strip().lower() for a in value if a.strip()}))

    @property
    def empty(self) -> bool:
        return not (self.addresses or self.users or self.departments)


class HoldCriteria(BaseModel):
    """What a hold covers; checked when the hold is added."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    custodians: Custodians = Custodians()
    query: str = Field("", max_length=2000)
    sent_after: date | None = None  # inclusive, the display time zone's days
    sent_before: date | None = None  # inclusive

    @model_validator(mode="after")
    def _names_something(self) -> HoldCriteria:
        if self.custodians.empty and not self.query.strip():
            raise ValueError("a hold names custodians, a query, or both")
        if self.sent_after and self.sent_before and self.sent_after > self.sent_before:
            raise ValueError("sent_after is later than sent_before")
        return self


class Hold(HoldCriteria):
    id: str = Field(default_factory=lambda: new_id("hold"))
    matter: str
    status: HoldStatus = "active"
    created_by: str = ""
    created_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    released_by: str = ""
    released_at: AwareDatetime | None = None
    release_reason: str = ""

    @property
    def active(self) -> bool:
        return self.status == "active"


class MatterFields(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    case_number: str = Field("", max_length=100)
    description: str = Field("", max_length=4000)
    owners: tuple[str, ...] = ()


class Matter(MatterFields):
    id: str = Field(default_factory=lambda: new_id("matter"))
    status: MatterStatus = "open"
    holds: dict[str, Hold] = Field(default_factory=dict)
    created_by: str = ""
    created_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    closed_at: AwareDatetime | None = None
