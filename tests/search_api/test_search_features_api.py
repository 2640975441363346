"""Query errors, cursors, threads and saved searches through the HTTP API (real ES, S3)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from archiver.search.service import SearchService
from archiver.settings import Settings
from search_api.app import create_app
from tests.archiver.search.test_features import ID, MARK
from tests.archiver.search.test_features import service as service
from tests.support.principals import as_role

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def client(service: SearchService, settings: Settings) -> Iterator[TestClient]:
    headers = as_role(settings, "compliance_officer")
    with TestClient(create_app(), headers=headers) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("q", "position", "text"),
    [
        ("from:", 5, "expected a value after 'from:'"),
        ("合同 to: x", 6, "expected a value after 'to:'"),
        ("larger:huge", 0, "expected a size"),
    ],
)
def test_syntax_error_is_400_with_position(
    client: TestClient, q: str, position: int, text: str
) -> None:
    response = client.get("/api/search", params={"q": q})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "InvalidQuery" and body["position"] == position
    assert text in body["message"]


@pytest.mark.parametrize(
    ("q", "note"),
    [
        ('"open', 'closing "'),
        ("a OR (b", "expected ')'"),
        ("colour:red", "unknown field 'colour'"),
        ("Re: 有些话不吐不快)", "unknown field 'Re'"),
    ],
)
def test_text_that_is_not_syntax_is_searched_as_text(client: TestClient, q: str, note: str) -> None:
    response = client.get("/api/search", params={"q": q})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["interpreted_as"] == "text" and note in body["query_note"]
    valid = client.get("/api/search", params={"q": MARK}).json()
    assert valid["interpreted_as"] == "query" and valid["query_note"] is None


def test_word_only_mode_is_a_parameter(client: TestClient) -> None:
    assert client.get("/api/search", params={"q": MARK, "match": "words"}).status_code == 200
    assert client.get("/api/search", params={"q": MARK, "match": "chars"}).status_code == 422


def test_cursor_walk_over_http(client: TestClient) -> None:
    params: dict[str, str | int] = {"q": MARK, "size": 4, "cursor": "*"}
    seen: list[str] = []
    while True:
        body = client.get("/api/search", params=params).json()
        seen += [h["id"] for h in body["hits"]]
        if not body["next_cursor"]:
            break
        params = {"cursor": body["next_cursor"]}
    assert sorted(seen) == sorted(ID.values())
    bad = client.get("/api/search", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and "invalid cursor" in bad.json()["message"]


def test_deep_page_beyond_the_window_points_to_the_cursor(client: TestClient) -> None:
    response = client.get("/api/search", params={"q": MARK, "page": 200, "size": 100})
    assert response.status_code == 400
    assert "cursor=*" in response.json()["message"]


def test_facets_and_thread_endpoints(client: TestClient) -> None:
    body = client.get("/api/search", params={"q": MARK, "facets": "true", "size": 1}).json()
    assert {"tags", "departments", "sender_domains", "dates", "has_attachment", "sources"} <= set(
        body["facets"]
    )
    thread = client.get(f"/api/threads/{ID['m2']}").json()["messages"]
    assert [m["id"] for m in thread] == [ID["m1"], ID["m2"], ID["m3"]]
    assert client.get(f"/api/threads/{'a' * 64}").status_code == 404


def test_saved_searches_round_trip(client: TestClient, settings: Settings) -> None:
    owner = client.get("/api/session").json()["username"]
    saved = client.put(
        "/api/saved-searches", json={"name": "合同 审批", "query": "合同 from:*@example.cn"}
    )
    assert saved.status_code == 200
    assert saved.json()["query"] == "合同 from:*@example.cn"
    assert saved.json()["owner"] == owner  # always the caller: no one saves in another's name
    invalid = client.put("/api/saved-searches", json={"name": "broken", "query": "from:"})
    assert invalid.status_code == 400 and invalid.json()["position"] == 5
    listed = client.get("/api/saved-searches").json()
    assert [s["name"] for s in listed] == ["合同 审批"]
    one = client.get("/api/saved-searches/合同 审批")
    assert one.status_code == 200 and one.json()["owner"] == owner
    other = TestClient(client.app, headers=as_role(settings, "compliance_officer"))
    assert other.get("/api/saved-searches").json() == []  # each sees only their own
    assert other.get("/api/saved-searches/合同 审批").status_code == 404
    assert client.delete("/api/saved-searches/合同 审批").status_code == 204
    assert client.get("/api/saved-searches/合同 审批").status_code == 404
    assert client.get("/api/saved-searches").json() == []
