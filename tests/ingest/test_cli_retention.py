"""`mailvault retention ...` and `mailvault holds ...`, run in-process (main(argv)) against an
archive of this module's own on the real SeaweedFS and Elasticsearch. Every call checks that it
left an audit record by cli:<the OS user> naming the command."""

from __future__ import annotations

import getpass
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from archiver import bootstrap
from archiver.audit.records import AuditRecord
from archiver.models import Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.settings import Settings
from bench.cleanup import throwaway_archive, throwaway_settings
from ingest import cli

pytestmark = pytest.mark.services

ACTOR = f"cli:{getpass.getuser()}"
NEWS = {
    "name": "news",
    "criteria": {"query": "newsletter"},
    "period": {"amount": 1, "unit": "years"},
    "action": "delete",
}
CONTRACTS = {
    "name": "contracts",
    "description": "contracts are kept 30 years",
    "criteria": {"query": "合同"},
    "period": {"amount": 30, "unit": "years"},
    "action": "delete",
}
LUNCH = {
    "name": "lunch",
    "criteria": {"query": "午饭"},
    "period": {"amount": 2, "unit": "years"},
    "action": "delete",
}


def mail(n: int, subject: str, body: str, sender: str = "a@example.cn") -> bytes:
    return (
        f"Message-ID: <ret-cli-{n}@example.cn>\r\nFrom: {sender}\r\nTo: b@example.cn\r\n"
        f"Subject: {subject}\r\nDate: Mon, 3 Jun 2019 10:00:00 +0800\r\n\r\n{body}\r\n"
    ).encode()


@dataclass
class Archive:
    settings: Settings
    archiver: Archiver
    ids: dict[str, str]  # subject -> message id

    def doc(self, subject: str) -> dict[str, Any] | None:
        self.archiver.index.refresh()
        found: dict[str, Any] | None = self.archiver.index.get(self.ids[subject])
        return found


@pytest.fixture(scope="module")
def archive(settings: Settings) -> Iterator[Archive]:
    """Four messages of June 2019; the newsletter policy is saved before they arrive, so the two
    newsletters are decided (and due) at once without a storage lock in the way."""
    own = throwaway_settings(settings, f"{settings.es_index}-ret-cli")
    own = own.model_copy(update={"retention_approval_limit": 1})
    with pytest.MonkeyPatch.context() as env, throwaway_archive(own) as archiver:
        # the settings the commands read (get_settings() is cached for the process): this
        # archive, and an approval limit of 1
        env.setattr(cli, "get_settings", lambda: own)
        bootstrap.retention(own).save_policy(NEWS, "lead")
        messages = {
            "newsletter 1": mail(1, "newsletter 1", "weekly news"),
            "newsletter 2": mail(2, "newsletter 2", "weekly news"),
            "合同 审批": mail(3, "合同 审批", "请审批合同"),
            "午饭": mail(4, "午饭", "吃饭", sender="zhang@example.cn"),
        }
        now = datetime.now(UTC)
        done = archiver.ingest_many(
            [
                Incoming(raw, Source(kind="import", detail=subject, received_at=now))
                for subject, raw in messages.items()
            ]
        )
        ids = {s: d.sha256 for s, d in zip(messages, done, strict=True) if d.sha256}
        assert len(ids) == len(messages), done
        yield Archive(own, archiver, ids)


class Cli:
    """main(argv) in-process; each call must leave exactly the audit records expected."""

    def __init__(self, archive: Archive, capsys: pytest.CaptureFixture[str]) -> None:
        self.archive = archive
        self.capsys = capsys
        self.log = bootstrap.audit_log(archive.settings)
        self.seen = max(self.log.store.record_seqs(after=0), default=0)
        self.disposed: list[AuditRecord] = []

    def __call__(self, *args: str, code: int = 0, audited: int = 1) -> tuple[str, str]:
        self.capsys.readouterr()
        assert cli.main(list(args)) == code, self.capsys.readouterr()
        out, err = self.capsys.readouterr()
        # a disposition's own record of each deletion (by the approver) is not the command's
        records = self.new_records()
        self.disposed = [r for r in records if r.action == "dispose"]
        records = [r for r in records if r.action != "dispose"]
        command = " ".join(a for a in args[:3] if re.fullmatch("[a-z]+", a))
        assert len(records) == audited, (args, records)
        assert all(r.actor == ACTOR and r.client == "local" for r in records)
        first = records[0]
        assert first.details["command"] == command, (command, first.details)
        assert first.outcome == ("success" if code in (0, cli.AWAITING_APPROVAL) else "failed")
        # a change's follow-up: the recompute after a save, the deletion after an approval
        follow = {"retention recompute", "retention execute"}
        assert all(r.details["command"] in follow for r in records[1:]), records
        return out, err

    def new_records(self) -> list[AuditRecord]:
        seqs = list(self.log.store.record_seqs(after=self.seen))
        self.seen = max(seqs, default=self.seen)
        raw = (self.log.store.get_record(s) for s in seqs)
        return [AuditRecord.model_validate_json(r) for r in raw if r is not None]


@pytest.fixture
def run_cli(archive: Archive, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(archive, capsys)


def policy_file(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / f"{data['name']}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_saving_a_policy_recomputes_the_stored_retain_until(
    archive: Archive, run_cli: Cli, tmp_path: Path
) -> None:
    before = archive.doc("合同 审批")
    assert before is not None and before["retention_forever"] and not before.get("retain_until")
    # the save's record, then the recompute's
    out, err = run_cli("retention", "policy", "save", policy_file(tmp_path, CONTRACTS), audited=2)
    assert "saved contracts@v1" in out and "recompute done" in out
    assert "recompute: 4/4 scanned" in err
    after = archive.doc("合同 审批")
    assert after is not None and str(after["retain_until"]).startswith("2049-06-03")
    assert after["retention_winner"] == "contracts@v1"

    out, _ = run_cli("retention", "policies")
    assert "default@v0\tkeep forever\twhat no other policy matches" in out
    assert "contracts@v1\tdelete 30 years after sent\tquery '合同'" in out
    out, _ = run_cli("retention", "policy", "show", "contracts")
    assert "contracts are kept 30 years" in out
    assert (
        json.loads(run_cli("retention", "policy", "history", "news", "--json")[0])[0]["saved_by"]
        == "lead"
    )
    out, _ = run_cli("retention", "status")
    assert "recompute done" in out and "4 of 4 scanned" in out
    out, _ = run_cli("retention", "explain", archive.ids["合同 审批"])
    assert "kept until 2049-06-03" in out and "matches contracts@v1" in out and "<- wins" in out


def test_a_policy_that_cannot_be_saved_is_one_clear_line(
    run_cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = policy_file(tmp_path, {**NEWS, "name": "broken", "period": None})
    _, err = run_cli("retention", "policy", "save", bad, code=2)
    assert err.strip() == (
        "mailvault: invalid retention policy: policy: Value error, "
        "a policy that deletes needs a period"
    )
    _, err = run_cli("retention", "policy", "show", "broken", code=2)
    assert err.strip() == "mailvault: no retention policy 'broken'"


def test_preview_prints_counts_and_saves_nothing(
    archive: Archive, run_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(LUNCH, ensure_ascii=False)))
    out, _ = run_cli("retention", "policy", "preview", "-")
    assert "preview of lunch: 4 scanned, 1 matched, 1 would change" in out
    assert "by month sent: 2019-06 1" in out and "午饭" in out
    assert "nothing saved" in out
    run_cli("retention", "policy", "history", "lunch", code=2)
    lunch = archive.doc("午饭")
    assert lunch is not None and lunch["retention_winner"] == "default@v0"


def test_dry_run_lists_what_would_go_and_deletes_nothing(archive: Archive, run_cli: Cli) -> None:
    out, _ = run_cli("retention", "run", "--dry-run", "--json")
    run = json.loads(out)
    assert run["status"] == "dry_run" and run["planned"] == 2
    assert run["by_policy"] == {"news@v1": 2} and run["by_month"] == {"2019-06": 2}
    assert {s["subject"] for s in run["samples"]} == {"newsletter 1", "newsletter 2"}
    assert archive.doc("newsletter 1") is not None and archive.doc("newsletter 2") is not None
    out, _ = run_cli("retention", "runs")
    assert "dry_run" not in out  # a dry run is not kept as a run


def test_a_run_over_the_limit_waits_for_a_second_person(archive: Archive, run_cli: Cli) -> None:
    out, _ = run_cli("retention", "run", code=cli.AWAITING_APPROVAL)
    assert "planned 2 (approval limit 1)" in out and "by policy: news@v1 2" in out
    [run_id] = re.findall(r"run (run-[0-9a-f]{10}) waits for a second person's approval", out)
    assert archive.doc("newsletter 1") is not None

    # the CLI actor requested it: the same actor cannot approve it
    _, err = run_cli("retention", "approve", run_id, code=2)
    assert f"{ACTOR} requested run {run_id}: a second person must approve it" in err
    out, _ = run_cli("retention", "runs")
    assert f"{run_id}\tawaiting_approval" in out

    bootstrap.disposition(archive.settings).approve(run_id, "officer2")
    out, err = run_cli("retention", "execute", run_id)
    assert "deleted 2;" in out and f"{run_id}: 2 of 2 deleted" in err
    assert archive.doc("newsletter 1") is None and archive.doc("newsletter 2") is None
    assert archive.doc("合同 审批") is not None
    # each deletion has its own record (by the approver), besides the command's
    assert {(r.actor, r.target) for r in run_cli.disposed} == {
        ("officer2", archive.ids["newsletter 1"]),
        ("officer2", archive.ids["newsletter 2"]),
    }

    out, _ = run_cli("retention", "tombstones", archive.ids["newsletter 1"])
    assert f"by {run_id} under news@v1" in out and "approved by officer2" in out
    out, _ = run_cli("retention", "runs", "--json")
    [done] = [r for r in json.loads(out) if r["id"] == run_id]
    assert done["status"] == "done" and done["deleted"] == 2 and done["approved_by"] == "officer2"
    _, err = run_cli("retention", "cancel", run_id, code=2)
    assert f"run {run_id} is done" in err
    _, err = run_cli("retention", "tombstones", archive.ids["合同 审批"], code=2)
    assert "no tombstone for" in err


def test_a_run_within_the_limit_deletes_at_once(archive: Archive, run_cli: Cli) -> None:
    # nothing else is due (the contract is kept to 2049, the rest forever): 0 is within the limit
    out, _ = run_cli("retention", "run", audited=2)  # the plan's record, then the deletion's
    assert "  approved  requested by" in out and "deleted 0;" in out
    assert archive.doc("合同 审批") is not None and archive.doc("午饭") is not None


def test_holds_add_and_release_with_a_reason(archive: Archive, run_cli: Cli) -> None:
    out, _ = run_cli(
        "holds", "matter", "create", "--name", "case 1", "--case-number", "2026-07",
        "--owner", "legal1", "legal2", "--json",
    )  # fmt: skip
    matter = json.loads(out)
    assert matter["owners"] == ["legal1", "legal2"] and matter["created_by"] == ACTOR
    out, _ = run_cli(
        "holds", "add", matter["id"], "--name", "zhang", "--address", "Zhang@example.cn",
        "--sent-after", "2019-01-01", audited=2,
    )  # fmt: skip
    [hold_id] = re.findall(r"added (hold-[0-9a-f]{8}) \(zhang\)", out)
    assert "holds 1 set" in out
    lunch = archive.doc("午饭")
    assert lunch is not None and lunch["holds"] == [hold_id] and lunch["legal_hold"] is True
    out, _ = run_cli("holds", "matter", "show", matter["id"])
    assert f"{hold_id}  active  zhang: 1 held, 1 matching now" in out
    out, _ = run_cli("retention", "explain", archive.ids["午饭"])
    assert f"held by {hold_id} (zhang, matter {matter['id']})" in out
    assert "legal hold on" in out
    _, err = run_cli("holds", "matter", "close", matter["id"], code=2)
    assert "release its holds" in err

    out, _ = run_cli("holds", "release", hold_id, "--reason", "case settled", audited=2)
    assert f"released {hold_id}: case settled" in out and "cleared" in out
    lunch = archive.doc("午饭")
    assert lunch is not None and not lunch.get("holds") and lunch["legal_hold"] is False
    out, _ = run_cli("holds", "show", hold_id)
    assert "released" in out and f"by {ACTOR}: case settled" in out
    assert "addresses: zhang@example.cn" in out and "sent from 2019-01-01" in out
    out, _ = run_cli("holds", "matter", "show", matter["id"])
    assert f"{hold_id}  released  zhang: 0 held" in out
    run_cli("holds", "matter", "close", matter["id"])
    out, _ = run_cli("holds", "matters")
    assert f"{matter['id']}\tclosed\t2026-07\tcase 1\t0 active of 1 holds" in out
    _, err = run_cli("holds", "add", matter["id"], "--name", "late", "--query", "x", code=2)
    assert f"matter {matter['id']} is closed" in err


def test_delete_a_policy_without_recomputing(archive: Archive, run_cli: Cli) -> None:
    out, err = run_cli("retention", "policy", "delete", "contracts", "--no-recompute")
    assert "deleted contracts (version contracts@v2" in out
    assert "mailvault retention recompute" in err
    out, _ = run_cli("retention", "recompute", "--json")
    report = json.loads(out)
    assert report["status"] == "done" and report["changed"] >= 1
    contract = archive.doc("合同 审批")
    assert contract is not None and contract["retention_winner"] == "default@v0"
