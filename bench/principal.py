"""Cost of resolving the principal of a request (SignInService.principal) against the real S3
JSON store (SeaweedFS), with and without the in-process cache.

"uncached" is what every API request paid before the cache: read the user, list the custom
roles and read each (2 + roles S3 requests). "cached" runs for --seconds at the configured TTL,
so its figures include the re-reads each TTL brings. A bucket of its own, dropped after.

    python -m bench.principal [--roles 5] [--calls 300] [--seconds 6] [--ttl 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable

from argon2 import PasswordHasher

from archiver import bootstrap
from archiver.access.model import Permission, Role
from archiver.access.signin import PrincipalCache, SignInService
from archiver.access.users import UserDirectory
from archiver.settings import get_settings
from bench.cleanup import drop_bucket, throwaway_settings


class Counting:
    """Counts the S3 requests of the JSON store it wraps."""

    def __init__(self, store: object) -> None:
        self._store = store
        self.requests = 0

    def __getattr__(self, name: str) -> object:
        attribute = getattr(self._store, name)
        if not callable(attribute):
            return attribute

        def counted(*args: object, **kwargs: object) -> object:
            self.requests += 1
            return attribute(*args, **kwargs)

        return counted


def timed(call: Callable[[], object], *, calls: int = 0, seconds: float = 0) -> list[float]:
    """Milliseconds per call, for `calls` calls or for `seconds` seconds."""
    spent: list[float] = []
    deadline = time.monotonic() + seconds
    while len(spent) < calls or time.monotonic() < deadline:
        started = time.perf_counter()
        call()
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def report(label: str, spent: list[float], requests: int) -> None:
    ordered = sorted(spent)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    print(
        f"  {label:9} {len(spent):8} calls  mean {statistics.fmean(spent):8.3f} ms  "
        f"p50 {statistics.median(spent):8.3f} ms  p95 {p95:8.3f} ms  "
        f"max {ordered[-1]:7.2f} ms  S3 requests {requests} ({requests / len(spent):.2g}/call)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--roles", type=int, default=5, help="custom roles stored")
    parser.add_argument("--calls", type=int, default=300, help="uncached calls")
    parser.add_argument("--seconds", type=float, default=6.0, help="how long to run cached")
    parser.add_argument("--ttl", type=float, default=2.0, help="the cache's TTL, seconds")
    args = parser.parse_args()
    settings = throwaway_settings(
        get_settings(), f"mailvault-benchprincipal-{uuid.uuid4().hex[:8]}"
    )
    raw = bootstrap.raw_store(settings)
    raw.ensure_ready()
    try:
        store = Counting(bootstrap.json_store(settings))
        directory = UserDirectory(
            store,  # type: ignore[arg-type]
            bootstrap.sign_in_limits(settings),
            hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
        )
        for i in range(args.roles):
            directory.save_role(Role(name=f"custom{i}", permissions=frozenset({Permission.SEARCH})))
        roles = ["legal", *(f"custom{i}" for i in range(args.roles))]
        directory.add("erin", "a long enough passphrase", roles=roles, departments=["销售部"])
        print(
            f"principal(): S3 JSON store at {settings.s3_endpoint}, {args.roles} custom roles; "
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
            f"python {platform.python_version()}"
        )
        uncached = SignInService(directory, cache=PrincipalCache(0))
        uncached.principal("erin")  # connections warm
        store.requests = 0
        report(
            "uncached", timed(lambda: uncached.principal("erin"), calls=args.calls), store.requests
        )
        cached = SignInService(directory, cache=PrincipalCache(args.ttl))
        store.requests = 0
        spent = timed(lambda: cached.principal("erin"), seconds=args.seconds)
        report(f"ttl {args.ttl:g}s", spent, store.requests)
    finally:
        drop_bucket(raw.client, settings.s3_bucket)


if __name__ == "__main__":
    main()
