"""`mailvault users ...` and the first admin of `mailvault init`, run as the command is run:
a subprocess, against a bucket and index of this module's own (the real SeaweedFS and Redis)."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from archiver import bootstrap
from archiver.access.identity import Identity
from archiver.access.users import UserDirectory
from archiver.errors import AccountDisabled, AccountLocked, SignInFailed
from archiver.settings import Settings
from bench.cleanup import drop_bucket, drop_index, throwaway_settings

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long enough passphrase"
FAST_ARGON2 = {
    "MAILVAULT_ARGON2_TIME_COST": "1",
    "MAILVAULT_ARGON2_MEMORY_KIB": "8",
    "MAILVAULT_ARGON2_PARALLELISM": "1",
}


class Cli:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = {
            **os.environ,
            **FAST_ARGON2,
            "PYTHONPATH": str(ROOT),
            "MAILVAULT_S3_BUCKET": settings.s3_bucket,
            "MAILVAULT_ES_INDEX": settings.es_index,
        }

    def __call__(self, *args: str, stdin: str = "", ok: bool = True) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "ingest.cli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=ROOT,
            timeout=120,
        )
        assert (done.returncode == 0) == ok, done.stdout + done.stderr
        return done.stdout if ok else done.stderr

    def directory(self) -> UserDirectory:
        return bootstrap.user_directory(
            self.settings.model_copy(
                update={"argon2_time_cost": 1, "argon2_memory_kib": 8, "argon2_parallelism": 1}
            )
        )


@pytest.fixture(scope="module")
def first_init(settings: Settings) -> Iterator[tuple[Cli, str]]:
    """An archive of this module's own, and what its first `mailvault init` printed."""
    own = throwaway_settings(settings, f"{settings.es_index}-users-cli")
    cli = Cli(own)
    printed = cli("init")
    yield cli, printed
    drop_index(bootstrap.search_index(own).client, own.es_index)
    drop_bucket(bootstrap.raw_store(own).client, own.s3_bucket)


@pytest.fixture
def cli(first_init: tuple[Cli, str]) -> Cli:
    return first_init[0]


def test_init_creates_the_first_admin_once_with_a_one_time_password(
    first_init: tuple[Cli, str],
) -> None:
    cli, printed = first_init
    assert "bucket and index ready" in printed
    [line] = [line for line in printed.splitlines() if "one-time password" in line]
    password = line.rsplit(": ", 1)[1]
    again = cli("init")
    assert "bucket and index ready" in again and "password" not in again
    principal = cli.directory().authenticate("admin", password, "127.0.0.1")
    assert [r.name for r in principal.roles] == ["admin"]


def test_add_list_and_sign_in_with_a_password_from_stdin(cli: Cli) -> None:
    out = cli(
        "users", "add", "alice", "--role", "legal", "--role", "auditor",
        "--department", "技术部", "--display-name", "爱丽丝", "--email", "alice@example.com",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert "added user alice (auditor, legal)" in out and PASSWORD not in out
    listed = {u["username"]: u for u in json.loads(cli("users", "list", "--json"))}
    alice = listed["alice"]
    assert alice["roles"] == ["auditor", "legal"] and alice["departments"] == ["技术部"]
    assert alice["display_name"] == "爱丽丝" and alice["locked_until"] is None
    assert all("password_hash" not in u for u in listed.values())
    assert "alice\tlocal\tauditor,legal\tactive\t爱丽丝" in cli("users", "list")
    assert cli.directory().authenticate("alice", PASSWORD, "127.0.0.1").username == "alice"
    assert "exists already" in cli("users", "add", "alice", "--generate", ok=False)


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--role", "superuser"], "unknown role 'superuser'"),
        (["--role", "admin"], "shorter than"),  # password "short" from stdin
    ],
)
def test_add_refuses_unknown_roles_and_weak_passwords(cli: Cli, args: list[str], why: str) -> None:
    stdin = "short\n" if why == "shorter than" else PASSWORD + "\n"
    err = cli("users", "add", "mallory", *args, "--password-stdin", stdin=stdin, ok=False)
    assert why in err
    assert "mallory" not in cli("users", "list")


def test_add_without_a_terminal_asks_for_a_password_flag(cli: Cli) -> None:
    assert "--password-stdin or --generate" in cli("users", "add", "tty-less", ok=False)


def test_passwd_with_a_generated_password_replaces_the_old_one(cli: Cli) -> None:
    cli("users", "add", "bob", "--password-stdin", stdin=PASSWORD + "\n")
    out = cli("users", "passwd", "bob", "--generate")
    password = out.split("one-time password: ", 1)[1].strip()
    directory = cli.directory()
    assert directory.authenticate("bob", password, "127.0.0.1").username == "bob"
    with pytest.raises(SignInFailed):
        directory.authenticate("bob", PASSWORD, "127.0.0.1")
    assert "no user 'nobody'" in cli("users", "passwd", "nobody", "--generate", ok=False)


def test_disable_and_enable(cli: Cli) -> None:
    cli("users", "add", "carol", "--password-stdin", stdin=PASSWORD + "\n")
    cli("users", "disable", "carol")
    assert "carol\tlocal\t-\tdisabled" in cli("users", "list")
    with pytest.raises(AccountDisabled):
        cli.directory().authenticate("carol", PASSWORD, "127.0.0.1")
    cli("users", "enable", "carol")
    assert cli.directory().authenticate("carol", PASSWORD, "127.0.0.1").username == "carol"


def test_roles_set_add_remove_and_unknown_refused(cli: Cli) -> None:
    cli("users", "add", "dave", "--role", "auditor", "--generate")
    assert "roles of dave: auditor, legal" in cli("users", "roles", "dave", "--add", "legal")
    assert "roles of dave: legal" in cli("users", "roles", "dave", "--remove", "auditor")
    out = cli("users", "roles", "dave", "--set", "compliance_officer", "department_lead")
    assert "roles of dave: compliance_officer, department_lead" in out
    assert "unknown role 'ghost'" in cli("users", "roles", "dave", "--add", "ghost", ok=False)
    assert cli.directory().get("dave").roles == ("compliance_officer", "department_lead")


def test_a_locked_user_is_listed_as_locked_and_unlock_lifts_it(cli: Cli) -> None:
    cli("users", "add", "erin", "--password-stdin", stdin=PASSWORD + "\n")
    directory = cli.directory()
    failures = directory.lockout.account_max_failures
    for _ in range(failures):
        with pytest.raises((SignInFailed, AccountLocked)):
            directory.authenticate("erin", "wrong password!", "127.0.0.2")
    assert "erin\tlocal\t-\tactive, locked until" in cli("users", "list")
    cli("users", "unlock", "erin")
    assert "erin\tlocal\t-\tactive\t" in cli("users", "list")
    assert directory.authenticate("erin", PASSWORD, "127.0.0.2").username == "erin"


def test_a_shadow_account_is_listed_with_its_provider_and_has_no_password_to_set(
    cli: Cli,
) -> None:
    directory = cli.directory()
    directory.shadow_sign_in(
        Identity(
            username="zhangsan",
            display_name="张三",
            roles=frozenset({"legal"}),
            provider="ldap",
            external_id="uid=zhangsan,ou=people,dc=example,dc=com",
        )
    )
    assert "zhangsan\tldap\tlegal\tactive\t张三" in cli("users", "list")
    refused = cli("users", "passwd", "zhangsan", "--generate", ok=False)
    assert "'zhangsan' signs in through ldap: its password is set there" in refused
    assert directory.get("zhangsan").password_hash is None
    cli("users", "disable", "zhangsan")
    assert "zhangsan\tldap\tlegal\tdisabled" in cli("users", "list")
    listed = {u["username"]: u for u in json.loads(cli("users", "list", "--json"))}
    assert listed["zhangsan"]["provider"] == "ldap"
    assert listed["zhangsan"]["directory_roles"] == ["legal"]


def test_every_change_at_the_command_line_is_audited_as_the_os_user(cli: Cli) -> None:
    cli("users", "add", "audited", "--role", "auditor", "--password-stdin", stdin=PASSWORD + "\n")
    cli("users", "roles", "audited", "--add", "legal")
    cli("users", "disable", "audited")
    log = bootstrap.audit_log(cli.settings)
    mine = [r for r in log.records() if r.target == "user:audited"]
    assert [r.details["command"] for r in mine] == ["add", "roles", "disable"]
    assert {r.actor for r in mine} == {f"cli:{getpass.getuser()}"}
    assert mine[0].details["role"] == ["auditor"] and mine[1].details["add"] == ["legal"]
    assert all(PASSWORD not in json.dumps(r.details) for r in mine)
