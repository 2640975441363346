"""GET /api/status and /metrics on the real services: who may read them, what they say (the
Prometheus text parsed by prometheus_client's own parser), no mail in them; and the shipped
Grafana dashboard asks only for metrics the app exposes."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from archiver.models import DiskFigures, Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.settings import Settings
from archiver.status import (
    FailureFigures,
    IngestFigures,
    LagFigures,
    QueueFigures,
    ServiceHealth,
    StorageFigures,
    SystemStatus,
)
from search_api import metrics
from search_api.app import create_app
from search_api.deps import cached_status
from tests.support.principals import as_role

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "mailvault-dashboard.json"
SECRET_SUBJECT = f"机密收购计划 {uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def app(archiver: Archiver) -> Iterator[FastAPI]:
    raw = (
        f"Message-ID: <{uuid.uuid4().hex}@example.cn>\r\nFrom: ceo@example.cn\r\n"
        f"To: cfo@example.cn\r\nSubject: {SECRET_SUBJECT}\r\n"
        "Date: Mon, 3 Jun 2024 10:00:00 +0800\r\n\r\n收购 body\r\n"
    ).encode()
    source = Source(kind="import", detail="status-api", received_at=datetime.now(UTC))
    archiver.ingest_many([Incoming(raw, source)])
    archiver.index.refresh()
    yield create_app()


def _families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {
        f.name: [(s.labels, s.value) for s in f.samples]
        for f in text_string_to_metric_families(text)
    }


def test_an_administrator_reads_the_status(app: FastAPI, settings: Settings) -> None:
    client = TestClient(app, headers=as_role(settings, "admin"))

    response = client.get("/api/status")

    assert response.status_code == 200, response.text
    body = response.json()
    assert [(s["name"], s["up"]) for s in body["services"]] == [
        ("elasticsearch", True),
        ("s3", True),
        ("redis", True),
    ]
    assert body["messages"] >= 1 and body["ingest"]["last_60m"] >= 1
    assert set(body) >= {"lag", "queues", "failures", "storage", "errors", "checked_at"}
    assert SECRET_SUBJECT not in response.text and "ceo@example.cn" not in response.text


@pytest.mark.parametrize("role", ["legal", "auditor", "compliance_officer", "department_lead"])
def test_only_manage_config_reads_the_status_or_the_metrics(
    app: FastAPI, settings: Settings, role: str
) -> None:
    client = TestClient(app, headers=as_role(settings, role))
    assert client.get("/api/status").status_code == 403
    assert client.get("/metrics").status_code == 403


def test_without_a_token_there_is_neither(app: FastAPI) -> None:
    client = TestClient(app)
    assert client.get("/api/status").status_code == 401
    response = client.get("/metrics")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_metrics_carry_the_figures_and_request_latencies_by_route_template(
    app: FastAPI, settings: Settings
) -> None:
    client = TestClient(app, headers=as_role(settings, "admin"))
    message = client.get("/api/messages/" + "0" * 64)  # a route with a parameter: 403 for admin
    assert message.status_code == 403

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = _families(response.text)
    assert sorted(
        (labels["service"], value) for labels, value in found["mailvault_service_up"]
    ) == [
        ("elasticsearch", 1.0),
        ("redis", 1.0),
        ("s3", 1.0),
    ]
    assert found["mailvault_messages"][0][1] >= 1
    assert {labels["window"] for labels, _ in found["mailvault_ingested_messages"]} == {
        "5m",
        "60m",
    }
    assert {labels["kind"] for labels, _ in found["mailvault_failures"]} == {
        "pipeline",
        "parse",
        "extract",
    }
    assert found["mailvault_status_errors"] == [({}, 0.0)]
    requests = found["mailvault_http_request_duration_seconds"]
    routes = {(s["route"], s["method"], s["status"]) for s, _ in requests}
    assert ("/api/messages/{message_id}", "GET", "403") in routes
    assert all("0" * 64 not in route for route, _, _ in routes)  # never the raw path
    assert SECRET_SUBJECT not in response.text and "ceo@example.cn" not in response.text


def test_metrics_open_by_setting_need_no_token() -> None:
    app = FastAPI()
    metrics.mount(app, cached_status, "open")
    client = TestClient(app)

    client.get("/nowhere")
    response = client.get("/metrics")

    assert response.status_code == 200
    requests = _families(response.text)["mailvault_http_request_duration_seconds"]
    assert ("unmatched", "404") in {(s["route"], s["status"]) for s, _ in requests}


def _everything() -> SystemStatus:
    """Every figure present, so the collector exposes every metric it can."""
    return SystemStatus(
        checked_at=datetime.now(UTC),
        took_seconds=0.1,
        services=[ServiceHealth(name="s3", up=True, status="ok")],
        messages=1,
        ingest=IngestFigures(last_5m=1, last_60m=2, per_minute=0.2),
        lag=LagFigures(samples=1, p50_seconds=1, p95_seconds=2, max_seconds=3),
        queues=QueueFigures(tasks=1, spool_segments=1, spool_oldest_age_seconds=1),
        failures=FailureFigures(pipeline=1, parse_failed=1, extract_failed=1),
        storage=StorageFigures(
            index_documents=1,
            index_store_bytes=1,
            index_fs_total_bytes=2,
            index_fs_available_bytes=1,
            broker_memory_bytes=1,
            local=[DiskFigures(path="/", total_bytes=2, free_bytes=1)],
        ),
    )


def test_the_grafana_dashboard_asks_only_for_metrics_the_app_exposes() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    registry, histogram = metrics.registry(_everything)
    histogram.labels(route="/x", method="GET", status="200").observe(0.1)
    exposed = {s.name for family in registry.collect() for s in family.samples}

    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"\bmailvault_[a-z0-9_]+", expr)}

    assert len(dashboard["panels"]) >= 6 and len(exprs) >= 10
    assert used - exposed == set()
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for subject in ("ingest rate", "lag", "queue", "failures", "disk", "latency p95"):
        assert subject in titles
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
