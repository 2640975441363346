"""The department directory: address → name, department, manager, imported from CSV or JSON.

Each message gets ``department/<department>`` for the departments of its sender, or of everyone
involved (header From/To/Cc/Bcc/Reply-To and the envelope recipients), as configured.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError, field_validator

from archiver.errors import InvalidTagging
from archiver.ports import Document
from archiver.tagging.model import department_tag

Scope = Literal["sender", "participants"]
Format = Literal["csv", "json"]

# column names people actually use, in English and Chinese
_COLUMNS = {
    "address": ("address", "email", "e-mail", "mail", "邮箱", "邮件地址", "地址"),
    "name": ("name", "姓名", "名字"),
    "department": ("department", "dept", "部门"),
    "manager": ("manager", "经理", "主管", "上级"),
}


class Person(BaseModel):
    address: str
    name: str = ""
    department: str = ""
    manager: str = ""

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        address = value.strip().lower()
        if "@" not in address or " " in address:
            raise ValueError(f"{value!r} is not an email address")
        return address

    @field_validator("manager")
    @classmethod
    def _manager(cls, value: str) -> str:
        return value.strip().lower() if "@" in value else value.strip()


def parse_directory(data: bytes, fmt: Format) -> list[Person]:
    """People from a CSV file (with a header row) or a JSON list of objects."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidTagging("directory", f"not UTF-8: {exc}") from exc
    rows = _csv_rows(text) if fmt == "csv" else _json_rows(text)
    people: dict[str, Person] = {}
    for where, row in rows:
        try:
            person = Person.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise InvalidTagging("directory", f"{loc}: {first['msg']}", where) from exc
        if person.department:
            department_tag(person.department)  # raises for a department that cannot be a tag
        people[person.address] = person  # a later row for the same address wins
    return list(people.values())


def _canonical(header: str) -> str | None:
    key = header.strip().lower()
    return next((name for name, aliases in _COLUMNS.items() if key in aliases), None)


def _csv_rows(text: str) -> list[tuple[str, dict[str, str]]]:
    # newline="": the csv module reads line ends itself (quoted fields may hold them)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return _read_csv(reader)
    except csv.Error as exc:
        raise InvalidTagging(
            "directory", f"not a readable CSV file: {exc}", f"line {reader.line_num}"
        ) from exc


def _read_csv(reader: Any) -> list[tuple[str, dict[str, str]]]:
    header = next(reader, None)
    if header is None:
        raise InvalidTagging("directory", "the CSV file is empty")
    columns = [_canonical(h) for h in header]
    if "address" not in columns:
        raise InvalidTagging("directory", f"no address column in the header {header}", "line 1")
    rows = []
    for line, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        row = {c: v.strip() for c, v in zip(columns, values, strict=False) if c}
        rows.append((f"line {line}", row))
    return rows


def _json_rows(text: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidTagging("directory", f"not JSON: {exc}") from exc
    if isinstance(data, Mapping):  # {"address": {...}} is accepted too
        data = [{"address": k, **v} if isinstance(v, Mapping) else v for k, v in data.items()]
    if not isinstance(data, list) or not all(isinstance(r, Mapping) for r in data):
        raise InvalidTagging("directory", "expected a list of objects")
    rows = []
    for i, item in enumerate(data):
        row = {c: v for k, v in item.items() if (c := _canonical(str(k)))}
        rows.append((f"item {i}", row))
    return rows


@dataclass(frozen=True)
class Directory:
    people: Mapping[str, Person] = field(default_factory=dict)
    scope: Scope = "participants"
    version: int = 0

    def tags_for(self, doc: Document) -> set[str]:
        addresses = sender_addresses(doc) if self.scope == "sender" else participants(doc)
        departments = {p.department for a in addresses if (p := self.people.get(a))}
        return {department_tag(d) for d in departments if d}


def sender_addresses(doc: Document) -> set[str]:
    return {a["address"].lower() for a in doc.get("from") or [] if a.get("address")}


def participants(doc: Document) -> set[str]:
    keys: Sequence[str] = ("from", "to", "cc", "bcc", "reply_to")
    header = {a["address"].lower() for k in keys for a in doc.get(k) or [] if a.get("address")}
    return header | {a.lower() for a in doc.get("envelope_to") or []}


# the document fields Directory.tags_for reads
DIRECTORY_READS = frozenset({"from", "to", "cc", "bcc", "reply_to", "envelope_to"})
