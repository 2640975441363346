"""Names in an export package: safe on every platform, within their byte budgets, unique per
message (no services)."""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.exports.layout import (
    control_number,
    custodian_folder,
    custodian_of,
    hold_folder,
    mbox_name,
    message_file_name,
    safe_component,
)

RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{d}{n}" for d in ("COM", "LPT") for n in "123456789¹²³"
}


def assert_safe(name: str, max_bytes: int = 200) -> None:
    assert name
    assert len(name.encode()) <= max_bytes
    assert not set(name) & set('/\\:*?"<>|')
    assert all(unicodedata.category(c) not in {"Cc", "Cf", "Cs", "Zl", "Zp"} for c in name)
    assert name[0] not in ". " and name[-1] not in ". "
    assert name.split(".", 1)[0].rstrip(" ").upper() not in RESERVED
    assert unicodedata.is_normalized("NFC", name)


@settings(max_examples=400)
@given(st.text(), st.integers(min_value=1, max_value=255))
def test_any_text_gives_a_safe_component_within_the_limit(text: str, max_bytes: int) -> None:
    name = safe_component(text, max_bytes=max_bytes)
    assert_safe(name, max_bytes)
    assert safe_component(name, max_bytes=max_bytes) == name  # already safe: unchanged


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("季度报告", "季度报告"),
        ('Re: a/b\\c*d?e"f<g>h|i', "Re_ a_b_c_d_e_f_g_h_i"),
        ("  ..hidden. ", "hidden"),
        ("tab\tand\nnew line", "tab and new line"),
        ("nul\x00bell\x07", "nul_bell_"),
        ("CON", "_CON"),
        ("nul.eml", "_nul.eml"),
        ("com1 .txt", "_com1 .txt"),
        ("CONSOLE", "CONSOLE"),
        ("...", "_"),
        ("", "_"),
        ("e\u0301", "\u00e9"),  # NFC
        ("evil\u202egpj.exe", "evil_gpj.exe"),  # a right-to-left override disguises the end
    ],
)
def test_components(text: str, expected: str) -> None:
    assert safe_component(text) == expected


def test_truncation_cuts_on_a_character_boundary_and_keeps_names_safe() -> None:
    assert safe_component("审计报告", max_bytes=7) == "审计"  # 3 bytes each: not half of 计
    assert safe_component("a审", max_bytes=3) == "a"
    assert safe_component("审", max_bytes=2) == "_"
    assert safe_component("abc. def", max_bytes=5) == "abc"  # no trailing ". " after the cut
    assert safe_component("CONSOLE", max_bytes=3) == "_CO"  # the cut made a device name


SENT = datetime(2024, 3, 1, 16, 30, 5, tzinfo=timezone(timedelta(hours=8)))
SHA = hashlib.sha256(b"one").hexdigest()


def test_message_file_names() -> None:
    name = message_file_name(SENT, "Zhang.Wei@Example.CN", "季度报告: Q1/Q2", SHA)
    assert name == f"20240301-083005_zhang.wei@example.cn_季度报告_ Q1_Q2_{SHA[:12]}.eml"
    assert message_file_name(None, "", "", SHA, "pdf") == f"00000000-000000_____{SHA[:12]}.pdf"
    naive = message_file_name(datetime(2024, 3, 1, 8, 30, 5), "a@b", "s", SHA)
    assert naive.startswith("20240301-083005_")  # naive dates are taken as UTC
    with pytest.raises(ValueError):
        message_file_name(SENT, "a@b", "s", SHA, "../eml")
    with pytest.raises(ValueError):
        message_file_name(SENT, "a@b", "s", "not-a-hash")


def test_long_names_cut_the_subject_first_and_keep_hash_and_extension() -> None:
    name = message_file_name(SENT, "a@example.com", "很长的主题" * 100, SHA)
    assert len(name.encode()) <= 200
    assert name.startswith("20240301-083005_a@example.com_很长的主题")
    assert name.endswith(f"_{SHA[:12]}.eml")
    sender = "x" * 300 + "@example.com"
    name = message_file_name(SENT, sender, "subject " * 100, SHA)
    assert len(name.encode()) <= 200 and name.endswith(f"_{SHA[:12]}.eml")
    assert "_subject" in name  # the sender is cut too, so the subject keeps some room


@settings(max_examples=200)
@given(
    st.lists(st.binary(), min_size=2, max_size=20, unique=True),
    st.none() | st.datetimes(timezones=st.just(UTC)),
    st.text(),
    st.text(),
    st.sampled_from(["eml", "pdf"]),
)
def test_names_are_safe_and_unique_for_distinct_messages(
    contents: list[bytes], date: datetime | None, sender: str, subject: str, ext: str
) -> None:
    hashes = [hashlib.sha256(c).hexdigest() for c in contents]
    names = [message_file_name(date, sender, subject, h, ext) for h in hashes]
    for name in names:
        assert_safe(name)
        assert name.endswith(f".{ext}")
    assert len({n.lower() for n in names}) == len(names)  # case-insensitive file systems too


@given(st.text(), st.text(min_size=1))
def test_hold_folders_keep_the_hold_id(name: str, hold_id: str) -> None:
    folder = hold_folder(name, hold_id)
    assert_safe(folder)
    assert folder.endswith(f" ({safe_component(hold_id, max_bytes=64)})")


def test_hold_and_custodian_folders() -> None:
    assert hold_folder("诉讼保全 2024", "hold-7") == "诉讼保全 2024 (hold-7)"
    assert hold_folder("CON", "h1") == "_CON (h1)"
    long = hold_folder("案" * 200, "hold-1")
    assert len(long.encode()) <= 200 and long.endswith(" (hold-1)")
    assert custodian_folder(" Zhang.Wei@Example.CN ") == "zhang.wei@example.cn"
    assert custodian_folder('"a:b"@x') == "_a_b_@x"
    assert custodian_folder("") == "_"


def doc(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"from": [], "to": [], "cc": [], "bcc": [], "envelope_to": []}
    return {**base, **fields}


def person(address: str, name: str = "") -> dict[str, str]:
    return {"name": name, "address": address}


def test_custodian_of_a_hold_is_its_first_custodian_among_the_participants() -> None:
    message = doc(
        **{"from": [person("Boss@Corp.cn")]},
        to=[person("li@corp.cn")],
        bcc=[person("zhao@corp.cn")],
        envelope_to=["wang@corp.cn"],
    )
    assert custodian_of(message, ["zhao@corp.cn", "wang@corp.cn"]) == "wang@corp.cn"
    assert custodian_of(message, ["zz@corp.cn", "boss@corp.cn"]) == "boss@corp.cn"
    assert custodian_of(message, ["ZHAO@corp.cn"]) == "zhao@corp.cn"
    # none of the hold's custodians took part: the general rule
    assert custodian_of(message, ["nobody@corp.cn"]) == "wang@corp.cn"


def test_custodian_without_hold_custodians() -> None:
    envelope = doc(envelope_to=["env@corp.cn", "a@corp.cn"], to=[person("to@corp.cn")])
    assert custodian_of(envelope) == "env@corp.cn"
    to = doc(to=[person(""), person("To@Corp.cn")], **{"from": [person("f@corp.cn")]})
    assert custodian_of(to) == "to@corp.cn"
    assert custodian_of(doc(**{"from": [person("f@corp.cn")]})) == "f@corp.cn"
    assert custodian_of(doc()) == "unknown"
    assert custodian_of({"id": "x", "parse_failed": True}) == "unknown"  # a fallback document


def test_mbox_names_and_control_numbers() -> None:
    assert [mbox_name("li@corp.cn", n) for n in (1, 2, 12)] == [
        "li@corp.cn.mbox",
        "li@corp.cn_002.mbox",
        "li@corp.cn_012.mbox",
    ]
    assert control_number("exp-3f2a1c9d0e", 1) == "EXP3F2A1C9D0E-0000001"
    assert control_number("exp-3f2a1c9d0e", 1234567) == "EXP3F2A1C9D0E-1234567"
    with pytest.raises(ValueError):
        mbox_name("x", 0)
    with pytest.raises(ValueError):
        control_number("exp-1", 0)
