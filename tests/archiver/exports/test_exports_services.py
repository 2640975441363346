"""Evidence exports against the real Elasticsearch and SeaweedFS: every format round-trips
byte for byte, Chinese names survive, the package verifies offline, a crashed build resumes to
the same package, a corrupt stored message stops the export, scope and permission hold, and
cancel, expiry and the custody log do what they say."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from archiver import bootstrap
from archiver.access.model import BUILTIN_ROLES, Permission, Principal, Role
from archiver.audit.log import AuditFilter, AuditLog
from archiver.audit.records import AuditAction, Outcome
from archiver.errors import ExportBusy, ExportNotReady, IntegrityError, NotFound, PermissionDenied
from archiver.exports.builder import PackageBuilder
from archiver.exports.jobs import JOBS
from archiver.exports.model import ExportJob, ExportRequest
from archiver.exports.service import ExportService
from archiver.exports.verifier import split_mboxrd, verify
from archiver.holds.service import HoldService
from archiver.models import Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.ports import PackageStore, RawStore
from archiver.settings import Settings
from bench.cleanup import throwaway_archive, throwaway_settings

pytestmark = pytest.mark.services
_numbers = itertools.count()
WHOLE = Role(name="exporter", permissions=frozenset({Permission.SEARCH, Permission.EXPORT}))
SALES = Role(
    name="sales-exporter",
    permissions=frozenset({Permission.SEARCH, Permission.EXPORT}),
    department_scoped=True,
)
OFFICER = Principal(username="officer", roles=(WHOLE,))
SALES_LEAD = Principal(username="sales", roles=(SALES,), departments=frozenset({"销售部"}))
READER = Principal(username="reader", roles=(BUILTIN_ROLES["department_lead"],))


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    settings: Settings
    archiver: Archiver
    exports: ExportService
    audit: AuditLog
    clock: Clock

    def builder(self, raw: RawStore | None = None) -> PackageBuilder:
        builder = bootstrap.export_builder(self.settings)
        builder.clock = self.clock
        if raw is not None:
            builder.raw = raw
        return builder

    @property
    def packages(self) -> PackageStore:
        return self.exports.packages

    def mail(
        self,
        subject: str,
        body: str = "正文",
        sender: str = "张伟 <zhang.wei@example.cn>",
        to: str = "li.na@example.cn",
        tags: tuple[str, ...] = (),
        crlf: bool = True,
    ) -> str:
        n = next(_numbers)
        nl = "\r\n" if crlf else "\n"
        raw = nl.join(
            [
                f"Message-ID: <exp-{n}@example.cn>",
                f"From: {sender}",
                f"To: {to}",
                f"Subject: =?utf-8?b?{_b64(subject)}?=",
                "Date: Tue, 4 Jun 2024 10:00:00 +0800",
                "MIME-Version: 1.0",
                "Content-Type: text/plain; charset=utf-8",
                "Content-Transfer-Encoding: 8bit",
                "",
                f"{body} {n}",
                "From the desk of 张伟",  # an mbox From_ line inside a body: must be quoted
                "",
            ]
        ).encode()
        source = Source(kind="import", detail=f"{n}.eml", received_at=datetime.now(UTC))
        outcome = self.archiver.ingest_many([Incoming(raw, source)])[0]
        assert outcome.status == "imported" and outcome.sha256
        if tags:
            self.archiver.index.update_many({outcome.sha256: {"tags": list(tags)}})
        return outcome.sha256

    def raw(self, sha256: str) -> bytes:
        return self.archiver.store.get(sha256)

    def export(self, principal: Principal = OFFICER, **request: Any) -> ExportJob:
        job = self.exports.create(
            ExportRequest(**{"name": "证据 export", **request}), principal, "127.0.0.1"
        )
        return self.builder().build(job.id)

    def download(self, job: ExportJob, to: Path, principal: Principal = OFFICER) -> Path:
        to.mkdir(parents=True, exist_ok=True)
        for part in job.parts:
            download = self.exports.download(job.id, part.number, principal, "10.0.0.7")
            (to / download.name).write_bytes(b"".join(download.chunks))
        return to

    def tree(self, job: ExportJob, to: Path, principal: Principal = OFFICER) -> dict[str, bytes]:
        """Every file of the package, from all its parts."""
        files: dict[str, bytes] = {}
        for zip_path in sorted(self.download(job, to, principal).glob("*.zip")):
            with zipfile.ZipFile(zip_path) as archive:
                assert archive.testzip() is None
                for info in archive.infolist():
                    assert info.filename not in files, f"{info.filename} in two parts"
                    files[info.filename] = archive.read(info)
        return files


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    name = f"{settings.es_index}-exp{next(_numbers)}"
    own = throwaway_settings(settings, name).model_copy(
        update={"export_part_size": 64 * 1024, "tagging_enabled": False}
    )
    clock = Clock()
    with throwaway_archive(own) as archiver:
        exports = bootstrap.exports(own)
        exports.clock = clock
        exports.packages.ensure_ready()
        yield World(own, archiver, exports, bootstrap.audit_log(own), clock)


def _signer_key(world: World) -> str:
    return bootstrap.export_signer(world.settings).public_key_hex


def test_an_eml_export_is_byte_exact_names_chinese_files_and_verifies(
    world: World, tmp_path: Path
) -> None:
    ids = [world.mail(f"合同审批 第{i}号", body="报价单 合同") for i in range(3)]
    other = world.mail("午饭", body="食堂")
    job = world.export(kind="query", query="合同", load_file=True)
    assert job.status == "done" and job.progress.selected == 3
    files = world.tree(job, tmp_path / "dl")
    natives = {p: b for p, b in files.items() if p.endswith(".eml")}
    assert sorted(hashlib.sha256(b).hexdigest() for b in natives.values()) == sorted(ids)
    assert other not in {hashlib.sha256(b).hexdigest() for b in natives.values()}
    for path, data in natives.items():
        sha = hashlib.sha256(data).hexdigest()
        assert data == world.raw(sha)  # byte-identical to the archive
        assert path.startswith("li.na@example.cn/") and path.endswith(f"_{sha[:12]}.eml")
        assert "合同审批" in path and "zhang.wei@example.cn" in path
    with zipfile.ZipFile(next((tmp_path / "dl").glob("*.zip"))) as archive:
        chinese = [i for i in archive.infolist() if "合同" in i.filename]
        assert chinese and all(i.flag_bits & 0x800 for i in chinese)  # UTF-8 names, flagged
    rows = list(csv.DictReader(io.StringIO(files["metadata.csv"].decode("utf-8-sig"))))
    assert files["metadata.csv"].startswith(b"\xef\xbb\xbf")
    assert sorted(r["sha256"] for r in rows) == sorted(ids)
    for r in rows:
        assert r["md5"] == hashlib.md5(world.raw(r["sha256"])).hexdigest()
        assert r["subject"].startswith("合同审批") and r["path"] in natives
        assert "+08:00" in r["date_sent_original"]
    assert "loadfile.dat" in files and "verify.py" in files
    package = tmp_path / "package"
    for path, data in files.items():
        (package / path).parent.mkdir(parents=True, exist_ok=True)
        (package / path).write_bytes(data)
    assert verify(package, public_key_hex=_signer_key(world)).ok
    assert verify(tmp_path / "dl", public_key_hex=_signer_key(world)).ok  # from the zips
    (package / next(iter(natives))).write_bytes(b"changed")
    report = verify(package, public_key_hex=_signer_key(world))
    assert not report.ok and {p.kind for p in report.problems} >= {"changed"}


def test_an_mbox_export_splits_back_into_the_same_messages_across_parts(
    world: World, tmp_path: Path
) -> None:
    ids = [
        world.mail(f"报价 {i}", body="报价 " + "数据" * 2000, crlf=i % 2 == 0) for i in range(12)
    ]
    job = world.export(kind="query", query="报价", format="mbox")
    assert job.status == "done" and len(job.parts) > 1  # 12 × ~12 KB over 64 KB parts
    files = world.tree(job, tmp_path / "dl")
    mboxes = {p: b for p, b in files.items() if p.endswith(".mbox")}
    assert any(p.endswith("_002.mbox") for p in mboxes)  # one custodian, split across parts
    split = [m for data in mboxes.values() for m in split_mboxrd(io.BytesIO(data))]
    assert sorted(hashlib.sha256(m).hexdigest() for m in split) == sorted(ids)
    assert verify(tmp_path / "dl", public_key_hex=_signer_key(world)).ok


def test_a_pdf_export_renders_chinese_beside_the_natives(world: World, tmp_path: Path) -> None:
    sha = world.mail("季度财务报告", body="请审阅附件中的财务数据")
    job = world.export(kind="ids", ids=(sha,), format="pdf")
    files = world.tree(job, tmp_path / "dl")
    pdfs = [b for p, b in files.items() if p.endswith(".pdf")]
    assert len(pdfs) == 1 and sum(p.endswith(".eml") for p in files) == 1
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdfs[0])).pages)
    assert "季度财务报告" in text and "财务数据" in text


def test_a_matter_export_has_a_folder_per_hold_and_writes_each_message_once(
    world: World, tmp_path: Path
) -> None:
    holds = HoldService(bootstrap.retention(world.settings))
    matter = holds.create_matter({"name": "诉讼 A"}, "counsel")
    first = holds.add_hold(matter.id, {"name": "合同", "query": "合同"}, "counsel")
    second = holds.add_hold(
        matter.id,
        {"name": "张伟", "custodians": {"addresses": ["zhang.wei@example.cn"]}},
        "counsel",
    )
    both = world.mail("合同")
    only_custodian = world.mail("午饭")
    outsider = world.mail("合同", sender="wang@example.org", to="zhao@example.org")
    job = world.export(kind="matter", matter=matter.id)
    files = world.tree(job, tmp_path / "dl")
    natives = {hashlib.sha256(b).hexdigest(): p for p, b in files.items() if p.endswith(".eml")}
    assert sorted(natives) == sorted([both, only_custodian, outsider])
    by_hold = sorted([first, second], key=lambda h: h.id)
    assert natives[both].startswith(f"{by_hold[0].name} ({by_hold[0].id})/")
    assert natives[only_custodian].startswith(f"张伟 ({second.id})/zhang.wei@example.cn/")
    rows = {
        r["sha256"]: r
        for r in csv.DictReader(io.StringIO(files["metadata.csv"].decode("utf-8-sig")))
    }
    assert first.id in rows[both]["holds"] and second.id in rows[both]["holds"]
    with pytest.raises(NotFound):
        world.exports.create(
            ExportRequest(name="x", kind="matter", matter="matter-00000000"), OFFICER, ""
        )


@pytest.mark.parametrize(
    ("principal", "visible"),
    [(OFFICER, {"sales", "legal", "none"}), (SALES_LEAD, {"sales"})],
    ids=["whole-archive", "department-scoped"],
)
@pytest.mark.parametrize("kind", ["query", "ids"])
def test_scope_applies_to_every_kind_of_export(
    world: World, tmp_path: Path, principal: Principal, visible: set[str], kind: str
) -> None:
    mail = {
        "sales": world.mail("合同 销售", tags=("department/销售部",)),
        "legal": world.mail("合同 法务", tags=("department/法务部",)),
        "none": world.mail("合同 无部门"),
    }
    asked: dict[str, Any] = {"query": "合同"} if kind == "query" else {"ids": tuple(mail.values())}
    job = world.export(principal, kind=kind, **asked)
    files = world.tree(job, tmp_path / "dl", principal)
    exported = {hashlib.sha256(b).hexdigest() for p, b in files.items() if p.endswith(".eml")}
    assert exported == {mail[k] for k in visible}
    if kind == "ids":  # the ids it could not see are counted, never named as hidden
        assert job.progress.missing == 3 - len(visible)
    if principal is SALES_LEAD:  # and nobody narrower sees the officer's exports
        officer_job = world.export(OFFICER, kind="query", query="合同")
        with pytest.raises(NotFound):
            world.exports.job(officer_job.id, SALES_LEAD)
        assert officer_job.id not in {j.id for j in world.exports.jobs_for(SALES_LEAD)}
        assert job.id in {j.id for j in world.exports.jobs_for(OFFICER)}


def test_exporting_needs_the_export_permission(world: World) -> None:
    with pytest.raises(PermissionDenied):
        world.exports.create(ExportRequest(name="x", kind="query", query="合同"), READER, "")


class CrashingStore:
    """A raw store whose reads stop after a number of messages: a worker dying mid-part."""

    def __init__(self, inner: RawStore, reads: int) -> None:
        self.inner, self.left = inner, reads

    def get(self, sha256: str) -> bytes:
        if self.left == 0:
            raise SystemExit("the worker died")
        self.left -= 1
        return self.inner.get(sha256)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _parts(world: World, job: ExportJob) -> list[bytes]:
    return [b"".join(world.packages.read(p.key)) for p in job.parts]


def test_a_build_killed_mid_part_resumes_to_the_same_package(world: World) -> None:
    for i in range(10):
        world.mail(f"合同 {i}", body="合同 " + "条款" * 3000)
    request = ExportRequest(name="resume", kind="query", query="合同", format="mbox")
    asked = world.exports.create(request, OFFICER, "")
    whole = _parts(world, world.builder().build(asked.id))
    assert len(whole) > 2
    # the same job again, as it was asked for, built by a worker that dies mid-part
    world.packages.delete_prefix(f"{asked.id}/")
    world.exports.jobs.store.put_json(JOBS + asked.id, asked.model_dump(mode="json"))
    with pytest.raises(SystemExit):
        world.builder(CrashingStore(world.archiver.store, reads=6)).build(asked.id, "w1")
    crashed = world.exports.jobs.get(asked.id)
    assert 0 < len(crashed.parts) < len(whole) and crashed.status == "building"
    with pytest.raises(ExportBusy):  # its lease still runs: nobody else builds it meanwhile
        world.builder().build(asked.id, "w2")
    world.clock.now += timedelta(hours=1)  # the dead worker's lease runs out
    resumed = _parts(world, world.builder().build(asked.id, "w2"))
    assert resumed[:-1] == whole[:-1]  # byte for byte
    # the last part too, but for who built it and when (manifest.json, and so its signature)
    assert _without_builder(resumed[-1]) == _without_builder(whole[-1])


def _without_builder(part: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(part)) as archive:
        files = {i.filename: archive.read(i) for i in archive.infolist()}
    del files["manifest.sig"]
    manifest = files["manifest.json"].split(b"\n")
    files["manifest.json"] = b"\n".join(line for line in manifest if b'"built_' not in line)
    return files


def test_a_message_corrupted_in_storage_stops_the_export_loudly(world: World) -> None:
    good = world.mail("合同 好")
    bad = world.mail("合同 坏")
    store = world.archiver.store
    store.client.put_object(  # overwrite the stored bytes behind the archive's back
        world.settings.s3_bucket, f"raw/{bad[:2]}/{bad[2:4]}/{bad}.eml", io.BytesIO(b"x"), 1
    )
    job = world.exports.create(ExportRequest(name="x", kind="ids", ids=(good, bad)), OFFICER, "")
    with pytest.raises(IntegrityError):
        world.builder().build(job.id)
    failed = world.exports.jobs.get(job.id)
    assert failed.status == "failed" and bad in failed.error
    assert world.packages.keys(f"{job.id}/") == []  # nothing half-built is left
    records = list(world.audit.records(AuditFilter(target=job.id)))
    assert any(r.outcome == Outcome.FAILED and r.action == AuditAction.EXPORT for r in records)
    with pytest.raises(ExportNotReady, match=f"is failed.*last build stopped.*{bad}"):
        world.exports.download(job.id, 1, OFFICER, "")


def test_cancel_expiry_and_the_custody_log(world: World, tmp_path: Path) -> None:
    world.mail("合同")
    job = world.export(kind="query", query="合同")
    with pytest.raises(ExportNotReady):
        queued = world.exports.create(
            ExportRequest(name="c", kind="query", query="合同"), OFFICER, ""
        )
        world.exports.cancel(queued.id, OFFICER, "")
        world.exports.download(queued.id, 1, OFFICER, "")
    assert world.builder().build(queued.id).status == "cancelled"
    world.download(job, tmp_path)
    custody = world.exports.custody_log(job.id, OFFICER)
    events = [line.split("\t")[1] for line in custody.splitlines()[1:]]
    assert events == ["requested", "built", "download"]
    assert "10.0.0.7" in custody.splitlines()[-1] and "officer" in custody.splitlines()[-1]
    world.clock.now += timedelta(days=16)
    assert world.exports.expire() == [job.id]
    expired = [r for r in world.audit.records(AuditFilter(target=job.id)) if r.details.get("step")]
    assert [r.details["step"] for r in expired][-1] == "expired"
    assert world.packages.keys(f"{job.id}/") == []
    assert world.exports.jobs.get(job.id).status == "expired"
    with pytest.raises(ExportNotReady):
        world.exports.download(job.id, 1, OFFICER, "")
    assert "expired" in world.exports.custody_log(job.id, OFFICER)  # the log outlives it


class BrokenStore(CrashingStore):
    def get(self, sha256: str) -> bytes:
        raise RuntimeError("a bug in reading")


def test_a_build_that_keeps_failing_is_given_up_with_its_error(world: World) -> None:
    world.mail("合同")
    job = world.exports.create(ExportRequest(name="x", kind="query", query="合同"), OFFICER, "")
    builder = world.builder(BrokenStore(world.archiver.store, 0))
    for _ in range(builder.options.max_attempts):
        with pytest.raises(RuntimeError):
            builder.build(job.id)
        stored = world.exports.jobs.get(job.id)
        assert stored.status == "building" and "a bug in reading" in stored.error
        world.clock.now += builder.options.lease  # the next attempt may take it
    given_up = builder.build(job.id)
    assert given_up.status == "failed" and "gave up after 5 attempts" in given_up.error
    assert world.exports.stalled() == []  # nobody hands it out again


def test_a_requester_whose_scope_narrowed_no_longer_sees_the_export(world: World) -> None:
    world.mail("合同", tags=("department/销售部",))
    wide = Principal(username="lead", roles=(SALES,), departments=frozenset({"销售部", "法务部"}))
    job = world.export(wide, kind="query", query="合同")
    narrowed = wide.model_copy(update={"departments": frozenset({"销售部"})})
    with pytest.raises(NotFound):
        world.exports.download(job.id, 1, narrowed, "")
    assert world.exports.jobs_for(narrowed) == []
    assert world.exports.job(job.id, wide).status == "done"
