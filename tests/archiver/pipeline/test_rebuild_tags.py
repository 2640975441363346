"""Merging the tag events a document gained on the old index into its copy on the new one
(`mailvault reindex`): whatever was added on either side, the merged document's tags are those
of all its events in time order, and nothing is written when the copy lacks nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from archiver.pipeline.rebuild import merged_tags
from archiver.ports import VERSION_TOKEN
from archiver.tagging.model import TagState

START = datetime(2026, 1, 1, tzinfo=UTC)
TAGS = ("legal/hold", "department/技术部", "project/凤凰")


def event(n: int, tag: str, action: str, kind: str) -> dict[str, Any]:
    by = {"kind": kind, "user": "alice"} if kind == "manual" else {"kind": kind, "rule": "r"}
    at = (START + timedelta(minutes=n)).isoformat()
    return {"tag": tag, "action": action, "by": by, "at": at}


events = st.lists(
    st.tuples(
        st.sampled_from(TAGS),
        st.sampled_from(("add", "remove")),
        st.sampled_from(("manual", "rule")),
    ),
    max_size=12,
)


def doc_of(evs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"tags": sorted(TagState.of({"tag_events": evs}).effective()), "tag_events": evs}


@given(events, st.data())
def test_the_merge_is_the_fold_of_every_event_in_time_order(
    drawn: list[tuple[str, str, str]], data: st.DataObject
) -> None:
    timeline = [event(n, *e) for n, e in enumerate(drawn)]
    copied = data.draw(st.integers(0, len(timeline)))  # events both sides have
    sides = data.draw(st.lists(st.booleans(), min_size=len(timeline), max_size=len(timeline)))
    later = list(zip(timeline[copied:], sides[copied:], strict=True))
    old_events = timeline[:copied] + [e for e, on_old in later if on_old]
    new_events = timeline[:copied] + [e for e, on_old in later if not on_old]
    new = {**doc_of(new_events), VERSION_TOKEN: "7:1"}

    update = merged_tags(doc_of(old_events), new)

    if old_events == timeline[:copied]:
        assert update is None  # the old side added nothing
        return
    assert update is not None
    assert update["tag_events"] == timeline
    assert update["tags"] == doc_of(timeline)["tags"]
    assert update[VERSION_TOKEN] == "7:1"  # written only if the live copy did not change


def test_a_purged_document_gets_nothing() -> None:
    assert merged_tags(doc_of([event(0, "legal/hold", "add", "manual")]), None) is None


def test_topics_the_copy_lacks_are_carried() -> None:
    assert merged_tags({"topics": ["预算"]}, {"topics": []}) == {"topics": ["预算"]}
    assert merged_tags({"topics": ["预算"]}, {"topics": ["合同"]}) is None
