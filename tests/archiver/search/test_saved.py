"""Saved searches round-trip through the JsonStore port (here in memory)."""

from __future__ import annotations

import pytest

from archiver.errors import InvalidQuery, SavedSearchNotFound
from archiver.search.saved import SavedSearches, SavedSearchIn
from tests.support.fakes import InMemoryJsonStore


def test_a_saved_search_round_trips_and_replacing_it_keeps_its_creation_time() -> None:
    searches = SavedSearches(InMemoryJsonStore())
    first = searches.save(SavedSearchIn(owner="alice", name="合同", query="from:zhang 合同"))

    again = searches.save(SavedSearchIn(owner="alice", name="合同", query="合同 AND 审批"))

    assert searches.get("alice", "合同") == again
    assert again.query == "合同 AND 审批" and again.created_at == first.created_at
    assert again.updated_at >= first.updated_at
    assert [s.name for s in searches.list("alice")] == ["合同"]


def test_owners_and_names_with_slashes_stay_apart() -> None:
    searches = SavedSearches(InMemoryJsonStore())
    searches.save(SavedSearchIn(owner="a/b", name="x", query="one"))
    searches.save(SavedSearchIn(owner="a", name="b/x", query="two"))

    assert [s.query for s in searches.list("a")] == ["two"]
    assert [s.query for s in searches.list("a/b")] == ["one"]
    assert searches.get("a", "b/x").query == "two"


def test_an_invalid_query_is_rejected_before_anything_is_stored() -> None:
    store = InMemoryJsonStore()
    searches = SavedSearches(store)

    with pytest.raises(InvalidQuery):
        searches.save(SavedSearchIn(owner="alice", name="broken", query="(合同"))

    assert store.list_keys("") == []


def test_deleting_removes_the_search_and_a_missing_one_is_a_typed_error() -> None:
    searches = SavedSearches(InMemoryJsonStore())
    searches.save(SavedSearchIn(owner="alice", name="weekly", query="合同"))

    searches.delete("alice", "weekly")

    assert searches.list("alice") == []
    with pytest.raises(SavedSearchNotFound, match="weekly"):
        searches.get("alice", "weekly")
    with pytest.raises(SavedSearchNotFound):
        searches.delete("alice", "weekly")
