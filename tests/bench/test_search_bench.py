"""The search benchmark's workload: reproducible, and every query is valid in the query language."""

from __future__ import annotations

from archiver.search.query.parser import parse_query
from archiver.search.query.to_es import Translator
from archiver.text.tokenizer import get_tokenizer
from bench.search import MIX, alias_for, build_workload


def test_the_same_arguments_give_the_same_workload() -> None:
    assert build_workload(300, seed=1, count=100_000) == build_workload(300, seed=1, count=100_000)
    assert build_workload(300, seed=1, count=100_000) != build_workload(300, seed=2, count=100_000)


def test_every_class_is_present_and_walks_are_added() -> None:
    workload = build_workload(500, seed=1, count=100_000, walks=2, walk_pages=50)
    assert len(workload) == 502
    assert {r.kind for r in workload} == {*MIX, "cursor"}
    walks = [r for r in workload if r.walk]
    assert [(r.kind, r.walk, r.params["cursor"]) for r in walks] == [("cursor", 50, "*")] * 2


def test_every_query_parses_and_translates() -> None:
    translator = Translator(get_tokenizer(None))
    for request in build_workload(500, seed=1, count=100_000, walks=2):
        translation = translator.translate(parse_query(str(request.params.get("q", ""))))
        assert translation.query, request


def test_deep_pages_stay_inside_the_result_window() -> None:
    deep = [r for r in build_workload(500, seed=1, count=100_000) if r.kind == "deep_page"]
    assert deep
    assert all(int(r.params["page"]) * int(r.params["size"]) <= 10_000 for r in deep)


def test_the_index_alias_names_count_and_seed() -> None:
    assert alias_for(100_000, 7) == "mailvault-benchsearch-100k-s7"
    assert alias_for(2500, 1) == "mailvault-benchsearch-2500-s1"
