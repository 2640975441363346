"""`mailvault export ...` as a user runs it: real `mailvault` processes against an archive of this
module's own (index, bucket, exports bucket, Celery queue) on the real SeaweedFS and
Elasticsearch. The package built at the command line verifies with `mailvault export verify` and
with the verifier it ships, run by a bare interpreter outside the repository; any tampering makes
both fail and name what was touched. Every command leaves an audit record by cli:<OS user>."""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archiver import bootstrap
from archiver.audit.records import AuditAction, AuditRecord
from archiver.exports.model import ExportJob
from archiver.exports.parts import package_prefix
from archiver.exports.verifier import split_mboxrd
from archiver.settings import Settings
from bench.cleanup import cleanup_throwaway, drop_queue, throwaway_settings
from ingest.cli_exports import cli_principal
from tests.support.processes import ROOT, mailvault_env, run_cli

pytestmark = pytest.mark.services

ACTOR = f"cli:{getpass.getuser()}"
CONTRACT_SUBJECTS = ("合同 审批 第一版", "采购合同 签字", "回复：合同 附件")


def mail(n: int, subject: str, body: str, sender: str = "张伟 <zhang@example.cn>") -> bytes:
    encoded = base64.b64encode(subject.encode()).decode()
    return (
        f"Message-ID: <exp-cli-{n}@example.cn>\r\nFrom: {sender}\r\nTo: li@example.cn\r\n"
        f"Subject: =?utf-8?b?{encoded}?=\r\nDate: Mon, 3 Jun 2019 10:0{n}:00 +0800\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    ).encode()


@dataclass
class Archive:
    settings: Settings
    env: dict[str, str]
    contracts: dict[str, bytes]  # sha256 -> raw bytes of the messages the query finds
    key: str  # the archive's public key, as `mailvault export pubkey` prints it
    seen: int = 0  # the last audit record a test has looked at

    def new_records(self) -> list[AuditRecord]:
        records = [r for r in bootstrap.audit_log(self.settings).records() if r.seq > self.seen]
        self.seen = max((r.seq for r in records), default=self.seen)
        return records

    def job(self, export_id: str) -> ExportJob:
        return bootstrap.exports(self.settings).jobs.get(export_id)


@pytest.fixture(scope="module")
def archive(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """Three contract messages and one about lunch, imported with `mailvault import`."""
    name = f"{settings.es_index}-exp-cli"
    own = throwaway_settings(settings, name).model_copy(
        update={"celery_queue": f"{settings.celery_queue}-exp-cli"}
    )
    env = mailvault_env(es_index=name, s3_bucket=name, celery_queue=own.celery_queue)
    folder = tmp_path_factory.mktemp("exp-cli-mail")
    messages = [
        mail(n, subject, f"请审批{subject}。\n第二行\n")
        for n, subject in enumerate(CONTRACT_SUBJECTS)
    ]
    messages.append(mail(9, "午饭", "吃饭", sender="wang@example.cn"))
    for n, raw in enumerate(messages):
        (folder / f"{n}.eml").write_bytes(raw)
    try:
        run_cli(env, "import", str(folder), "--no-progress")
        bootstrap.search_index(own).refresh()
        key = run_cli(env, "export", "pubkey").split("\t")[0]
        contracts = {hashlib.sha256(raw).hexdigest(): raw for raw in messages[:3]}
        archive = Archive(own, env, contracts, key)
        archive.new_records()
        yield archive
    finally:
        cleanup_throwaway(own)
        drop_queue(own)


def mailvault(archive: Archive, *args: str) -> subprocess.CompletedProcess[str]:
    """`mailvault ARGS`, whatever its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", *args],
        env=archive.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def shipped_verifier(package: Path, key: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The package's own verify.py, by an isolated interpreter (no PYTHONPATH, no site
    packages of the user's, no current directory on the path) run outside the repository."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(
        [sys.executable, "-I", str(package / "verify.py"), "--public-key", key],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def audited(
    archive: Archive, *commands: str, built: int = 0, expired: int = 0
) -> list[AuditRecord]:
    """The commands' audit records since the last look: one each, in order, by the CLI; and
    `built` records of the builder's (its own actor: the package it built), `expired` of the
    expiry's (one per package deleted, besides the command's own)."""
    records = archive.new_records()
    builds = [r for r in records if r.details.get("step") == "built"]
    assert len(builds) == built and all(r.actor.startswith("system:export@") for r in builds)
    expiries = [r for r in records if r.details.get("step") == "expired"]
    assert len(expiries) == expired and all(r.actor == ACTOR for r in expiries)
    records = [r for r in records if r not in builds and r not in expiries]
    assert [r.details.get("command") for r in records] == list(commands), records
    assert all(
        r.action == AuditAction.EXPORT and r.actor == ACTOR and r.client == "local" for r in records
    ), records
    return records


def create(archive: Archive, out: Path, *options: str) -> ExportJob:
    stdout = run_cli(
        archive.env,
        "export", "create", "--query", "合同", "--name", "合同 导出", "--here",
        "--out", str(out), "--extract", "--json", *options,
    )  # fmt: skip
    return ExportJob.model_validate_json(stdout.splitlines()[0])


def test_a_package_built_at_the_command_line_verifies_and_tampering_is_named(
    archive: Archive, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    job = create(archive, out)
    assert job.status == "done" and job.progress.selected == 3
    [record] = audited(archive, "export create", built=1)
    assert record.target == job.id and record.outcome == "success"

    # the parts as recorded, custody.log beside them, the tree unzipped into package/
    for part in job.parts:
        assert hashlib.sha256((out / part.name).read_bytes()).hexdigest() == part.sha256
        assert part.name.endswith(f"_{job.id}_part{part.number:03d}.zip")
    custody = (out / "custody.log").read_text("utf-8")
    assert "\trequested\t" in custody and "\tdownload\t" in custody
    package = out / "package"
    emls = sorted(package.rglob("*.eml"))
    assert {hashlib.sha256(p.read_bytes()).hexdigest() for p in emls} == set(archive.contracts)
    # named <date>_<sender>_<subject>_<sha256[:12]>.eml
    assert all(
        p.name.endswith(f"_{hashlib.sha256(p.read_bytes()).hexdigest()[:12]}.eml") for p in emls
    )
    assert any("合同" in p.name for p in emls), emls  # the Chinese subjects are in the names
    for name in ("metadata.csv", "verify.py", "README.txt", "manifest.json", "manifest.sig"):
        assert (package / name).is_file(), name
    manifest = json.loads((package / "manifest.json").read_bytes())
    assert manifest["export"]["id"] == job.id and manifest["counts"]["messages"] == 3
    assert manifest["archive"]["public_key"] == archive.key

    # both verifiers accept it: the parts as downloaded, and the unzipped tree
    for path in (out, package):
        done = mailvault(archive, "export", "verify", str(path))
        assert done.returncode == 0, done
        assert "OK - " in done.stdout and "Signature: valid" in done.stdout
    audited(archive, "export verify", "export verify")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    done = shipped_verifier(package, archive.key, outside)
    assert done.returncode == 0, done
    assert "Signature: valid, by the archive's key" in done.stdout

    # each kind of tampering, on its own copy of the tree
    target = emls[0].relative_to(package).as_posix()

    def flip_a_byte(tree: Path) -> str:
        path = tree / target
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        return target

    def delete(tree: Path) -> str:
        (tree / target).unlink()
        return target

    def add(tree: Path) -> str:
        (tree / emls[0].parent.relative_to(package) / "extra.eml").write_bytes(b"Subject: x\r\n")
        return f"{emls[0].parent.relative_to(package).as_posix()}/extra.eml"

    def edit_manifest(tree: Path) -> str:
        path = tree / "manifest.json"
        path.write_bytes(path.read_bytes().replace(b'"kind": "query"', b'"kind": "ids"'))
        return "manifest.json"

    for tamper, kind in (
        (flip_a_byte, "CHANGED"),
        (delete, "MISSING"),
        (add, "ADDED"),
        (edit_manifest, "MANIFEST"),
    ):
        tree = tmp_path / tamper.__name__
        shutil.copytree(package, tree)
        named = tamper(tree)
        ours = mailvault(archive, "export", "verify", str(tree))
        theirs = shipped_verifier(tree, archive.key, outside)
        for done in (ours, theirs):
            assert done.returncode == 1, (tamper.__name__, done)
            assert "FAILED" in done.stdout, (tamper.__name__, done.stdout)
            problems = [line for line in done.stdout.splitlines() if line.startswith(kind)]
            assert any(named in line for line in problems), (tamper.__name__, done.stdout)
        [record] = audited(archive, "export verify")
        assert record.details["ok"] is False and record.details["problems"] >= 1


def test_mbox_and_pdf_with_a_load_file_are_what_they_say(archive: Archive, tmp_path: Path) -> None:
    job = create(archive, tmp_path / "mbox", "--format", "mbox")
    package = tmp_path / "mbox" / "package"
    [mbox] = list(package.rglob("*.mbox"))
    assert not list(package.rglob("*.eml"))
    with mbox.open("rb") as stream:
        assert set(split_mboxrd(stream)) == set(archive.contracts.values())
    manifest = json.loads((package / "manifest.json").read_bytes())
    assert manifest["export"]["format"] == "mbox" and job.request.format == "mbox"

    create(archive, tmp_path / "pdf", "--format", "pdf", "--load-file")
    package = tmp_path / "pdf" / "package"
    emls, pdfs = sorted(package.rglob("*.eml")), sorted(package.rglob("*.pdf"))
    assert len(emls) == len(pdfs) == 3
    assert {p.with_suffix("") for p in emls} == {p.with_suffix("") for p in pdfs}
    assert all(p.read_bytes().startswith(b"%PDF-") for p in pdfs)
    loadfile = (package / "loadfile.dat").read_bytes().decode("utf-8")
    assert loadfile.count("\n") >= 4  # a header and one row per message
    assert "BEGDOC" in loadfile

    for folder in ("mbox", "pdf"):
        done = mailvault(archive, "export", "verify", str(tmp_path / folder / "package"))
        assert done.returncode == 0, done
    audited(archive, "export create", "export create", "export verify", "export verify", built=2)


def test_status_list_download_cancel_and_expire(archive: Archive, tmp_path: Path) -> None:
    job = create(archive, tmp_path / "built")
    audited(archive, "export create", built=1)

    out = run_cli(archive.env, "export", "status", job.id)
    assert out.startswith(f"{job.id}\tdone\t3 messages\t{len(job.parts)} parts")
    assert "expires " in out
    listed = json.loads(run_cli(archive.env, "export", "list", "--json"))
    assert job.id in {j["id"] for j in listed}

    again = tmp_path / "again"
    run_cli(archive.env, "export", "download", job.id, "--out", str(again))
    for part in job.parts:
        assert hashlib.sha256((again / part.name).read_bytes()).hexdigest() == part.sha256
    assert not (again / "package").exists()
    custody = (again / "custody.log").read_text("utf-8")
    assert custody.count("\tdownload\t") == 2 * len(job.parts)  # at create, and now
    audited(archive, "export status", "export list", "export download")

    # queued: no worker reads this module's queue, so it waits until cancelled
    queued = ExportJob.model_validate_json(
        run_cli(archive.env, "export", "create", "--query", "午饭", "--json")
    )
    assert queued.status == "queued"
    out = run_cli(archive.env, "export", "cancel", queued.id)
    assert out.startswith(f"{queued.id}\tcancelled")
    assert archive.job(queued.id).status == "cancelled"
    done = mailvault(archive, "export", "cancel", queued.id)
    assert done.returncode != 0 and "cancelled already" in done.stderr
    [_, _, refused] = audited(archive, "export create", "export cancel", "export cancel")
    assert refused.outcome == "failed"

    # the package's time is up: expire deletes it, the job and its custody log stay
    packages = bootstrap.package_store(archive.settings)
    assert packages.keys(package_prefix(job.id))

    def past(stored: ExportJob) -> None:
        stored.expires_at = datetime.now(UTC) - timedelta(minutes=1)

    bootstrap.exports(archive.settings).jobs.change(job.id, past)
    out = run_cli(archive.env, "export", "expire")
    assert f"expired {job.id}" in out.splitlines()
    assert archive.job(job.id).status == "expired"
    assert not packages.keys(package_prefix(job.id))
    custody = run_cli(archive.env, "export", "status", job.id)
    assert custody.startswith(f"{job.id}\texpired")
    [expired, _] = audited(archive, "export expire", "export status", expired=1)
    assert expired.details["expired"] == [job.id]
    assert "\texpired\t" in bootstrap.exports(archive.settings).custody_log(job.id, cli_principal())
