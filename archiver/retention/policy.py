"""Retention policies: which mail one covers, how long it is kept, from when, and what then.

A policy's criteria are a query in the search query language (so ``合同`` covers exactly what a
search for 合同 finds) plus optional tags, departments and sources; every criterion given must
hold, and within one list any value will do. Its period counts from the date sent or the arrival
time. At the end it deletes, or keeps forever ("keep" with or without a period: kept at least
that long and then forever, which is forever).

Policies are versioned: saving or deleting one adds a version, and every message's decision
names the versions that made it (``name@v3``). The policy named ``default`` covers mail no other
policy matches; it has no criteria, and out of the box it keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from dateutil.relativedelta import relativedelta
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from archiver.errors import InvalidRetention
from archiver.models import SourceKind

DEFAULT_POLICY = "default"
M = TypeVar("M", bound=BaseModel)
POLICY_NAME = r"^[\w.\-]{1,64}$"
Unit = Literal["days", "months", "years"]
Basis = Literal["sent", "arrival"]
Action = Literal["delete", "keep"]
MAX_PERIOD_YEARS = 1000


class Period(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: int = Field(ge=1, le=100_000)
    unit: Unit

    @model_validator(mode="after")
    def _computable(self) -> Period:
        # a date past the year 9999 cannot be computed (nor stored): longer is "keep"
        years = self.amount / {"days": 365, "months": 12, "years": 1}[self.unit]
        if years > MAX_PERIOD_YEARS:
            raise ValueError(f"a period is at most {MAX_PERIOD_YEARS} years; keep: forever")
        return self

    def after(self, start: datetime) -> datetime:
        # calendar arithmetic: a year from 29 February is 28 February, never 1 March
        if self.unit == "days":
            return start + relativedelta(days=self.amount)
        if self.unit == "months":
            return start + relativedelta(months=self.amount)
        return start + relativedelta(years=self.amount)

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}"


class Criteria(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    query: str = Field("", max_length=2000)
    tags: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    sources: tuple[SourceKind, ...] = ()

    @property
    def everything(self) -> bool:
        return not (self.query.strip() or self.tags or self.departments or self.sources)


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=POLICY_NAME)
    description: str = Field("", max_length=2000)
    criteria: Criteria = Criteria()
    period: Period | None = None
    basis: Basis = "sent"
    action: Action

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        if self.action == "delete" and self.period is None:
            raise ValueError("a policy that deletes needs a period")
        if self.name == DEFAULT_POLICY and not self.criteria.everything:
            raise ValueError("the default policy covers what no other policy matches: no criteria")
        return self

    @property
    def forever(self) -> bool:
        return self.action == "keep"

    def expires(self, sent: datetime, arrival: datetime) -> datetime | None:
        """When the policy lets a message go; None for keep forever."""
        if self.forever or self.period is None:
            return None
        return self.period.after(sent if self.basis == "sent" else arrival)


BUILTIN_DEFAULT = Policy(
    name=DEFAULT_POLICY, action="keep", description="mail no policy matches is kept"
)


class PolicyVersion(BaseModel):
    """One saved version; `policy` None for the version that deleted the policy."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: int = Field(ge=0)
    policy: Policy | None
    saved_by: str = ""
    saved_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"


BUILTIN_DEFAULT_VERSION = PolicyVersion(
    name=DEFAULT_POLICY,
    version=0,
    policy=BUILTIN_DEFAULT,
    saved_by="mailvault",
    saved_at=datetime(2026, 1, 1, tzinfo=UTC),
)


def validated(model: type[M], data: Mapping[str, Any], what: str, whole: str = "") -> M:
    """`data` as a `model` (a policy, matter, hold), or InvalidRetention naming the first
    field at fault (`whole`, or `what`, when the fault is the whole object) and why."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or whole or what
        raise InvalidRetention(what, f"{where}: {first['msg']}") from exc
