"""The archive's vital figures: each backend's health, how fast mail comes in and how long it
takes from the SMTP 250 to searchable, what waits, what failed, and how much room is left.

Counts only, never a message's contents: the Status page shows them to an administrator (who
reads no mail) and /metrics hands them to Prometheus. A backend that is down costs only its own
figures (None, with the reason in `errors`): the page is most needed when something is broken.

Lag is the time from an SMTP delivery's acceptance (the source's received_at, taken before the
250 is sent; `arrived_at` in the index) to the document's `ingested_at` (set when the document is
built, just before the bulk request that makes it searchable with the filing task's refresh).
Only SMTP mail counts: an IMAP or file import's received_at is the mail's own old date.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from itertools import islice
from threading import Lock
from time import perf_counter
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

from archiver.access.model import Clock, utc_now
from archiver.errors import MailvaultError
from archiver.models import DiskFigures
from archiver.pipeline.failures import FailureLog
from archiver.ports import Broker, IndexStatistics, JsonStore, LocalDisks, RawStore, SearchIndex

ServiceName = Literal["elasticsearch", "s3", "redis"]
HEALTHY = frozenset({"ok", "green", "yellow"})
LAG_WINDOW = timedelta(hours=1)
# Listing the spool is one S3 request per thousand segments; a backlog larger than this is
# reported as "at least" rather than listed to its end on every scrape.
SPOOL_COUNT_LIMIT = 10_000

# The lag is read from the newest SMTP documents of the hour, not aggregated by the cluster: the
# server may run without scripting (the integ-test distribution has no painless), and the newest
# few thousand say what the lag is now as well as all of them would.
LAG_SAMPLE = 5000

T = TypeVar("T")


class ServiceHealth(BaseModel):
    name: ServiceName
    up: bool
    status: str = Field(description="the backend's own word: green/yellow/red, ok, unavailable")
    detail: str = Field("", description="the version, or why it is down")


class IngestFigures(BaseModel):
    last_5m: int = Field(description="messages indexed in the last 5 minutes")
    last_60m: int = Field(description="messages indexed in the last 60 minutes")
    per_minute: float = Field(description="messages per minute over the last 5 minutes")
    by_source_60m: dict[str, int] = Field(
        default_factory=dict, description="of the last 60 minutes, by how they came (smtp, ...)"
    )


class LagFigures(BaseModel):
    """SMTP acceptance (250) to searchable, over the newest SMTP mail indexed in the last
    hour (up to LAG_SAMPLE messages)."""

    samples: int
    p50_seconds: float | None = None
    p95_seconds: float | None = None
    max_seconds: float | None = None


class QueueFigures(BaseModel):
    tasks: int | None = Field(None, description="pipeline tasks waiting in the Celery queue")
    spool_segments: int | None = Field(None, description="SMTP spool segments not yet filed")
    spool_more: bool = Field(False, description="there are more segments than were counted")
    spool_oldest_age_seconds: float | None = None


class FailureFigures(BaseModel):
    pipeline: int | None = Field(None, description="tasks that gave up (`mailvault failures`)")
    parse_failed: int | None = Field(None, description="messages indexed with a parse error")
    extract_failed: int | None = Field(
        None, description="messages with an attachment whose text could not be extracted"
    )


class StorageFigures(BaseModel):
    index_documents: int | None = None
    index_store_bytes: int | None = None
    index_fs_total_bytes: int | None = None
    index_fs_available_bytes: int | None = None
    broker_memory_bytes: int | None = None
    local: list[DiskFigures] = Field(default_factory=list)


class SystemStatus(BaseModel):
    checked_at: datetime
    took_seconds: float
    services: list[ServiceHealth]
    messages: int | None = Field(None, description="messages in the index")
    ingest: IngestFigures | None = None
    lag: LagFigures | None = None
    queues: QueueFigures
    failures: FailureFigures
    storage: StorageFigures
    errors: dict[str, str] = Field(
        default_factory=dict, description="figures that could not be read, and why"
    )


def _service(name: ServiceName, health: dict[str, Any]) -> ServiceHealth:
    status = str(health.get("status", "unknown"))
    detail = str(health.get("error") or health.get("version") or "")
    return ServiceHealth(name=name, up=status in HEALTHY, status=status, detail=detail)


def _seconds(millis: Any) -> float | None:
    return None if millis is None else round(float(millis) / 1000, 3)


def _rank(ordered: Sequence[float], quantile: float) -> float:
    """The nearest-rank percentile: a lag some message really had, not an interpolation."""
    return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]


class StatusProbe:
    """Reads the figures from the backends; every call asks them afresh (the caller caches)."""

    def __init__(
        self,
        *,
        index: SearchIndex,
        index_stats: IndexStatistics,
        raw_store: RawStore,
        json_store: JsonStore,
        broker: Broker,
        disks: LocalDisks,
        queue: str,
        disk_paths: Sequence[str] = (),
        clock: Clock = utc_now,
    ) -> None:
        self.index = index
        self.index_stats = index_stats
        self.raw_store = raw_store
        self.failures = FailureLog(json_store)
        self.broker = broker
        self.disks = disks
        self.queue = queue
        self.disk_paths = tuple(disk_paths)
        self.clock = clock

    def collect(self) -> SystemStatus:
        started = perf_counter()
        now = self.clock()
        errors: dict[str, str] = {}

        def attempt(what: str, read: Callable[[], T]) -> T | None:
            try:
                return read()
            except MailvaultError as exc:
                errors[what] = str(exc)
                return None

        services = [
            _service("elasticsearch", self.index.health()),
            _service("s3", self.raw_store.health()),
            _service("redis", self.broker.health()),
        ]
        up = {s.name: s.up for s in services}
        # a backend that is down is not asked again for figures: each call would wait out its
        # timeouts and retries, and the page would hang exactly when it is needed
        counts = attempt("index", lambda: self._index_figures(now)) if up["elasticsearch"] else None
        storage = StorageFigures()
        if up["elasticsearch"]:
            found = attempt("index_storage", self.index_stats.storage)
            if found is not None:
                storage.index_documents = found.documents
                storage.index_store_bytes = found.store_bytes
                storage.index_fs_total_bytes = found.fs_total_bytes
                storage.index_fs_available_bytes = found.fs_available_bytes
        queues = QueueFigures()
        failures = FailureFigures()
        if up["redis"]:
            queues.tasks = attempt("queue", lambda: self.broker.queue_length(self.queue))
            storage.broker_memory_bytes = attempt("broker_memory", self.broker.memory_bytes)
        if up["s3"]:
            spool = attempt("spool", lambda: self._spool(now))
            if spool is not None:
                queues.spool_segments, queues.spool_more, queues.spool_oldest_age_seconds = spool
            failures.pipeline = attempt("failures", self.failures.count)
        for path in self.disk_paths:
            disk = attempt(f"disk:{path}", partial(self.disks.usage, path))
            if disk is not None:
                storage.local.append(disk)
        messages, ingest, lag = None, None, None
        if counts is not None:
            messages, ingest, lag, (failures.parse_failed, failures.extract_failed) = counts
        return SystemStatus(
            checked_at=now,
            took_seconds=round(perf_counter() - started, 3),
            services=services,
            messages=messages,
            ingest=ingest,
            lag=lag,
            queues=queues,
            failures=failures,
            storage=storage,
            errors=errors,
        )

    def _index_figures(
        self, now: datetime
    ) -> tuple[int, IngestFigures, LagFigures, tuple[int, int]]:
        """One search: the total, the last hour's arrivals and lag, the failed parses."""
        hour_ago = (now - LAG_WINDOW).isoformat()
        five_ago = (now - timedelta(minutes=5)).isoformat()
        body: dict[str, Any] = {
            "size": 0,
            "track_total_hits": True,
            "query": {"match_all": {}},
            "aggs": {
                "hour": {
                    "filter": {"range": {"ingested_at": {"gte": hour_ago}}},
                    "aggs": {
                        "five": {"filter": {"range": {"ingested_at": {"gte": five_ago}}}},
                        "by_source": {"terms": {"field": "source_kinds", "size": 10}},
                    },
                },
                "parse_failed": {"filter": {"term": {"parse_failed": True}}},
                "extract_failed": {"filter": {"term": {"extract_failed": True}}},
            },
        }
        found = self.index.search(body)
        aggs = found["aggregations"]
        hour = aggs["hour"]
        last_5m = int(hour["five"]["doc_count"])
        ingest = IngestFigures(
            last_5m=last_5m,
            last_60m=int(hour["doc_count"]),
            per_minute=round(last_5m / 5, 2),
            by_source_60m={b["key"]: int(b["doc_count"]) for b in hour["by_source"]["buckets"]},
        )
        lag = self._lag(hour_ago)
        total = int(found["hits"]["total"]["value"])
        failed = (int(aggs["parse_failed"]["doc_count"]), int(aggs["extract_failed"]["doc_count"]))
        return total, ingest, lag, failed

    def _lag(self, since: str) -> LagFigures:
        body: dict[str, Any] = {
            "size": LAG_SAMPLE,
            "track_total_hits": False,
            "_source": False,
            "docvalue_fields": [
                {"field": "arrived_at", "format": "epoch_millis"},
                {"field": "ingested_at", "format": "epoch_millis"},
            ],
            "sort": [{"ingested_at": "desc"}],
            "query": {
                "bool": {
                    "filter": [
                        {"range": {"ingested_at": {"gte": since}}},
                        {"term": {"source_kinds": "smtp"}},
                        {"exists": {"field": "arrived_at"}},
                    ]
                }
            },
        }
        lags = sorted(
            float(f["ingested_at"][0]) - float(f["arrived_at"][0])
            for f in (hit.get("fields", {}) for hit in self.index.search(body)["hits"]["hits"])
            if f.get("ingested_at") and f.get("arrived_at")
        )
        if not lags:
            return LagFigures(samples=0)
        return LagFigures(
            samples=len(lags),
            p50_seconds=_seconds(_rank(lags, 0.5)),
            p95_seconds=_seconds(_rank(lags, 0.95)),
            max_seconds=_seconds(lags[-1]),
        )

    def _spool(self, now: datetime) -> tuple[int, bool, float | None]:
        segments = list(islice(self.raw_store.spooled(), SPOOL_COUNT_LIMIT + 1))
        more = len(segments) > SPOOL_COUNT_LIMIT
        written = [s.written_at for s in segments[:SPOOL_COUNT_LIMIT] if s.written_at is not None]
        oldest = round((now - min(written)).total_seconds(), 3) if written else None
        return min(len(segments), SPOOL_COUNT_LIMIT), more, oldest


class CachedStatus:
    """The figures reused for `ttl` seconds: several Prometheus servers and open Status pages
    ask the backends once between them, and concurrent askers wait for one collection."""

    def __init__(self, probe: StatusProbe, ttl: float, clock: Callable[[], float]) -> None:
        self.probe = probe
        self.ttl = ttl
        self.clock = clock
        self._lock = Lock()
        self._last: tuple[float, SystemStatus] | None = None

    def get(self) -> SystemStatus:
        with self._lock:
            if self._last is not None and self.clock() - self._last[0] < self.ttl:
                return self._last[1]
            status = self.probe.collect()
            self._last = (self.clock(), status)
            return status
