"""The run's summary says when corpus tests were skipped (tests/support/corpus_summary.py).

A tiny test directory, run by a real pytest (pytester, in process) with the hook as its
conftest."""

from __future__ import annotations

import pytest

from tests.support.corpus_summary import CORPUS_MISSING

pytest_plugins = ["pytester"]

TINY_TESTS = f"""
import pytest

@pytest.fixture(scope="session")
def corpus():
    pytest.skip("{CORPUS_MISSING} at /nowhere/shared/corpora")

def test_reads_the_corpus(corpus):
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_reads_it_twice(corpus, n):
    pass

def test_skipped_for_another_reason():
    pytest.skip("not today")

def test_plain():
    pass
"""


def run_tiny(pytester: pytest.Pytester, tests: str) -> list[str]:
    pytester.makeconftest(
        "from tests.support.corpus_summary import pytest_terminal_summary  # noqa: F401\n"
    )
    pytester.makepyfile(test_tiny=tests)
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=4)
    return result.outlines


def test_a_run_without_the_corpora_says_how_many_corpus_tests_it_skipped(
    pytester: pytest.Pytester,
) -> None:
    lines = run_tiny(pytester, TINY_TESTS)

    # right above the final count, and only the corpus skips are counted
    assert lines[-2] == "corpus tests skipped: ../shared/corpora not found (3 tests)"


def test_a_run_without_corpus_skips_prints_no_such_line(pytester: pytest.Pytester) -> None:
    lines = run_tiny(pytester, TINY_TESTS.replace(CORPUS_MISSING, "something else missing"))

    assert not any("corpus tests skipped" in line for line in lines)
