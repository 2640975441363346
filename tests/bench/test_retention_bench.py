"""bench/retention.py at a tiny size against the real services: it prints its figures, the
disposition run deletes exactly the disposable messages, and the throwaway archive is gone."""

from __future__ import annotations

import re

import pytest

from archiver import bootstrap
from archiver.settings import Settings
from bench import retention

pytestmark = pytest.mark.services


def test_the_benchmark_recomputes_and_disposes(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    retention.main(["--messages", "300", "--dispose", "50", "--templates", "100"])
    out = capsys.readouterr().out
    assert "machine:" in out and "load average at start" in out and "load average at end" in out
    assert re.search(r"seeded 300 messages at \d+ msg/s", out), out
    for n in ("#1", "#2"):
        assert re.search(rf"recompute {n} .*: 300 messages in .* = \d+ msg/s; changed \d+", out)
    assert len(re.findall(r"S3 requests: Object Lock \d+ \([\d.]+/message", out)) == 2, out
    assert re.search(r"deleted 50 in .* = \d+ msg/s; .* locked 0; failed 0", out), out
    assert re.search(r"purge \+ tombstone \d+ \([\d.]+/message\)", out), out
    assert "audit records written (dispose): 50" in out
    archive = re.search(r"archive: (\S+)", out)
    assert archive, out
    assert not bootstrap.raw_store(settings).client.bucket_exists(archive[1])
    # a wildcard matching nothing answers {} (exists() would answer True)
    assert not dict(bootstrap.search_index(settings).client.indices.get(index=f"{archive[1]}-*"))
