"""/metrics in the Prometheus text format: request latencies and the status figures.

Latencies are recorded per route template ("/api/messages/{message_id}"), method and status,
never per raw path, so the number of series is bounded by the routes. The status figures are
read at scrape time by a collector (archiver/status.py, cached for a few seconds).

Access (`MAILVAULT_METRICS_ACCESS`): "token" (the default) asks for a session or an API token
with manage_config, the administrators' permission: make a token limited to it for Prometheus
(`authorization: {credentials_file: ...}` in the scrape config). "open" serves anyone who can
reach it, for a scraper on a private network or behind a proxy that limits it. Either way the
answer holds counts and sizes, never mail; scrapes are not audited (one every 15 seconds would
bury the records people need), like /healthz.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from time import perf_counter
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from archiver.access.model import Permission
from archiver.status import CachedStatus, SystemStatus
from search_api.auth import require

METRICS_PATH = "/metrics"
UNMATCHED = "unmatched"  # 404s of any path share one series
# a client may send any method name; the others share one series
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# seconds; the API's answers run from a few milliseconds (a cached read) to a minute (a PDF)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class RequestMetrics:
    """ASGI middleware timing each HTTP request to its last byte, labelled by route template."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500  # an exception before the answer started is what the client sees

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.histogram.labels(
                route=route_template(scope),
                method=scope["method"] if scope["method"] in METHODS else "other",
                status=str(status),
            ).observe(perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The matched route's path template; a mount's (the static files') prefix and "{path}".

    The router fills in the scope it was handed, which is this one: it is read afterwards."""
    route: BaseRoute | None = scope.get("route")
    path = getattr(route, "path", None) if route is not None else None
    if isinstance(path, str) and path:
        return path
    mounted = str(scope.get("root_path", ""))[len(str(scope.get("app_root_path", ""))) :]
    return f"{mounted}/{{path}}" if mounted else UNMATCHED


def _gauge(name: str, doc: str, value: float | None, unit: str = "") -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(name, doc, value=value, unit=unit)


class StatusCollector(Collector):
    """The status figures as gauges, read when Prometheus scrapes."""

    def __init__(self, status: Callable[[], SystemStatus]) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        s = self.status()
        up = GaugeMetricFamily(
            "mailvault_service_up", "1 when the backend answers and is healthy", labels=["service"]
        )
        for service in s.services:
            up.add_metric([service.name], 1.0 if service.up else 0.0)
        yield up
        yield from _gauge("mailvault_messages", "messages in the index", s.messages)
        if s.ingest is not None:
            indexed = GaugeMetricFamily(
                "mailvault_ingested_messages",
                "messages indexed in the last window (5m, 60m)",
                labels=["window"],
            )
            indexed.add_metric(["5m"], s.ingest.last_5m)
            indexed.add_metric(["60m"], s.ingest.last_60m)
            yield indexed
            yield from _gauge(
                "mailvault_ingest_rate_per_minute",
                "messages indexed per minute over the last 5 minutes",
                s.ingest.per_minute,
            )
        if s.lag is not None:
            lag = GaugeMetricFamily(
                "mailvault_ingest_lag_seconds",
                "SMTP acceptance (250) to searchable over the last hour's SMTP mail",
                labels=["quantile"],
            )
            for quantile, value in (
                ("0.5", s.lag.p50_seconds),
                ("0.95", s.lag.p95_seconds),
                ("1", s.lag.max_seconds),
            ):
                if value is not None:
                    lag.add_metric([quantile], value)
            yield lag
            yield from _gauge(
                "mailvault_ingest_lag_samples", "SMTP messages the lag is taken over", s.lag.samples
            )
        q = s.queues
        yield from _gauge("mailvault_queue_tasks", "pipeline tasks waiting in Celery", q.tasks)
        yield from _gauge(
            "mailvault_spool_segments", "SMTP spool segments not yet filed", q.spool_segments
        )
        yield from _gauge(
            "mailvault_spool_oldest_age_seconds",
            "age of the oldest SMTP spool segment not yet filed",
            q.spool_oldest_age_seconds,
        )
        f = s.failures
        failed = GaugeMetricFamily(
            "mailvault_failures", "what failed, by kind (pipeline, parse, extract)", labels=["kind"]
        )
        for kind, count in (
            ("pipeline", f.pipeline),
            ("parse", f.parse_failed),
            ("extract", f.extract_failed),
        ):
            if count is not None:
                failed.add_metric([kind], count)
        yield failed
        st = s.storage
        yield from _gauge(
            "mailvault_index_store_bytes", "the index's store (all copies)", st.index_store_bytes
        )
        yield from _gauge(
            "mailvault_index_fs_total_bytes",
            "file systems of the Elasticsearch data nodes",
            st.index_fs_total_bytes,
        )
        yield from _gauge(
            "mailvault_index_fs_available_bytes",
            "room left on the Elasticsearch data nodes",
            st.index_fs_available_bytes,
        )
        yield from _gauge(
            "mailvault_broker_memory_bytes", "memory Redis uses", st.broker_memory_bytes
        )
        total = GaugeMetricFamily(
            "mailvault_disk_total_bytes", "local file system size", labels=["path"]
        )
        free = GaugeMetricFamily(
            "mailvault_disk_free_bytes", "local file system free space", labels=["path"]
        )
        for disk in st.local:
            total.add_metric([disk.path], disk.total_bytes)
            free.add_metric([disk.path], disk.free_bytes)
        yield total
        yield free
        errors = GaugeMetricFamily(
            "mailvault_status_errors", "figures that could not be read at this scrape"
        )
        errors.add_metric([], len(s.errors))
        yield errors
        yield from _gauge(
            "mailvault_status_collect_seconds", "how long reading the figures took", s.took_seconds
        )


def registry(status: Callable[[], SystemStatus]) -> tuple[CollectorRegistry, Histogram]:
    """A registry of the app's own (not the process-global one: each app, and each test's app,
    counts its own requests)."""
    found = CollectorRegistry(auto_describe=False)
    histogram = Histogram(
        "mailvault_http_request_duration_seconds",
        "HTTP requests by route template, method and status, to the answer's last byte",
        ["route", "method", "status"],
        buckets=LATENCY_BUCKETS,
        registry=found,
    )
    ProcessCollector(registry=found)
    found.register(StatusCollector(status))
    return found, histogram


def mount(app: FastAPI, status: Callable[[], CachedStatus], access: str) -> None:
    """/metrics and the latency middleware on the app; `status` gives the cached figures (a
    getter, so tests can point it at an archive of their own)."""
    reg, histogram = registry(lambda: status().get())
    app.add_middleware(RequestMetrics, histogram=histogram)
    guard: list[Any] = [] if access == "open" else [Depends(require(Permission.MANAGE_CONFIG))]
    router = APIRouter(tags=["monitoring"], dependencies=guard)

    @router.get(METRICS_PATH, response_class=Response)
    def metrics() -> Response:
        """The Prometheus text format (0.0.4: every Prometheus reads it); counts, never mail."""
        return Response(generate_latest(reg), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    app.include_router(router)
