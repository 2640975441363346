"""The poller's pure parts: batching, folder selection, checkpoint keys, sources, accounts file.
The poller itself is tested against a real Dovecot in tests/ingest/test_imap.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from archiver.errors import ImapAccountsError
from archiver.imap.accounts import ImapAccount, load_accounts
from archiver.imap.sync import (
    MessageInfo,
    checkpoint_key,
    imap_source,
    selected_folders,
    uid_batches,
)

WHEN = datetime(2024, 1, 1, 2, 0, tzinfo=UTC)


def info(uid: int, size: int = 10) -> MessageInfo:
    return MessageInfo(uid=uid, flags=("\\Seen",), internaldate=WHEN, size=size)


def account(**changes: object) -> ImapAccount:
    return ImapAccount.model_validate(
        {
            "name": "journal",
            "host": "imap.example.com",
            "username": "j",
            "password": "pw",
            **changes,
        }
    )


def test_batches_are_bounded_by_count_and_bytes() -> None:
    infos = [info(1), info(2), info(3), info(4, size=1000), info(5), info(6)]
    assert list(uid_batches(infos, count=2, max_bytes=100)) == [[1, 2], [3], [4], [5, 6]]
    assert list(uid_batches([], count=2, max_bytes=100)) == []


def test_folders_are_chosen_by_globs_and_the_journal_target_is_never_archived() -> None:
    folders = ["INBOX", "归档", "归档.2023", "Trash", "已归档"]
    assert selected_folders(account(), folders) == sorted(folders)
    chosen = account(include=["INBOX", "归档*"], exclude=["*.2023"])
    assert selected_folders(chosen, folders) == ["INBOX", "归档"]
    journal = account(mode="journal", journal_folder="已归档")
    assert "已归档" not in selected_folders(journal, folders)


def test_checkpoint_keys_are_stable_per_folder_and_safe_for_any_name() -> None:
    key = checkpoint_key("journal", "归档/2024 & more")
    assert key == checkpoint_key("journal", "归档/2024 & more")
    assert key != checkpoint_key("journal", "归档/2023 & more")
    assert key.startswith("checkpoints/imap/journal/") and key.isascii()


def test_the_source_names_account_folder_uid_flags_and_internaldate() -> None:
    source = imap_source("journal", "收件箱", 77, info(5))
    assert source.kind == "imap" and source.detail == "journal/收件箱/77/5"
    assert source.received_at == WHEN
    assert source.attributes == {
        "account": "journal",
        "folder": "收件箱",
        "uid": "5",
        "uidvalidity": "77",
        "flags": "\\Seen",
        "internaldate": "2024-01-01T02:00:00+00:00",
    }


def test_accounts_load_from_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "accounts.toml"
    toml.write_text(
        '[[accounts]]\nname = "a"\nhost = "h"\nusername = "u"\noauth2_token = "ya29.s3cr3t"\n'
        'tls = "starttls"\nmode = "journal"\njournal_folder = "Archived"\n'
    )
    [loaded] = load_accounts(toml).accounts
    assert (loaded.effective_port, loaded.verify, loaded.include) == (143, True, ["*"])
    assert (
        loaded.oauth2_token is not None and loaded.oauth2_token.get_secret_value() == "ya29.s3cr3t"
    )
    assert "s3cr3t" not in repr(loaded)  # secrets stay out of logs

    data = tmp_path / "accounts.json"
    data.write_text('{"accounts": [{"name": "b", "host": "h", "username": "u", "password": "p"}]}')
    accounts = load_accounts(data)
    assert accounts.select("b")[0].effective_port == 993
    with pytest.raises(ImapAccountsError, match="no account named 'zz'"):
        accounts.select("zz")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[accounts]]\nname = "a"\nhost = "h"\nusername = "u"\n', "exactly one of"),
        ('[[accounts]]\nname = "a b"\nhost = "h"\nusername = "u"\npassword = "p"\n', "name"),
        (
            '[[accounts]]\nname = "a"\nhost = "h"\nusername = "u"\npassword = "p"\nmode = "x"',
            "mode",
        ),
        ("[[accounts]\n", "accounts.toml"),
    ],
)
def test_invalid_accounts_files_name_the_file_and_the_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(text)
    with pytest.raises(ImapAccountsError, match=problem):
        load_accounts(path)
    with pytest.raises(ImapAccountsError, match="not configured"):
        load_accounts(None)
