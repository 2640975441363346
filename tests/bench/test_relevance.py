"""Relevance floors on the labelled query set (tests/relevance/queries.json), real services."""

from __future__ import annotations

import pytest

from archiver.settings import Settings
from bench.cleanup import throwaway_settings
from bench.relevance import corpus, evaluate, load_queries, real_corpus, real_queries
from tests.support import spam_assassin

pytestmark = pytest.mark.services
OURS = "mailvault"
WORDS = "mailvault, match=words"
STANDARD = ("standard, match AND", "standard, phrase")


@pytest.fixture(scope="module")
def report(settings: Settings) -> dict:  # type: ignore[type-arg]
    own = throwaway_settings(settings, f"{settings.es_index}-relevance")
    return evaluate(own, corpus(), load_queries())


def test_the_labelled_set_covers_every_kind_of_query() -> None:
    queries = load_queries()
    kinds = {q.kind for q in queries}
    assert len(queries) >= 150
    assert kinds == {"zh", "en", "mixed", "field", "boundary", "span", "subject", "script"}
    assert all(q.relevant for q in queries)
    spans = [q for q in queries if q.kind == "span"]
    assert len(spans) >= 50 and all(4 <= len(q.query) <= 8 for q in spans)


def test_mrr_and_recall_stay_above_the_floor(report: dict) -> None:  # type: ignore[type-arg]
    ours = report[OURS]
    assert ours["all"].mrr >= 0.95, ours
    assert ours["all"].recall >= 0.95, ours
    for kind in ("en", "mixed", "field", "boundary", "script"):
        assert ours[kind].mrr == 1.0, (kind, ours[kind])
    assert ours["script"].recall == 1.0, ours["script"]


def test_spans_and_known_subjects_meet_the_targets_and_beat_the_standard_analyzer(
    report: dict,  # type: ignore[type-arg]
) -> None:
    ours = report[OURS]
    assert ours["subject"].mrr >= 0.97, ours["subject"]
    assert ours["span"].recall >= 0.99, ours["span"]
    for system in STANDARD:
        assert ours["subject"].mrr > report[system]["subject"].mrr, system
        assert ours["span"].recall >= report[system]["span"].recall, system


def test_boundary_matches_are_found_below_word_matches_or_not_at_all_in_word_mode(
    report: dict,  # type: ignore[type-arg]
) -> None:
    assert report[OURS]["boundary"].ordered == 1.0
    assert report[WORDS]["boundary"].false_matches == 0.0
    assert report["standard, phrase"]["boundary"].false_matches >= 0.9


@pytest.fixture(scope="module")
def real_report(settings: Settings) -> dict:  # type: ignore[type-arg]
    spam_assassin.corpus_data()  # skips, saying why, when the corpus cannot be fetched
    messages = real_corpus()
    own = throwaway_settings(settings, f"{settings.es_index}-relevance-real")
    return evaluate(own, messages, real_queries(messages))


def test_real_mail_known_subjects_and_spans_meet_the_targets(
    real_report: dict,  # type: ignore[type-arg]
) -> None:
    ours = real_report[OURS]
    assert ours["subject"].queries >= 250 and ours["span"].queries >= 100
    assert ours["subject"].mrr >= 0.97, ours["subject"]
    assert ours["span"].recall >= 0.99, ours["span"]
    for system in STANDARD:
        assert ours["subject"].mrr > real_report[system]["subject"].mrr, system
        assert ours["span"].recall >= real_report[system]["span"].recall, system
