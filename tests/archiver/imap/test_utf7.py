"""Modified UTF-7 mailbox names (RFC 3501 5.1.3)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from archiver.errors import MailboxNameError
from archiver.imap import utf7

KNOWN = [
    ("INBOX", "INBOX"),
    ("收件箱", "&ZTZO9nux-"),
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # the RFC's example
    ("Tom & Jerry", "Tom &- Jerry"),
    ("归档.二〇二四", "&X1JoYw-.&TowwB06MVts-"),
    ("😀 emoji", "&2D3eAA- emoji"),  # outside the BMP: a UTF-16 surrogate pair
    ("", ""),
]


@pytest.mark.parametrize(("name", "wire"), KNOWN)
def test_encode_and_decode_known_names(name: str, wire: str) -> None:
    assert utf7.encode(name) == wire
    assert utf7.decode(wire) == name


@pytest.mark.parametrize("name", ["a&b&", "中文&English混合", "&&", "é", "日本語" * 40, "a-&-b"])
def test_round_trip(name: str) -> None:
    wire = utf7.encode(name)
    assert wire.isascii() and utf7.decode(wire) == name


@pytest.mark.parametrize("wire", ["&ZTZO9nux", "&!!!-", "中文", "&2D0-"])
def test_invalid_names_raise_a_typed_error(wire: str) -> None:
    with pytest.raises(MailboxNameError):
        utf7.decode(wire)


@pytest.mark.skipif(not shutil.which("doveadm"), reason="Dovecot (scripts/setup.sh) not installed")
def test_the_encoder_agrees_with_dovecot() -> None:
    names = ["项目 & 合同", "归档.二〇二四", "Ünïcödé/ü", "😀", "a&b", "日本語" * 20]
    result = subprocess.run(
        ["doveadm", "mailbox", "mutf7", *names], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == [utf7.encode(n) for n in names]
