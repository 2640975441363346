"""bench/principal.py at a tiny size against the real S3: it runs, cleans up, and counts the
requests it says it does (2 + custom roles per uncached call)."""

from __future__ import annotations

import re
import sys

import pytest

from archiver import bootstrap
from archiver.settings import Settings
from bench import principal

pytestmark = pytest.mark.services


def test_the_benchmark_counts_the_requests_of_an_uncached_principal(
    settings: Settings,
    backends: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["principal", "--roles", "3", "--calls", "5", "--seconds", "0.2", "--ttl", "60"]
    monkeypatch.setattr(sys, "argv", argv)
    principal.main()
    out = capsys.readouterr().out
    assert "machine:" in out
    uncached = re.search(r"uncached +5 calls .* S3 requests 25 \(5/call\)", out)
    assert uncached, out
    # within one TTL of 60 s: one read of the user (1) and of the roles (1 list + 3 reads)
    assert re.search(r"ttl 60s .* S3 requests 5 ", out), out
    buckets = [b.name for b in bootstrap.raw_store(settings).client.list_buckets()]
    assert not [b for b in buckets if b.startswith("mailvault-benchprincipal-")]
