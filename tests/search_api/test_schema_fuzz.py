"""Requests generated from the OpenAPI schema, against the real app and backends: whatever a
client sends, the answer is never a 5xx (a bad request is a clear 4xx).

The fuzzer creates, replaces and applies rules, tags and directories at random, so it runs on an
archive of its own, never the session's: the app's backends are that archive's, looked up when
each request comes (the schema is read at import, before any fixture has run)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.generation.case import Case

from archiver import bootstrap
from archiver.access.model import BUILTIN_ROLES
from archiver.audit.log import AuditLog
from archiver.exports.service import ExportService
from archiver.exports.signing import ManifestSigner
from archiver.holds.service import HoldService
from archiver.models import Source
from archiver.pipeline.archiver import Incoming
from archiver.retention.disposition import Disposition
from archiver.retention.service import RetentionService
from archiver.search.query.parser import MAX_NESTING, MAX_QUERY_CHARS
from archiver.settings import Settings, get_settings
from archiver.tagging.service import TaggingService
from bench.cleanup import throwaway_archive, throwaway_settings
from bench.mailgen import generate
from search_api import audit as audit_deps
from search_api import deps
from search_api.app import create_app
from tests.support.fakes import InMemoryAuditStore
from tests.support.principals import as_role

pytestmark = pytest.mark.services


class FuzzArchive:
    settings: Settings
    tagging: TaggingService
    # a user holding every built-in role, so every route runs past its permission check
    headers: dict[str, str]
    audit: AuditLog
    # the fuzzer saves deleting policies and runs disposition: on this archive, never the session's
    retention: RetentionService
    holds: HoldService
    disposition: Disposition
    # exports of random requests, built as they are asked for (so the builder meets every
    # name, query and format the fuzzer makes up), in this archive's buckets
    exports: ExportService
    signer: ManifestSigner


ARCHIVE = FuzzArchive()
app = create_app()
app.dependency_overrides[get_settings] = lambda: ARCHIVE.settings
app.dependency_overrides[deps.get_index] = lambda: bootstrap.search_index(ARCHIVE.settings)
app.dependency_overrides[deps.get_raw_store] = lambda: bootstrap.raw_store(ARCHIVE.settings)
app.dependency_overrides[deps.get_json_store] = lambda: bootstrap.json_store(ARCHIVE.settings)
app.dependency_overrides[deps.get_tagging] = lambda: ARCHIVE.tagging
app.dependency_overrides[deps.get_retention] = lambda: ARCHIVE.retention
app.dependency_overrides[deps.get_holds] = lambda: ARCHIVE.holds
app.dependency_overrides[deps.get_disposition] = lambda: ARCHIVE.disposition
app.dependency_overrides[deps.get_exports] = lambda: ARCHIVE.exports
app.dependency_overrides[deps.get_signer] = lambda: ARCHIVE.signer
# the log of this module's requests alone, in memory: exports and verifications then read these
# few hundred records, not the whole session's (the S3 log has tests of its own)
app.dependency_overrides[audit_deps.get_audit_log] = lambda: ARCHIVE.audit
# sign-in is left out: random failed sign-ins would block the test client's address for the
# rest of the session (tests/search_api/test_auth.py covers it, with limits of its own)
schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(
    method="POST", path="/api/session"
)
# invalid requests too (wrong types, missing parameters, odd bodies): they must be 4xx as well
schema.config.generation.update(modes=list(schemathesis.GenerationMode))


@pytest.fixture(scope="module")
def fuzz_archive(settings: Settings, backends: None) -> Iterator[None]:
    ARCHIVE.settings = throwaway_settings(settings, f"{settings.es_index}-fuzz")
    with throwaway_archive(ARCHIVE.settings) as archiver:
        source = Source(kind="import", detail="fuzz", received_at=datetime.now(UTC))
        archiver.ingest_many([Incoming(m.raw, source) for m in generate(20, seed=5)])
        archiver.index.refresh()
        ARCHIVE.tagging = bootstrap.tagging(ARCHIVE.settings)
        ARCHIVE.headers = as_role(settings, *BUILTIN_ROLES)
        ARCHIVE.audit = AuditLog(InMemoryAuditStore(), bootstrap.audit_index(ARCHIVE.settings))
        ARCHIVE.retention = bootstrap.retention(ARCHIVE.settings)
        ARCHIVE.holds = HoldService(ARCHIVE.retention)
        ARCHIVE.disposition = Disposition(
            ARCHIVE.retention, ARCHIVE.audit, bootstrap.spooled_messages(ARCHIVE.settings)
        )
        builder = bootstrap.export_builder(ARCHIVE.settings)

        def build_now(export_id: str) -> None:
            builder.build(export_id)

        ARCHIVE.exports = bootstrap.exports(ARCHIVE.settings, build_now)
        ARCHIVE.signer = bootstrap.export_signer(ARCHIVE.settings)
        yield


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(fuzz_archive: None, case: Case[Any]) -> None:
    response = case.call(headers=ARCHIVE.headers)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}: "
        f"{response.text[:500]}"
    )


HOSTILE = [
    "(" * 5000,
    ")" * 5000,
    "NOT " * 2000,
    "subject:(" * 1000,
    "from:" + "*?" * 900,  # a wildcard Elasticsearch finds too complex to run
    "a " * 1001,  # longer than allowed
    "date:9999 larger:" + "9" * 400,
]
# Not syntax, but text: searched as text (stray quotes and colons of pasted text)
AS_TEXT = ['"' * 1999, "\x00\x1f\u202e\ufeff:\"'\\", ")" * 1990 + "合同"]
DEEPEST = [
    "a OR (b " * MAX_NESTING + "participant:example.com" + ")" * MAX_NESTING,
    "NOT (x " * (MAX_NESTING // 2) + "from:*@example.com" + ")" * (MAX_NESTING // 2),
    "- " * MAX_NESTING + "报告",
    " ".join(chr(0x4E00 + i) for i in range(MAX_QUERY_CHARS // 2)),  # distinct terms, at most
    " OR ".join(f"participant:p{i}" for i in range(MAX_QUERY_CHARS // 20)),
]


@pytest.fixture(scope="module")
def client(fuzz_archive: None) -> Iterator[TestClient]:
    with TestClient(app, headers=ARCHIVE.headers) as test_client:
        yield test_client


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_queries_are_a_clear_400(client: TestClient, query: str) -> None:
    response = client.get("/api/search", params={"q": query})
    assert response.status_code == 400, response.text[:500]
    assert response.json()["error"] == "InvalidQuery"


@pytest.mark.parametrize("query", AS_TEXT, ids=range(len(AS_TEXT)))
def test_hostile_text_is_searched_as_text(client: TestClient, query: str) -> None:
    response = client.get("/api/search", params={"q": query})
    assert response.status_code == 200, response.text[:500]
    assert response.json()["interpreted_as"] == "text"


@pytest.mark.parametrize("query", DEEPEST, ids=range(len(DEEPEST)))
def test_the_largest_allowed_queries_run(client: TestClient, query: str) -> None:
    assert len(query) <= MAX_QUERY_CHARS
    response = client.get("/api/search", params={"q": query})
    assert response.status_code == 200, response.text[:500]


def test_a_wildcard_elasticsearch_refuses_is_a_400_saying_why(client: TestClient) -> None:
    response = client.get("/api/search", params={"q": "from:" + "*?" * 900})
    assert response.status_code == 400
    assert response.json()["message"].startswith("Elasticsearch cannot run this query: ")


def test_an_expired_cursor_is_a_400_saying_to_start_again(client: TestClient) -> None:
    first = client.get("/api/search", params={"cursor": "*", "size": 15}).json()
    cursor = first["next_cursor"]
    rest = client.get("/api/search", params={"cursor": cursor, "size": 15}).json()
    assert rest["next_cursor"] is None  # the walk ended: its point in time is closed
    again = client.get("/api/search", params={"cursor": cursor, "size": 15})
    assert again.status_code == 400
    assert "start again with cursor=*" in again.json()["message"]


def test_every_route_of_a_built_export_answers_without_a_server_error(client: TestClient) -> None:
    """The fuzzer's export ids are random and hit nothing: each route of the exports it built
    (and of three made here, in every format) is called with their real ids as well."""
    hits = client.get("/api/search", params={"cursor": "*", "size": 3}).json()["hits"]
    ids = [hit["id"] for hit in hits]
    for fmt in ("eml", "mbox", "pdf"):
        request = {"name": f"模糊 {fmt}/..", "kind": "ids", "ids": ids, "format": fmt}
        created = client.post("/api/exports", json={**request, "load_file": True})
        assert created.status_code == 202, created.text
    jobs = ARCHIVE.exports.jobs.all()
    assert sum(job.status == "done" for job in jobs) >= 3
    for job in jobs:
        base = f"/api/exports/{job.id}"
        for number in [*(p.number for p in job.parts), len(job.parts) + 1]:
            part = client.get(f"{base}/parts/{number}")
            assert part.status_code < 500, part.text[:500]
            if part.status_code == 200:
                assert hashlib.sha256(part.content).hexdigest() == part.headers["x-content-sha256"]
        for method, path in [("GET", base), ("GET", f"{base}/custody"), ("POST", f"{base}/cancel")]:
            response = client.request(method, path)
            assert response.status_code < 500, f"{method} {path}: {response.text[:500]}"
