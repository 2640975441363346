"""Search benchmark: a mixed query workload through the HTTP API over generated mail.

Builds (once) an index of generated messages through the real pipeline, kept between runs under
the alias mailvault-benchsearch-<count>-s<seed>, serves the API with uvicorn on a free loopback
port and measures each request's latency with an HTTP client: p50/p95/p99 per query class.
Needs the services (scripts/services.sh up).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from archiver import bootstrap
from archiver.models import Source
from archiver.pipeline.archiver import Incoming
from archiver.settings import Settings, get_settings
from bench.cleanup import drop_bucket, drop_index
from bench.mailgen import BIG5_KEYWORDS, ZH_KEYWORDS, english_keyword, generate

BATCH = 500
# p95 targets of the issues
TARGETS_MS = {"simple": 50.0, "phrase": 50.0, "span": 50.0, "faceted": 200.0}


# -- the corpus ----------------------------------------------------------------------------------


def alias_for(count: int, seed: int) -> str:
    size = f"{count // 1000}k" if count % 1000 == 0 else str(count)
    return f"mailvault-benchsearch-{size}-s{seed}"


def _raw_batch(seed: int, start: int, n: int) -> list[bytes]:
    return [m.raw for m in generate(n, seed=seed, start=start)]


def _indexed(settings: Settings) -> int:
    client = bootstrap.search_index(settings).client
    client.indices.refresh(index=settings.es_index)
    return int(client.count(index=settings.es_index)["count"])


def build_corpus(settings: Settings, count: int, seed: int, rebuild: bool) -> None:
    """Index messages 0..count-1 unless already there; an interrupted build resumes."""
    if rebuild:
        drop_index(bootstrap.search_index(settings).client, settings.es_index)
        drop_bucket(bootstrap.raw_store(settings).client, settings.s3_bucket)
    bootstrap.init_backends(settings)
    done = _indexed(settings)
    if done >= count:
        print(f"index: reusing {settings.es_index} ({done} messages; --rebuild to rebuild)")
        return
    # batches are ingested in order, so every batch before the last complete one is in
    start = done // BATCH * BATCH
    print(f"index: building {settings.es_index}, messages {start}..{count - 1}")
    archiver = bootstrap.archiver(settings, parallel=True)
    received = datetime(2030, 1, 1, tzinfo=UTC)
    began = time.perf_counter()
    # generating is as slow as a pipeline stage: a separate process prepares the next batch
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as generator:
        batches = _prefetched(generator, seed, start, count)
        for first, raws in batches:
            items = [
                Incoming(
                    raw, Source(kind="import", detail=f"bench#{first + i}", received_at=received)
                )
                for i, raw in enumerate(raws)
            ]
            failed = [o for o in archiver.ingest_many(items) if o.status == "failed"]
            if failed:
                raise RuntimeError(f"ingest failed: {failed[0].error}")
            ready = first + len(raws)
            rate = (ready - start) / (time.perf_counter() - began)
            eta = (count - ready) / rate
            print(f"\r  {ready}/{count}  {rate:5.0f} msg/s  eta {eta:5.0f} s", end="", flush=True)
    archiver.close()
    print(f"\n  built in {time.perf_counter() - began:.0f} s")
    bootstrap.search_index(settings).client.indices.refresh(index=settings.es_index)


def _prefetched(
    generator: ProcessPoolExecutor, seed: int, start: int, count: int
) -> Iterator[tuple[int, list[bytes]]]:
    starts = list(range(start, count, BATCH))
    futures: dict[int, Future[list[bytes]]] = {}
    for n, first in enumerate(starts):
        for ahead in starts[n : n + 2]:
            if ahead not in futures:
                futures[ahead] = generator.submit(
                    _raw_batch, seed, ahead, min(BATCH, count - ahead)
                )
        yield first, futures.pop(first).result()


# -- the workload --------------------------------------------------------------------------------

ZH_WORDS = (
    "合同",
    "会议",
    "报告",
    "审批",
    "项目",
    "预算",
    "采购",
    "客户",
    "报价单",
    "报销",
    "周报",
    "培训",
    "供应商",
    "出差",
    "纪要",
    "系统",
    "安全",
    "数据",
    "需求",
    "方案",
)
EN_WORDS = (
    "budget",
    "meeting",
    "customer",
    "delivery",
    "proposal",
    "schedule",
    "maintenance",
    "pricing",
    "quotation",
    "training",
    "review",
    "contract",
    "report",
    "invoice",
)
MIXED = (
    "review 周报",
    "proposal 项目",
    "OKR 会议",
    "budget 预算",
    "deploy 状态",
    "sprint 周报",
    "patch review",
    "release 上线计划",
)
PHRASES = (
    '"会议纪要"',
    '"合同审批"',
    '"春节放假安排"',
    '"status update"',
    '"next steps"',
    '"data platform"',
    '"供应链优化项目"',
    '"请审批"',
    '"年度预算编制"',
    '"weekly report"',
    '"采购合同"',
    '"security training"',
)
FIELDED = (
    "from:*@example.cn 合同",
    "subject:周报",
    'subject:"status update"',
    "date:2024-01..2024-03 会议",
    "has:attachment 报告",
    "larger:20K 预算",
    "from:example.com budget",
    "before:2023-06-01 项目",
    "after:2028-01 客户",
    "subject:会议纪要 has:attachment",
    "smaller:8K meeting",
    "to:*@corp.example 采购",
    "attachment:报告",
    "filename:pdf",
)
BOOLEAN = (
    "合同 OR 报价单",
    "合同 -审批",
    "(会议 OR meeting) 纪要",
    "budget NOT review",
    "项目 (进度 OR 计划)",
)
# Chinese spans that start or end inside a jieba word (found only by span matching), 4-8
# characters from the generator's running text, and two-character ones across a boundary
SPANS = (
    "议决定由销",
    "们计划在上海设立",
    "户关系管理",
    "点召开项目",
    "上价格不含",
    "术方案上传到",
    "峰期超过了",
    "购部本月的费",
    "圳举办客户交",
    "定由法务部牵头",
    "件许可证库存",
    "装采用",
    "市长",
    "京市",
)
FACETED = ("", "合同", "会议", "budget", "has:attachment", "date:2024-01..2024-06", "项目 进度")
DEEP = ("", "项目", "会议")
# share of requests per class (cursor walks are added on top: walks x pages)
MIX = {
    "simple": 0.37,
    "phrase": 0.12,
    "span": 0.08,
    "fielded": 0.15,
    "boolean": 0.05,
    "faceted": 0.15,
    "deep_page": 0.08,
}


@dataclass(frozen=True)
class Request:
    kind: str  # the query class it is reported under
    params: dict[str, str | int] = field(default_factory=dict)
    walk: int = 0  # > 0: a cursor walk over this many pages (params start it with cursor=*)


def _simple(r: random.Random, seed: int, count: int) -> str:
    pick = r.random()
    if pick < 0.3:
        return r.choice(ZH_WORDS)
    if pick < 0.5:
        return r.choice(ZH_KEYWORDS + BIG5_KEYWORDS)  # rare: the generator's keyword pools
    if pick < 0.7:
        return r.choice(EN_WORDS)
    if pick < 0.8:
        return english_keyword(seed, r.randrange(count), r.randrange(3))  # a codename
    if pick < 0.9:
        return r.choice(MIXED)
    return f"{r.choice(ZH_WORDS)} {r.choice(ZH_WORDS)}"


def build_workload(
    requests: int, seed: int, count: int, walks: int = 2, walk_pages: int = 50
) -> list[Request]:
    """A fixed, seeded mix of queries; the same arguments always give the same list."""
    r = random.Random(f"bench-search-{seed}")
    kinds = list(MIX)
    workload: list[Request] = []
    for _ in range(requests):
        kind = r.choices(kinds, weights=[MIX[k] for k in kinds])[0]
        params: dict[str, str | int] = {}
        if kind == "simple":
            params = {"q": _simple(r, seed, count)}
        elif kind == "phrase":
            params = {"q": r.choice(PHRASES)}
        elif kind == "span":
            params = {"q": r.choice(SPANS)}
        elif kind == "fielded":
            params = {"q": r.choice(FIELDED)}
        elif kind == "boolean":
            params = {"q": r.choice(BOOLEAN)}
        elif kind == "faceted":
            params = {"q": r.choice(FACETED), "facets": "true"}
        else:  # near the end of the 10,000-result window
            params = {"q": r.choice(DEEP), "page": r.randrange(900, 1001), "size": 10}
        if r.random() < 0.2 and kind != "deep_page":
            params["sort"] = "date"
        workload.append(Request(kind, params))
    for n in range(walks):
        # spread the walks over the run so they meet the same conditions as the rest
        at = (n + 1) * len(workload) // (walks + 1)
        walk = Request("cursor", {"q": DEEP[n % len(DEEP)], "cursor": "*", "size": 10}, walk_pages)
        workload.insert(at, walk)
    return workload


# -- measuring through the HTTP API --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_api(
    settings: Settings, factory: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`mailvault serve` (or uvicorn with the app `factory`, "module:function") on a free
    loopback port, for this index; returns once it answers."""
    import httpx

    port = _free_port()
    env = {
        **os.environ,
        "MAILVAULT_ES_INDEX": settings.es_index,
        "MAILVAULT_S3_BUCKET": settings.s3_bucket,
    }
    where = ["--host", "127.0.0.1", "--port", str(port)]
    command = (
        [sys.executable, "-m", "uvicorn", "--factory", factory, "--log-level", "warning", *where]
        if factory
        else [sys.executable, "-m", "ingest.cli", "serve", *where]
    )
    server = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"mailvault serve exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError("mailvault serve did not answer within 60 s")


def bench_token(settings: Settings, role: str, departments: tuple[str, ...] = ()) -> dict[str, str]:
    """Authorization headers of a new user with `role` in the benchmark's archive."""
    from datetime import timedelta

    users = bootstrap.user_directory(settings)
    name = f"bench-{role.replace('_', '-')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    user = users.add(name, "benchmark password " + name, roles=[role], departments=departments)
    principal = users.principal(user)
    token = bootstrap.api_tokens(settings).create(
        principal, "bench", principal.permissions, datetime.now(UTC) + timedelta(days=1)
    )
    return {"Authorization": f"Bearer {token.secret}"}


@dataclass
class Timings:
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, kind: str, seconds: float) -> None:
        self.by_kind.setdefault(kind, []).append(seconds * 1000)


def run_workload(client: Any, workload: list[Request], timings: Timings | None) -> None:
    """Send every request in order (one at a time); timings None: a warm-up, not recorded."""

    def get(kind: str, params: dict[str, str | int]) -> dict[str, Any]:
        start = time.perf_counter()
        response = client.get("/api/search", params=params)
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            if timings is not None:
                timings.errors.append(
                    f"{response.status_code} {urlencode(params)}: {response.text[:200]}"
                )
            return {}
        if timings is not None:
            timings.add(kind, elapsed)
        body: dict[str, Any] = response.json()
        return body

    for request in workload:
        answer = get(request.kind, request.params)
        for _ in range(request.walk - 1):
            if not answer.get("next_cursor"):
                break
            answer = get(request.kind, {"cursor": answer["next_cursor"]})


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(timings: Timings, seconds: float) -> bool:
    """Print the table; True when the issue's targets are met."""
    everything = [v for values in timings.by_kind.values() for v in values]
    print(
        f"  {'class':<10} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}  target"
    )
    met = True
    for kind, values in [*sorted(timings.by_kind.items()), ("overall", everything)]:
        p95 = _percentile(values, 95)
        target = TARGETS_MS.get(kind)
        verdict = ""
        if target is not None:
            ok = p95 < target
            met = met and ok
            verdict = f"p95 < {target:.0f}: {'met' if ok else 'MISSED'}"
        print(
            f"  {kind:<10} {len(values):>5} {_percentile(values, 50):8.1f} {p95:8.1f} "
            f"{_percentile(values, 99):8.1f} {max(values):8.1f}  {verdict}"
        )
    print(
        f"  {len(everything)} requests in {seconds:.1f} s: {len(everything) / seconds:.1f} req/s "
        f"(one client, one request at a time)"
    )
    for error in timings.errors[:10]:
        print(f"  error: {error}")
    return met and not timings.errors


def machine_line() -> str:
    """The machine a benchmark ran on, and how busy it was when it started."""
    return (
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"python {platform.python_version()}; {_uptime()}"
    )


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


class LoadSampler(threading.Thread):
    """Samples the 1-minute load average while the workload runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(2.0):
            self.samples.append(os.getloadavg()[0])


def measure(settings: Settings, args: argparse.Namespace) -> bool:
    import httpx

    workload = build_workload(args.requests, args.seed, args.count, args.walks, args.walk_pages)
    warmup = build_workload(args.warmup, args.seed + 1, args.count, walks=0)
    if args.match != "span":  # the same queries, Chinese matched as words only
        workload = [replace(r, params={**r.params, "match": args.match}) for r in workload]
    server, url = start_api(settings)
    try:
        headers = bench_token(settings, "compliance_officer")
        with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
            run_workload(client, warmup, None)
            print(f"load before: {_uptime()}")
            sampler = LoadSampler()
            sampler.start()
            timings = Timings()
            cpu = _cpu_seconds(server.pid)
            start = time.perf_counter()
            run_workload(client, workload, timings)
            seconds = time.perf_counter() - start
            cpu = _cpu_seconds(server.pid) - cpu
            sampler.stopped.set()
            load = sampler.samples or [os.getloadavg()[0]]
            print(f"load after:  {_uptime()}")
            print(
                f"1-min load during the run: min {min(load):.2f}, "
                f"median {statistics.median(load):.2f}, max {max(load):.2f}"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"latency through the HTTP API ({args.warmup} warm-up requests excluded):")
    met = report(timings, seconds)
    requests = sum(len(v) for v in timings.by_kind.values())
    # CPU time does not grow with the machine's load, unlike latency
    print(f"  API server CPU: {cpu / max(requests, 1) * 1000:.1f} ms per request")
    return met


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000, help="messages in the index")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true", help="drop and rebuild the index")
    parser.add_argument(
        "--requests", type=int, default=1000, help="measured requests, besides walks"
    )
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--walks", type=int, default=2, help="cursor walks")
    parser.add_argument("--walk-pages", type=int, default=50)
    parser.add_argument(
        "--match",
        choices=["span", "words"],
        default="span",
        help="Chinese matching of every request (words: the cost of spans, by difference)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also break the time down in-process (Elasticsearch vs Python)",
    )
    args = parser.parse_args()

    alias = alias_for(args.count, args.seed)
    settings = get_settings().model_copy(update={"es_index": alias, "s3_bucket": alias})
    print(machine_line())
    build_corpus(settings, args.count, args.seed, args.rebuild)
    _describe_corpus(settings, args)
    if args.profile:
        profile(settings, args)
    met = measure(settings, args)
    print("targets met" if met else "targets NOT met")
    sys.exit(0 if met else 1)


def _describe_corpus(settings: Settings, args: argparse.Namespace) -> None:
    client = bootstrap.search_index(settings).client
    stats = client.indices.stats(index=settings.es_index, metric="store,docs")["_all"]["primaries"]
    sizes = client.search(
        index=settings.es_index,
        size=0,
        aggs={
            "raw": {"sum": {"field": "size"}},
            "att": {"filter": {"term": {"has_attachment": True}}},
        },
    )["aggregations"]
    print(
        f"corpus: {stats['docs']['count']} generated messages (seed {args.seed}), "
        f"{sizes['raw']['value'] / 1e6:.0f} MB raw, {sizes['att']['doc_count']} with attachments; "
        f"index {settings.es_index}: {stats['store']['size_in_bytes'] / 1e6:.0f} MB"
    )


# -- where the time goes (in-process) ------------------------------------------------------------


class _TimedIndex:
    """Wraps the SearchIndex to time Elasticsearch: the round trip and the `took` it reports."""

    def __init__(self, index: Any, phases: dict[str, float]) -> None:
        self._index = index
        self._phases = phases

    def __getattr__(self, name: str) -> Any:
        return getattr(self._index, name)

    def search(self, body: Any) -> Any:
        start = time.perf_counter()
        response = self._index.search(body)
        self._phases["es round trip"] += time.perf_counter() - start
        self._phases["es took"] += response["took"] / 1000
        return response


def profile(settings: Settings, args: argparse.Namespace) -> None:
    """Run the workload's queries in-process and split each class's time into phases."""
    from archiver.search.query.parser import parse_query
    from archiver.search.service import SearchService
    from archiver.text.tokenizer import get_tokenizer

    workload = build_workload(args.requests, args.seed, args.count, walks=0)
    by_kind: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    service = SearchService(
        bootstrap.search_index(settings),
        get_tokenizer(settings.user_dict),
        settings.display_timezone,
    )
    for request in workload[: args.warmup]:
        service.search(**{"q": "", **request.params})  # type: ignore[arg-type]
    for request in workload:
        phases = by_kind.setdefault(
            request.kind,
            dict.fromkeys(
                [
                    "total",
                    "es round trip",
                    "es took",
                    "parse+translate",
                    "hits (highlight)",
                    "json",
                ],
                0.0,
            ),
        )
        counts[request.kind] = counts.get(request.kind, 0) + 1
        service.index = _TimedIndex(service.index, phases)
        translate, hit = service.translator.translate, service._hit

        def timed_translate(node: Any, _t: Any = translate, _p: dict[str, float] = phases) -> Any:
            start = time.perf_counter()
            try:
                return _t(node)
            finally:
                _p["parse+translate"] += time.perf_counter() - start

        def timed_hit(h: Any, terms: Any, _h: Any = hit, _p: dict[str, float] = phases) -> Any:
            start = time.perf_counter()
            try:
                return _h(h, terms)
            finally:
                _p["hits (highlight)"] += time.perf_counter() - start

        setattr(service.translator, "translate", timed_translate)  # noqa: B010 (timing wrapper)
        setattr(service, "_hit", timed_hit)  # noqa: B010
        start = time.perf_counter()
        q = str(request.params.get("q", ""))
        parse_query(q)
        phases["parse+translate"] += time.perf_counter() - start
        options = {k: v for k, v in request.params.items() if k != "q"}
        if "facets" in options:
            options["facets"] = True
        result = service.search(q, **options)
        json_start = time.perf_counter()
        result.model_dump_json(by_alias=True)
        phases["json"] += time.perf_counter() - json_start
        phases["total"] += time.perf_counter() - start
        service.index = service.index._index
        setattr(service.translator, "translate", translate)  # noqa: B010
        setattr(service, "_hit", hit)  # noqa: B010
    names = list(next(iter(by_kind.values())))
    print("in-process breakdown, mean ms per request (parse counted twice: once alone):")
    print("  " + f"{'class':<10}" + "".join(f"{n:>18}" for n in names))
    for kind, phases in sorted(by_kind.items()):
        print(
            "  "
            + f"{kind:<10}"
            + "".join(f"{phases[n] / counts[kind] * 1000:18.1f}" for n in names)
        )


if __name__ == "__main__":
    main()
