"""The HTTP API against the real backends (FastAPI's TestClient runs the app in-process)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from archiver import bootstrap
from archiver.models import Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.settings import Settings
from search_api import deps
from search_api.app import create_app
from tests.support.principals import as_role

pytestmark = pytest.mark.services

RAW = (
    b"Message-ID: <api-test@example.cn>\r\n"
    b"From: =?utf-8?B?5byg5LiJ?= <Zhang.San@Example.cn>\r\n"
    b"To: li.si@example.cn\r\n"
    b"Subject: =?utf-8?B?5YWz5LqO5Lqn5ZOB5Y+R5biD5Lya55qE6YCa55+l?=\r\n"
    b"Date: Mon, 3 Jun 2024 10:00:00 +0800\r\n"
    b"Content-Type: text/plain; charset=gb2312\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\n"
) + "各位同事：产品发布会定于下周三在北京举行，请准时参加。<script>x</script>\r\n".encode("gb18030")
SHA = hashlib.sha256(RAW).hexdigest()


@pytest.fixture(scope="module")
def client(archiver: Archiver, settings: Settings) -> Iterator[TestClient]:
    source = Source(kind="import", detail="api-test", received_at=datetime.now(UTC))
    assert archiver.ingest_many([Incoming(RAW, source)])[0].status in ("imported", "duplicate")
    archiver.index.refresh()
    with TestClient(create_app(), headers=as_role(settings, "compliance_officer")) as test_client:
        yield test_client


def test_search_returns_the_message_with_a_highlighted_snippet(client: TestClient) -> None:
    response = client.get("/api/search", params={"q": "发布会", "size": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["total"] >= 1
    hit = next(h for h in body["hits"] if h["id"] == SHA)
    assert hit["subject"] == "关于产品发布会的通知"
    assert hit["from"] == "张三 <zhang.san@example.cn>"
    assert hit["date"].startswith("2024-06-03T02:00:00")
    assert "<em>发布会</em>" in hit["snippet"]
    assert "&lt;script&gt;" in hit["snippet"]  # HTML in mail text is escaped, never rendered


def test_message_view_and_byte_exact_raw(client: TestClient) -> None:
    view = client.get(f"/api/messages/{SHA}")
    assert view.status_code == 200
    doc = view.json()
    assert doc["message_id"] == "api-test@example.cn"
    assert doc["date_offset_minutes"] == 480
    assert "body_terms" not in doc
    raw = client.get(f"/api/messages/{SHA}/raw")
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "message/rfc822"
    assert raw.content == RAW


def test_unknown_and_malformed_ids_are_clear_errors(client: TestClient) -> None:
    missing = client.get(f"/api/messages/{'0' * 64}")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "MessageNotFound",
        "message": f"no archived message with id {'0' * 64}",
    }
    assert client.get(f"/api/messages/{'0' * 64}/raw").status_code == 404
    assert client.get("/api/messages/not-a-sha").status_code == 422


def test_healthz_reports_each_backend(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    backends = response.json()["backends"]
    assert backends["elasticsearch"]["version"].startswith("9.")
    assert backends["s3"]["status"] == "ok"
    assert backends["redis"]["status"] == "ok"


def test_unavailable_backend_is_a_503_with_a_message(settings: Settings) -> None:
    # A real client pointed at a port where nothing listens.
    dead = settings.model_copy(
        update={"es_url": "http://127.0.0.1:9", "s3_endpoint": "127.0.0.1:9"}
    )
    app = create_app()
    app.dependency_overrides[deps.get_index] = lambda: bootstrap.search_index(dead)
    app.dependency_overrides[deps.get_raw_store] = lambda: bootstrap.raw_store(dead)
    app.dependency_overrides[deps.get_settings] = lambda: settings.model_copy(
        update={"redis_url": "redis://127.0.0.1:9/0"}
    )
    with TestClient(app, headers=as_role(settings, "compliance_officer")) as dead_client:
        health = dead_client.get("/healthz")
        assert health.status_code == 503
        backends = health.json()["backends"]
        assert backends["elasticsearch"]["status"] == "unavailable"
        assert backends["s3"]["status"] == "unavailable"
        assert backends["redis"]["status"] == "unavailable"
        raw = dead_client.get(f"/api/messages/{SHA}/raw")
        assert raw.status_code == 503
        assert raw.json()["error"] == "BackendUnavailable"
        assert raw.json()["message"].startswith("s3 unavailable")
        assert dead_client.get(f"/api/messages/{SHA}").status_code == 503


def test_a_misconfigured_backend_is_a_500_that_names_the_cause(settings: Settings) -> None:
    wrong = settings.model_copy(update={"s3_secret_key": "not-the-secret"})
    app = create_app()
    app.dependency_overrides[deps.get_raw_store] = lambda: bootstrap.raw_store(wrong)
    with TestClient(app, headers=as_role(settings, "compliance_officer")) as wrong_client:
        raw = wrong_client.get(f"/api/messages/{SHA}/raw")
    assert raw.status_code == 500
    assert raw.json()["error"] == "BackendFailed"
    assert raw.json()["message"].startswith("s3 failed (permanent, not retried): S3Error")
    assert "SignatureDoesNotMatch" in raw.json()["message"]
    assert "Traceback" not in raw.text


def test_search_with_elasticsearch_down_is_a_503(settings: Settings) -> None:
    dead = settings.model_copy(update={"es_url": "http://127.0.0.1:9"})
    app = create_app()
    app.dependency_overrides[deps.get_index] = lambda: bootstrap.search_index(dead)
    with TestClient(app, headers=as_role(settings, "compliance_officer")) as dead_client:
        response = dead_client.get("/api/search", params={"q": "发布会"})
    assert response.status_code == 503
    assert response.json()["message"].startswith("elasticsearch unavailable")
