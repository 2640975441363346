"""bench/exports.py at a tiny size against the real services: it prints every figure for each
format and size, every package verifies, and the throwaway archive and its exports are gone."""

from __future__ import annotations

import re

import pytest

from archiver import bootstrap
from archiver.settings import Settings
from bench import exports

pytestmark = pytest.mark.services


def test_the_benchmark_builds_downloads_and_verifies_each_format(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # parts of 100 kB: the 60 messages (~0.7 MB) need several, as a large archive would
    exports.main(["--count", "60", "--templates", "30", "--part-size", "100000"])
    out = capsys.readouterr().out
    assert "machine:" in out and "load average at start" in out and "load average at end" in out
    assert re.search(r"seeded 60 messages at \d+ msg/s", out), out
    for fmt in ("eml", "mbox"):
        for label, count in (("a tenth", 6), ("whole archive", 60)):
            block = out.split(f"{fmt}, {label} (exp-", 1)[1]
            assert re.search(rf"\): {count} messages\n  CPU split", block), out
            for group in ("builder", "elasticsearch", "seaweedfs", "machine busy"):
                assert re.search(rf"    {group} +[\d.]+ CPU-s", block), out
            assert re.search(
                rf"messages {count}, message MB [\d.]+, package MB [\d.]+ in (\d+) parts", block
            ), out
            assert re.search(
                r"build [\d.]+ s \(process [\d.]+ s\) = \d+ messages/s, [\d.]+ MB/s; builder"
                r" peak RSS [1-9]\d* MB, CPU [\d.]+ s",
                block,
            ), out
            assert re.search(
                rf"verify [\d.]+ s = \d+ messages/s: ok, \d+ files and {count} messages checked",
                block,
            ), out
        whole = re.search(rf"^{fmt}, whole archive +60 +[\d.]+ +[\d.]+ +(\d+) ", out, re.M)
        assert whole and int(whole[1]) > 1, out  # the table's row; several parts
        assert re.search(rf"builder peak RSS, {fmt}: 6 messages \d+ MB, 60 messages \d+ MB", out)
    archive = re.search(r"archive: (\S+)", out)
    assert archive, out
    client = bootstrap.raw_store(settings).client
    assert not client.bucket_exists(archive[1])
    assert not client.bucket_exists(f"{archive[1]}-exports")
    # a wildcard matching nothing answers {} (exists() would answer True)
    assert not dict(bootstrap.search_index(settings).client.indices.get(index=f"{archive[1]}-*"))
