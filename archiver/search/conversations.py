"""Conversation threads from Message-ID / In-Reply-To / References, the subject as a fallback."""

from __future__ import annotations

from typing import Any

from archiver.errors import MessageNotFound
from archiver.ports import Document, SearchIndex

THREAD_FIELDS = [
    "message_id",
    "in_reply_to",
    "references",
    "thread_key",
    "subject",
    "subject_norm",
    "from",
    "date",
]
MAX_THREAD = 500
_ROUNDS = 4


def _ids(doc: Document) -> set[str]:
    values = {
        doc.get("message_id"),
        doc.get("in_reply_to"),
        doc.get("thread_key"),
        *(doc.get("references") or []),
    }
    return {v for v in values if v}


def _linked(ids: set[str]) -> dict[str, Any]:
    wanted = sorted(ids)
    return {
        "bool": {
            "should": [
                {"terms": {"message_id": wanted}},
                {"terms": {"thread_key": wanted}},
                {"terms": {"references": wanted}},
                {"terms": {"in_reply_to": wanted}},
            ],
            "minimum_should_match": 1,
        }
    }


def _search(index: SearchIndex, query: dict[str, Any]) -> dict[str, Document]:
    response = index.search({"query": query, "size": MAX_THREAD, "source_includes": THREAD_FIELDS})
    return {h["_id"]: {**h["_source"], "id": h["_id"]} for h in response["hits"]["hits"]}


def thread_of(index: SearchIndex, sha256: str) -> list[Document]:
    """Every archived message of the conversation, oldest first. A reply whose References are
    incomplete still joins: links are followed until no new Message-ID turns up."""
    doc = index.get(sha256)
    if doc is None:
        raise MessageNotFound(sha256)
    members = {sha256: {**doc, "id": sha256}}
    ids = _ids(doc)
    for _ in range(_ROUNDS):
        if not ids:
            break
        found = _search(index, _linked(ids))
        members.update(found)
        more = set().union(*(_ids(d) for d in found.values())) if found else set()
        if more <= ids:
            break
        ids |= more
    if len(members) == 1 and doc.get("subject_norm"):
        # no threading headers anywhere: fall back to the normalised subject
        members.update(_search(index, {"term": {"subject_norm": doc["subject_norm"]}}))
    ordered = sorted(members.values(), key=lambda d: d.get("date") or "")
    return [{k: d.get(k) for k in ["id", *THREAD_FIELDS]} for d in ordered]
