"""A pytest hook: a run in which the corpus tests were skipped says so next to its final count.

A skip is easy to miss among passes; a clone without ../shared/corpora then looks fully tested.
The corpus fixture (tests/conftest.py) skips with a reason starting with CORPUS_MISSING, which is
what the hook counts.
"""

from __future__ import annotations

import pytest

CORPUS_MISSING = "test corpora not found"


def corpus_skips(reporter: pytest.TerminalReporter) -> int:
    """Tests skipped because the corpora are absent (each test once, whatever its phase)."""
    skipped = {
        report.nodeid
        for report in reporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and CORPUS_MISSING in str(report.longrepr[2])
    }
    return len(skipped)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    count = corpus_skips(terminalreporter)
    if count:
        tests = "test" if count == 1 else "tests"
        terminalreporter.write_line(
            f"corpus tests skipped: ../shared/corpora not found ({count} {tests})", yellow=True
        )
