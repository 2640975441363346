"""What authentication, scoping and auditing cost on bench/search's workload.

    python -m bench.access --count 5000 --requests 600

Two API servers over the same index, in one run: the bare search route of before access control
(no credential, no scope, no audit record: `baseline_app` below) and the real app, called with
an API token of a compliance officer (whole archive) and of a department lead (every query gets
the scope filter). Each request of the workload goes to each caller in turn, in an order that
rotates, so load on the machine falls on all of them alike. Prints p50/p95 per server and the
growth over the baseline; the target of the issue is p95 growing by under 5 ms.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Query

from archiver import bootstrap
from archiver.models import SearchResult
from archiver.search.service import Sort
from archiver.settings import Settings, get_settings
from archiver.tagging.model import department_tag
from bench.search import (
    _percentile,
    _uptime,
    alias_for,
    bench_token,
    build_corpus,
    build_workload,
    machine_line,
    start_api,
)
from search_api.app import install_error_handlers

TARGET_MS = 5.0
BENCH_DEPARTMENT = "研发部"


def baseline_app() -> Any:
    """/api/search as it was before access control: the same service, nothing around it."""
    app = FastAPI()
    install_error_handlers(app)
    settings = get_settings()
    service = bootstrap.search_service(settings)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/search", response_model=SearchResult, response_model_by_alias=True)
    def search(
        q: str = "",
        sort: Sort = "relevance",
        page: Annotated[int, Query(ge=1)] = 1,
        size: Annotated[int, Query(ge=1, le=100)] = 10,
        cursor: str | None = None,
        facets: bool = False,
    ) -> SearchResult:
        return service.search(q, sort=sort, page=page, size=size, cursor=cursor, facets=facets)

    return app


def _department(settings: Settings) -> tuple[str, int]:
    """A department that a third of the corpus is tagged with (tagged now if none is), so the
    lead's searches find mail and carry a filter that matters; and how many messages it has."""
    index = bootstrap.search_index(settings)
    response = index.search(
        {"size": 0, "aggs": {"d": {"terms": {"field": "departments", "size": 1}}}}
    )
    buckets = response["aggregations"]["d"]["buckets"]
    if buckets:
        return str(buckets[0]["key"]), int(buckets[0]["doc_count"])
    department, seen = BENCH_DEPARTMENT, 0
    for batch in index.scan({"match_all": {}}, ["tags", "departments"]):
        updates = {}
        for doc in batch:
            if seen % 3 == 0:
                updates[doc["id"]] = {
                    "tags": sorted({*(doc.get("tags") or []), department_tag(department)}),
                    "departments": sorted({*(doc.get("departments") or []), department}),
                }
            seen += 1
        index.update_many(updates)
    index.refresh()
    return department, (seen + 2) // 3


def measure(settings: Settings, args: argparse.Namespace) -> bool:
    department, visible = _department(settings)
    print(f"the department lead's scope: {visible} of {args.count} messages ({department})")
    # one process of the real app: several would take turns losing the race for the next
    # audit sequence number (correct, and costly: each lost race is one more GET and PUT)
    baseline, real = start_api(settings, "bench.access:baseline_app"), start_api(settings)
    callers = {
        "baseline (no access control)": (baseline, {}),
        "compliance officer (token)": (real, bench_token(settings, "compliance_officer")),
        f"department lead of {department} (token)": (
            real,
            bench_token(settings, "department_lead", (department,)),
        ),
    }
    clients = [
        httpx.Client(base_url=url, timeout=60, headers=headers)
        for (_, url), headers in callers.values()
    ]
    names = list(callers)
    times: dict[str, list[float]] = {n: [] for n in names}
    errors: list[str] = []
    workload = build_workload(args.requests, args.seed, args.count, walks=0)
    warmup = build_workload(args.warmup, args.seed + 1, args.count, walks=0)
    try:
        for n, request in enumerate([*warmup, *workload]):
            for i in [(n + k) % len(clients) for k in range(len(clients))]:
                start = time.perf_counter()
                response = clients[i].get("/api/search", params=request.params)
                elapsed = (time.perf_counter() - start) * 1000
                if response.status_code != 200:
                    errors.append(f"{names[i]}: {response.status_code} {response.text[:200]}")
                elif n >= len(warmup):
                    times[names[i]].append(elapsed)
    finally:
        for client in clients:
            client.close()
        for server, _ in (baseline, real):
            server.terminate()
            server.wait(timeout=30)
    return _report(times, errors, args)


def _report(times: dict[str, list[float]], errors: list[str], args: argparse.Namespace) -> bool:
    base = next(iter(times.values()))
    b50, b95 = _percentile(base, 50), _percentile(base, 95)
    print(f"{args.requests} requests per server, interleaved ({args.warmup} warm-up excluded):")
    print(f"  {'server':<44} {'p50 ms':>7} {'p95 ms':>7} {'+p50':>6} {'+p95':>6}")
    met = True
    for name, values in times.items():
        p50, p95 = _percentile(values, 50), _percentile(values, 95)
        print(f"  {name:<44} {p50:7.1f} {p95:7.1f} {p50 - b50:+6.1f} {p95 - b95:+6.1f}")
        if values is not base:
            met = met and p95 - b95 < TARGET_MS
    print(f"  target: p95 grows by under {TARGET_MS:.0f} ms: {'met' if met else 'MISSED'}")
    for error in errors[:10]:
        print(f"  error: {error}")
    return met and not errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000, help="messages in the index")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    alias = alias_for(args.count, args.seed)
    settings = get_settings().model_copy(update={"es_index": alias, "s3_bucket": alias})
    print(machine_line())
    build_corpus(settings, args.count, args.seed, rebuild=False)
    met = measure(settings, args)
    print(f"load after: {_uptime()}")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
