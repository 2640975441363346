"""Relevance floors on the labelled query set (tests/relevance/queries.json), real services."""

from __future__ import annotations

import pytest

from archiver.settings import Settings
from bench.cleanup import throwaway_settings
from bench.relevance import evaluate, load_queries

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def report(settings: Settings) -> dict:  # type: ignore[type-arg]
    return evaluate(throwaway_settings(settings, f"{settings.es_index}-relevance"))


def test_the_labelled_set_covers_every_kind_of_query() -> None:
    queries = load_queries()
    kinds = {q.kind for q in queries}
    assert len(queries) >= 50
    assert kinds == {"zh", "en", "mixed", "field", "boundary"}
    assert all(q.relevant for q in queries)


def test_mrr_and_recall_stay_above_the_floor(report: dict) -> None:  # type: ignore[type-arg]
    ours = report["jieba (mailvault)"]
    assert ours["all"].mrr >= 0.95, ours
    assert ours["all"].recall >= 0.95, ours
    for kind in ("en", "mixed", "field", "boundary"):
        assert ours[kind].mrr == 1.0, (kind, ours[kind])


def test_no_word_matches_across_a_word_boundary_unlike_the_standard_analyzer(
    report: dict,  # type: ignore[type-arg]
) -> None:
    assert report["jieba (mailvault)"]["boundary"].false_matches == 0.0
    assert report["standard analyzer"]["boundary"].false_matches >= 0.9
