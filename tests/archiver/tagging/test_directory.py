"""Directory files from users: any bytes give people or a typed error, never a crash."""

from __future__ import annotations

from contextlib import suppress

from hypothesis import given
from hypothesis import strategies as st

from archiver.errors import InvalidTagging
from archiver.tagging.directory import parse_directory


def test_line_ends_of_every_kind_are_read() -> None:
    for end in (b"\r\n", b"\n", b"\r"):
        data = end.join([b"address,department", "li@example.cn,技术部".encode(), b""])
        [person] = parse_directory(data, "csv")
        assert (person.address, person.department) == ("li@example.cn", "技术部")


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_csv_or_json_is_people_or_a_typed_error(data: bytes) -> None:
    for fmt in ("csv", "json"):
        with suppress(InvalidTagging):  # anything else fails the test
            parse_directory(data, fmt)  # type: ignore[arg-type]
