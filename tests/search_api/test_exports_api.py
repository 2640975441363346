"""The exports API against the real services, on an archive of its own (every count here is of
exactly this module's mail): ask for an export, build it, follow it, download every part
(streamed, named in UTF-8, its SHA-256 in a header), verify the parts offline with the key the
API publishes, read the custody log of who did what from where; cancel; the 4xx of downloading
too early, of ids nobody may see and of bad requests; which role may do what, what a
department-scoped exporter gets; and that no export name breaks a download.

Builds are queued in memory, not sent to Celery: a test builds the queue when it wants the
package, so it can also look at an export before it is built."""

from __future__ import annotations

import base64
import hashlib
import io
import random
import re
import tempfile
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from archiver import bootstrap
from archiver.access.model import BUILTIN_ROLES, Permission, Role
from archiver.audit.log import AuditLog
from archiver.audit.records import AuditAction, Outcome
from archiver.exports.builder import PackageBuilder
from archiver.exports.service import ExportService
from archiver.exports.verifier import verify
from archiver.holds.service import HoldService
from archiver.models import Source
from archiver.pipeline.archiver import Incoming
from archiver.settings import Settings
from archiver.tagging.model import department_tag
from bench.cleanup import throwaway_archive, throwaway_settings
from search_api import auth, deps
from search_api.app import create_app
from search_api.audit import get_audit_log
from tests.support.fakes import InMemoryAuditStore
from tests.support.principals import as_role

pytestmark = pytest.mark.services

SALES, HR = "销售部", "人事部"
SALES_EXPORTER = "sales-exporter"  # a custom role: export and search, its departments only
# a part holds one of these messages at most (part size below): three messages, three parts


def _body(n: int) -> str:
    """About 8 KB that deflate cannot shrink much (a part's size is of compressed bytes)."""
    noise = random.Random(n).randbytes(6000)
    return "合同条款\r\n" + "\r\n".join(textwrap.wrap(base64.b64encode(noise).decode(), 76))


def _mail(n: int, subject: str, sender: str) -> bytes:
    return (
        f"Message-ID: <expapi-{n}@expapi.example>\r\nFrom: {sender}\r\nTo: li@expapi.example\r\n"
        f"Subject: {subject}\r\nDate: Mon, 3 Jun 2024 10:00:00 +0800\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{_body(n)}\r\nFrom the desk of {n}\r\n"
    ).encode()


CONTRACTS = [_mail(i, f"EXPAPI contract {i}", "zhang@sales.expapi.example") for i in (1, 2)]
PAYROLL = _mail(3, "EXPAPI payroll", "wang@hr.expapi.example")
CONTRACT_IDS = [hashlib.sha256(r).hexdigest() for r in CONTRACTS]
PAYROLL_ID = hashlib.sha256(PAYROLL).hexdigest()
ALL_IDS = {*CONTRACT_IDS, PAYROLL_ID}
UNKNOWN = "exp-0000000000"


@dataclass
class World:
    client: TestClient  # a user with the legal role: exports the whole archive
    settings: Settings  # the session's: the app signs users in there
    builder: PackageBuilder
    log: AuditLog  # the app's requests
    queued: list[str] = field(default_factory=list)  # what the service handed to "Celery"

    def as_role(self, *roles: str, departments: tuple[str, ...] = ()) -> TestClient:
        return TestClient(
            self.client.app, headers=as_role(self.settings, *roles, departments=departments)
        )

    def build_queued(self) -> None:
        while self.queued:
            self.builder.build(self.queued.pop(0))

    def create(self, client: TestClient | None = None, **request: Any) -> dict[str, Any]:
        response = (client or self.client).post(
            "/api/exports", json={"name": "证据 export", **request}
        )
        assert response.status_code == 202, response.text
        job: dict[str, Any] = response.json()
        return job

    def built(self, client: TestClient | None = None, **request: Any) -> dict[str, Any]:
        job = self.create(client, **request)
        self.build_queued()
        status = (client or self.client).get(f"/api/exports/{job['id']}")
        assert status.status_code == 200, status.text
        done: dict[str, Any] = status.json()
        assert done["status"] == "done", done
        return done


@pytest.fixture(scope="module")
def world(settings: Settings, backends: None) -> Iterator[World]:
    own = throwaway_settings(settings, f"{settings.es_index}-expapi").model_copy(
        update={"export_part_size": 8 * 1024, "tagging_enabled": False}
    )
    with throwaway_archive(own) as archiver:
        source = Source(kind="import", detail="exports-api", received_at=datetime.now(UTC))
        outcomes = archiver.ingest_many([Incoming(r, source) for r in [*CONTRACTS, PAYROLL]])
        assert {o.status for o in outcomes} == {"imported"}
        archiver.index.update_many(
            {
                **{i: {"tags": [department_tag(SALES)]} for i in CONTRACT_IDS},
                PAYROLL_ID: {"tags": [department_tag(HR)]},
            }
        )
        archiver.index.refresh()
        queued: list[str] = []
        exports: ExportService = bootstrap.exports(own, queued.append)
        signer = bootstrap.export_signer(own)
        retention = bootstrap.retention(own)
        holds = HoldService(retention)
        log = AuditLog(InMemoryAuditStore(), bootstrap.audit_index(own))
        app = create_app()
        app.dependency_overrides |= {
            deps.get_index: lambda: archiver.index,
            deps.get_retention: lambda: retention,
            deps.get_holds: lambda: holds,
            deps.get_exports: lambda: exports,
            deps.get_signer: lambda: signer,
            get_audit_log: lambda: log,
        }
        bootstrap.user_directory(settings).save_role(
            Role(
                name=SALES_EXPORTER,
                permissions=frozenset({Permission.SEARCH, Permission.EXPORT}),
                department_scoped=True,
            )
        )
        auth.sign_in_service().forget()  # the process's cached roles must include the new one
        with TestClient(app, headers=as_role(settings, "legal")) as client:
            yield World(client, settings, bootstrap.export_builder(own), log, queued)


def _download(client: TestClient, job: dict[str, Any], to: Path) -> list[Path]:
    """Every part, streamed to a file; checks each answer's headers against its bytes."""
    to.mkdir(parents=True, exist_ok=True)
    paths = []
    for part in job["parts"]:
        path = f"/api/exports/{job['id']}/parts/{part['number']}"
        with client.stream("GET", path) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"] == "application/zip"
            disposition = response.headers["content-disposition"]
            assert disposition.isascii()  # the UTF-8 name percent-encoded (RFC 5987)
            match = re.fullmatch(
                r'attachment; filename="(exp-[0-9a-f]{10}_part\d{3}\.zip)"; '
                r"filename\*=UTF-8''(\S+)",
                disposition,
            )
            assert match, disposition
            assert match.group(1) == f"{job['id']}_part{part['number']:03d}.zip"
            name = unquote(match.group(2), encoding="utf-8", errors="strict")
            assert name == part["name"]
            digest, size = hashlib.sha256(), 0
            with (to / name).open("wb") as out:
                for chunk in response.iter_bytes():
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        assert response.headers["x-content-sha256"] == digest.hexdigest() == part["sha256"]
        assert int(response.headers["content-length"]) == size == part["size"]
        paths.append(to / name)
    return paths


def _natives(zips: list[Path]) -> set[str]:
    """The SHA-256 of every EML file in the parts."""
    found = set()
    for path in zips:
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None
            for info in archive.infolist():
                if info.filename.endswith(".eml"):
                    found.add(hashlib.sha256(archive.read(info)).hexdigest())
    return found


def _public_key(client: TestClient) -> str:
    response = client.get("/api/exports/pubkey")
    assert response.status_code == 200, response.text
    key: str = response.json()["public_key"]
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    fingerprint = hashlib.sha256(bytes.fromhex(key)).hexdigest()
    assert response.json()["fingerprint"] == f"sha256:{fingerprint}"
    return key


def test_a_query_export_is_built_downloaded_verified_and_its_custody_kept(
    world: World, tmp_path: Path
) -> None:
    created = world.create(kind="query", query="EXPAPI", load_file=True)
    assert created["status"] == "queued" and created["requested_by"].startswith("u-legal")
    assert world.queued == [created["id"]]  # handed to the builders, not built by the API
    early = world.client.get(f"/api/exports/{created['id']}/parts/1")
    assert early.status_code == 409 and early.json()["error"] == "ExportNotReady"
    world.build_queued()
    job = world.client.get(f"/api/exports/{created['id']}").json()
    assert job["status"] == "done" and job["progress"]["selected"] == 3
    assert len(job["parts"]) == 3  # one message per part at this part size
    assert (job["progress"]["written"], job["progress"]["missing"]) == (3, 0)
    assert job["built_at"] and job["expires_at"] and job["manifest_sha256"]
    assert [p["number"] for p in job["parts"]] == [1, 2, 3]
    assert all(p["name"].startswith("证据_export_") for p in job["parts"])
    listed = world.client.get("/api/exports").json()
    assert created["id"] in {j["id"] for j in listed}
    zips = _download(world.client, job, tmp_path / "dl")
    assert _natives(zips) == ALL_IDS
    report = verify(zips, public_key_hex=_public_key(world.as_role("auditor")))
    assert report.ok and report.key_trusted, report.to_text()
    assert (report.messages_checked, report.export_id) == (3, job["id"])
    with zipfile.ZipFile(zips[0]) as first:  # a tampered part fails against the same key
        entries = {i.filename: first.read(i) for i in first.infolist()}
    with zipfile.ZipFile(zips[0], "w") as tampered:
        for name, data in entries.items():
            tampered.writestr(name, data + b"x" if name.endswith(".eml") else data)
    assert not verify(zips, public_key_hex=_public_key(world.client)).ok

    custody = world.client.get(f"/api/exports/{job['id']}/custody")
    assert custody.status_code == 200 and custody.headers["content-type"].startswith("text/plain")
    lines = [line.split("\t") for line in custody.text.splitlines() if not line.startswith("#")]
    events = [(fields[1], fields[2], fields[3]) for fields in lines]
    requester = created["requested_by"]
    assert events[0] == ("requested", requester, "testclient")
    assert events[1][0] == "built" and events[1][1].startswith("system:export@")
    downloads = [fields for fields in lines if fields[1] == "download"]
    assert [(d[2], d[3]) for d in downloads] == [(requester, "testclient")] * 3
    for part, download in zip(job["parts"], downloads, strict=True):
        assert part["name"] in download[4] and part["sha256"] in download[4]
    audited = [
        r.details
        for r in world.log.records()
        if r.action == AuditAction.EXPORT
        and r.target == job["id"]
        and r.details.get("step") == "download"
        and r.outcome == Outcome.SUCCESS  # not the early one, refused with a 409
    ]
    assert [(d["part"], d["sha256"]) for d in audited] == [
        (p["number"], p["sha256"]) for p in job["parts"]
    ]


def test_a_cancelled_export_is_never_built_nor_downloaded(world: World) -> None:
    job = world.create(kind="ids", ids=[PAYROLL_ID])
    cancelled = world.client.post(f"/api/exports/{job['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    world.build_queued()  # the task still comes; the builder leaves a cancelled job be
    assert world.client.get(f"/api/exports/{job['id']}").json()["status"] == "cancelled"
    download = world.client.get(f"/api/exports/{job['id']}/parts/1")
    assert download.status_code == 409 and download.json()["error"] == "ExportNotReady"
    again = world.client.post(f"/api/exports/{job['id']}/cancel")
    assert again.status_code == 422 and "cancelled already" in again.json()["message"]
    events = [
        line.split("\t")[1]
        for line in world.client.get(f"/api/exports/{job['id']}/custody").text.splitlines()[1:]
    ]
    assert events == ["requested", "cancelled"]


def test_unknown_exports_and_parts_are_404(world: World) -> None:
    for path in ("", "/parts/1", "/custody"):
        response = world.client.get(f"/api/exports/{UNKNOWN}{path}")
        assert response.status_code == 404, (path, response.text)
    assert world.client.post(f"/api/exports/{UNKNOWN}/cancel").status_code == 404
    job = world.built(kind="ids", ids=[CONTRACT_IDS[0]])
    assert len(job["parts"]) == 1
    missing = world.client.get(f"/api/exports/{job['id']}/parts/2")
    assert missing.status_code == 404 and "has no part 2" in missing.json()["message"]
    assert world.client.get(f"/api/exports/{job['id']}/parts/0").status_code == 422
    assert world.client.get("/api/exports/exp-NOTHEX0000").status_code == 422


@pytest.mark.parametrize(
    ("request_body", "status", "says"),
    [
        ({"kind": "query"}, 422, "needs its query"),
        ({"kind": "query", "query": "   "}, 422, "needs its query"),
        ({"kind": "query", "query": "x", "matter": "matter-1"}, 422, "takes no matter"),
        ({"kind": "ids", "ids": ["abc"]}, 422, "not a message id (64 hex digits)"),
        ({"kind": "ids", "ids": ["G" * 64]}, 422, "not a message id (64 hex digits)"),
        ({"kind": "matter", "matter": "matter-00000000"}, 404, "matter-00000000"),
        ({"kind": "query", "query": "合同 from:"}, 400, "InvalidQuery"),
        ({"kind": "query", "query": "x", "format": "tiff"}, 422, "format"),
        ({"kind": "query", "query": "x", "name": ""}, 422, "name"),
    ],
)
def test_a_bad_request_is_a_clear_4xx_and_asks_for_nothing(
    world: World, request_body: dict[str, Any], status: int, says: str
) -> None:
    before = {j["id"] for j in world.client.get("/api/exports").json()}
    response = world.client.post("/api/exports", json={"name": "bad", **request_body})
    assert response.status_code == status, response.text
    assert says in response.text
    assert {j["id"] for j in world.client.get("/api/exports").json()} == before
    assert world.queued == []


def test_a_matter_export_holds_the_matter_mail(world: World, tmp_path: Path) -> None:
    legal = world.client
    matter = legal.post("/api/matters", json={"name": "EXPAPI 诉讼"}).json()["id"]
    hold = {"name": "张", "custodians": {"addresses": ["zhang@sales.expapi.example"]}}
    added = legal.post(f"/api/matters/{matter}/holds", json={**hold, "query": "contract"})
    assert added.status_code == 200, added.text
    job = world.built(kind="matter", matter=matter, format="mbox")
    assert job["progress"]["selected"] == 2
    zips = _download(legal, job, tmp_path)
    assert verify(zips, public_key_hex=_public_key(legal)).ok


# -- who may do what -----------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(BUILTIN_ROLES))
def test_only_roles_with_export_may_create_list_download_and_cancel(
    world: World, role: str
) -> None:
    exporter = Permission.EXPORT in BUILTIN_ROLES[role].permissions
    client = world.as_role(role, departments=(SALES,))
    someone_elses = world.built(kind="ids", ids=[CONTRACT_IDS[1]])
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/exports", {"json": {"name": role, "kind": "ids", "ids": [PAYROLL_ID]}}),
        ("GET", "/api/exports", {}),
        ("GET", f"/api/exports/{someone_elses['id']}", {}),
        ("GET", f"/api/exports/{someone_elses['id']}/parts/1", {}),
        ("GET", f"/api/exports/{someone_elses['id']}/custody", {}),
        ("POST", f"/api/exports/{UNKNOWN}/cancel", {}),
    ]
    for method, path, kwargs in calls:
        response = client.request(method, path, **kwargs)
        if exporter:  # only legal, of the built-in roles: the whole archive
            assert response.status_code in (200, 202, 404), f"{role} {method} {path}"
            assert response.status_code != 404 or path.endswith("/cancel")
        else:
            assert response.status_code == 403, f"{role} {method} {path}: {response.text}"
            assert response.json()["error"] == "PermissionDenied"
    world.queued.clear()  # the exports made here need no building
    assert client.get("/api/exports/pubkey").status_code == 200  # anyone signed in


def test_a_department_exporter_exports_only_its_departments_mail(
    world: World, tmp_path: Path
) -> None:
    sales = world.as_role(SALES_EXPORTER, departments=(SALES,))
    job = world.built(sales, kind="query", query="EXPAPI")
    assert job["scope_everything"] is False and job["scope_tags"] == [department_tag(SALES)]
    zips = _download(sales, job, tmp_path / "sales")
    assert _natives(zips) == set(CONTRACT_IDS)  # not the payroll of HR
    assert verify(zips, public_key_hex=_public_key(sales)).ok
    asked = world.built(sales, kind="ids", ids=[PAYROLL_ID, CONTRACT_IDS[0]])
    assert (asked["progress"]["selected"], asked["progress"]["missing"]) == (1, 1)
    assert asked["progress"]["missing_ids"] == [PAYROLL_ID]  # out of scope is missing

    whole = world.built(kind="ids", ids=[CONTRACT_IDS[0]])  # a whole-archive exporter's
    for path in ("", "/parts/1", "/custody"):
        response = sales.get(f"/api/exports/{whole['id']}{path}")
        assert response.status_code == 404, (path, response.text)
    assert sales.post(f"/api/exports/{whole['id']}/cancel").status_code == 404
    assert whole["id"] not in {j["id"] for j in sales.get("/api/exports").json()}
    hr = world.as_role(SALES_EXPORTER, departments=(HR,))  # another department's exporter
    assert hr.get(f"/api/exports/{job['id']}").status_code == 404
    # a whole-archive exporter covers the department's scope: it sees the export
    assert world.client.get(f"/api/exports/{job['id']}").status_code == 200
    other_sales = world.as_role(SALES_EXPORTER, departments=(SALES,))
    assert other_sales.get(f"/api/exports/{job['id']}/parts/1").status_code == 200


# -- names ---------------------------------------------------------------------------------

# pieces, not characters: an emoji with a joiner or a flag, a combining accent, are several
PIECES = st.sampled_from(
    [*'合同证据審批/\\.:*?"<>| \t\n', "..", "../", "📦", "👩\u200d⚖️", "🇨🇳", "e\u0301", "CON"]
)
NAMES = st.lists(
    st.one_of(PIECES, st.characters(codec="utf-8", exclude_categories=["Cs"])),
    min_size=1,
    max_size=40,
).map("".join)


@given(name=NAMES)
@hypothesis_settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_no_export_name_breaks_the_download_name_or_the_zip(world: World, name: str) -> None:
    job = world.built(name=name, kind="ids", ids=[CONTRACT_IDS[0]])
    assert job["request"]["name"] == name
    [part] = job["parts"]
    assert part["name"].endswith(f"_{job['id']}_part001.zip")
    assert not set(part["name"]) & set("/\\\x00") and not part["name"].startswith(".")
    with tempfile.TemporaryDirectory() as folder:
        [path] = _download(world.client, job, Path(folder))
        assert path.parent == Path(folder)
        with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
            assert archive.testzip() is None
        assert verify([path], public_key_hex=_public_key(world.client)).ok
