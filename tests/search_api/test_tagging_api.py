"""The tagging API against the real backends: rules with clear 4xx errors, preview/apply, manual
tags with provenance, the directory, tag definitions."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from archiver.models import Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.settings import Settings
from search_api.app import create_app
from tests.support.principals import add_user, as_role, bearer

pytestmark = pytest.mark.services


def _raw(n: int, subject: str, sender: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: ops@tagapi.example\r\nSubject: {subject}\r\n"
        f"Message-ID: <tagapi-{n}@tagapi.example>\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "\r\n请审核本季度的采购合同。\r\n"
    ).encode()


RAWS = [
    _raw(1, "TAGAPI 合同审批", "a@buyer.tagapi.example"),
    _raw(2, "TAGAPI 合同归档", "b@buyer.tagapi.example"),
    _raw(3, "TAGAPI 周报", "c@sales.tagapi.example"),
]
IDS = [hashlib.sha256(r).hexdigest() for r in RAWS]


@pytest.fixture(scope="module")
def client(archiver: Archiver, settings: Settings) -> Iterator[TestClient]:
    source = Source(kind="import", detail="tagging-api", received_at=datetime.now(UTC))
    outcomes = archiver.ingest_many([Incoming(r, source) for r in RAWS])
    assert {o.status for o in outcomes} <= {"imported", "duplicate"}
    archiver.index.refresh()
    # an administrator who may also read mail: rule previews show their samples
    headers = as_role(settings, "admin", "compliance_officer")
    with TestClient(create_app(), headers=headers) as test_client:
        yield test_client


def _rule(when: dict[str, object]) -> dict[str, object]:
    return {"when": when, "actions": {"add_tags": ["project/采购"]}}


def test_invalid_rules_are_clear_422s(client: TestClient) -> None:
    bad_regex = client.put(
        "/api/rules/contracts",
        json=_rule({"field": "subject", "op": "regex", "value": "合同(审批"}),
    )
    assert bad_regex.status_code == 422
    assert bad_regex.json()["error"] == "InvalidTagging"
    assert bad_regex.json()["message"].startswith(
        "invalid rule at when.value: invalid regex '合同(审批': missing )"
    )
    unknown = client.put(
        "/api/rules/contracts", json=_rule({"field": "sender_dept", "op": "equals", "value": "x"})
    )
    assert unknown.status_code == 422
    assert "unknown field 'sender_dept'" in unknown.json()["message"]
    assert client.get("/api/rules/contracts").status_code == 404  # nothing was saved


def test_rule_saved_previewed_applied_and_versioned(client: TestClient) -> None:
    when = {
        "all": [
            {"field": "subject", "op": "contains", "value": "TAGAPI"},
            {"field": "words", "op": "contains", "value": "合同"},
            {"field": "sender_domain", "op": "glob", "value": "buyer.*"},
        ]
    }
    draft = client.post("/api/rules/preview", json={"name": "contracts", **_rule(when)})
    assert draft.status_code == 200 and draft.json()["gained"] == {"project/采购": 2}
    saved = client.put("/api/rules/contracts", json=_rule(when))
    assert saved.status_code == 200 and saved.json()["version"] == 1
    preview = client.post("/api/rules/contracts/preview").json()
    assert preview["gained"] == {"project/采购": 2}
    assert {s["id"] for s in preview["samples"]["gained"]["project/采购"]} == set(IDS[:2])
    applied = client.post("/api/rules/contracts/apply", params={"wait": "true"}).json()
    assert (applied["gained"], applied["changed"], applied["status"]) == (
        preview["gained"],
        preview["changed"],
        "done",
    )
    assert client.get("/api/rules/contracts/apply").json()["status"] == "done"
    tags = client.get(f"/api/messages/{IDS[0]}/tags").json()
    assert tags["tags"] == ["project/采购"]
    assert tags["events"][0]["by"] == {
        "kind": "rule",
        "rule": "contracts",
        "version": 1,
        "user": None,
    }
    assert client.delete("/api/rules/contracts").json()["version"] == 2
    assert client.get("/api/rules/contracts/versions").json()[1]["rule"] is None
    released = client.post("/api/rules/contracts/apply", params={"wait": "true"}).json()
    assert released["lost"] == {"project/采购": 2}


def test_manual_tags_with_provenance(client: TestClient, settings: Settings) -> None:
    alice, bob = add_user(settings, ["legal"]), add_user(settings, ["compliance_officer"])
    as_alice = TestClient(client.app, headers=bearer(settings, alice))
    as_bob = TestClient(client.app, headers=bearer(settings, bob))
    response = as_alice.post(f"/api/messages/{IDS[2]}/tags", json={"add": ["urgency/high"]})
    assert response.status_code == 200
    assert "urgency/high" in response.json()["tags"]
    removed = as_bob.delete(f"/api/messages/{IDS[2]}/tags/urgency/high")
    assert "urgency/high" not in removed.json()["tags"]
    events = client.get(f"/api/messages/{IDS[2]}/tags").json()["events"]
    assert [(e["tag"], e["action"], e["by"]["user"]) for e in events[-2:]] == [
        ("urgency/high", "add", alice),
        ("urgency/high", "remove", bob),
    ]
    # who tags is the signed-in user: a name in the body is refused, not believed
    forged = as_alice.post(f"/api/messages/{IDS[2]}/tags", json={"add": ["x"], "user": bob})
    assert forged.status_code == 422
    bad = as_alice.post(f"/api/messages/{IDS[2]}/tags", json={"add": ["a//b"]})
    assert bad.status_code == 422 and "empty path segment" in bad.json()["message"]
    missing = client.get(f"/api/messages/{'0' * 64}/tags")
    assert missing.status_code == 404


def test_directory_import_and_apply(client: TestClient) -> None:
    body = "address,name,department\nc@sales.tagapi.example,Chen,销售部\n"
    bad = client.post("/api/directory/import", content=b"name\nx\n")
    assert bad.status_code == 422 and "no address column" in bad.json()["message"]
    result = client.post(
        "/api/directory/import",
        content=body.encode(),
        headers={"content-type": "text/csv"},
        params={"scope": "sender", "apply": "true"},
    )
    assert result.status_code == 200
    assert result.json()["applied"]["gained"]["department/销售部"] >= 1
    assert client.get(f"/api/messages/{IDS[2]}/tags").json()["departments"] == ["销售部"]
    person = client.get("/api/directory/people/C@sales.tagapi.example").json()
    assert person["department"] == "销售部"


def test_tag_definitions_and_usage(client: TestClient, archiver: Archiver) -> None:
    assert client.put("/api/tags/project/凤凰", json={"description": "新品"}).status_code == 200
    archiver.index.refresh()  # usage counts come from a search (near real time)
    listing = client.get("/api/tags").json()
    assert [n["path"] for n in listing["namespaces"]] == ["project", "department", "urgency"]
    assert {"path": "project/凤凰", "description": "新品"}.items() <= listing["defined"][0].items()
    assert any(u["path"] == "department/销售部" for u in listing["used"])
    assert client.delete("/api/tags/project/凤凰").status_code == 204
    assert client.delete("/api/tags/project/凤凰").status_code == 404


def test_preview_shows_the_messages_a_rule_timed_out_on(
    client: TestClient, archiver: Archiver
) -> None:
    raw = _raw(4, "a" * 40 + "!", "d@runaway.tagapi.example")
    source = Source(kind="import", detail="tagging-api", received_at=datetime.now(UTC))
    assert archiver.ingest_many([Incoming(raw, source)])[0].status in {"imported", "duplicate"}
    runaway = {"name": "runaway", **_rule({"field": "subject", "op": "regex", "value": "(a|aa)+$"})}
    preview = client.post("/api/rules/preview", json=runaway)
    assert preview.status_code == 200
    sha = hashlib.sha256(raw).hexdigest()
    # (the session's other mail may end in "a" and match, quickly)
    [timed_out] = [t for t in preview.json()["timeouts"] if t["id"] == sha]
    assert preview.json()["timed_out"] >= 1
    assert {k: timed_out[k] for k in ("id", "rule", "version")} == {
        "id": sha,
        "rule": "runaway",
        "version": None,
    }
    assert timed_out["error"].startswith("tagging rule 'runaway' (draft) timed out after ")
