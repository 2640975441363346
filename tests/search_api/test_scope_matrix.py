"""The role x endpoint scope matrix against the real Elasticsearch and S3: for every principal
and every route that reads mail, exactly the mail in the principal's scope shows, in hits,
totals, every facet count, cursor walks, threads, message views, raw downloads, tags and tag
counts; a message out of scope answers 404 with the very body a nonexistent one gets; a missing
permission answers 403. The expected visible sets are computed here, from the department tags
this module assigns, never from the access code under test.

The archive is a throwaway of its own (generated mail, a crafted thread spanning both
departments, a journal copy split across them), so every count can be predicted exactly.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from archiver import bootstrap
from archiver.access.model import BUILTIN_ROLES, Permission, Principal, Role
from archiver.audit.log import AuditLog
from archiver.audit.records import AuditAction, AuditRecord
from archiver.errors import InvalidQuery
from archiver.models import Source
from archiver.pipeline.archiver import Incoming
from archiver.ports import Document, SearchIndex
from archiver.search.query.parser import parse_query
from archiver.search.scoped import ScopedIndex
from archiver.settings import Settings, get_settings
from archiver.tagging.model import department_tag
from bench.cleanup import throwaway_archive, throwaway_settings
from bench.mailgen import generate
from search_api import auth, deps
from search_api.app import create_app
from search_api.audit import get_audit_log
from tests.support.fakes import InMemoryAuditStore
from tests.support.principals import add_user, bearer

pytestmark = pytest.mark.services

DEPT_A, DEPT_B = "sales", "研发部"
GROUPS: dict[str, tuple[str, ...]] = {
    "a": (DEPT_A,),
    "b": (DEPT_B,),
    "ab": (DEPT_A, DEPT_B),
    "none": (),
}
CUSTOM_ROLE = "matrix-dept-tagger"
EXTRA_TAG = "project/matrix"  # a tag beside the department ones, so tag facets have more
PROBE_TAG = "project/matrix-probe"  # added and removed again by the tag change test
FIELDS = [
    "message_id",
    "in_reply_to",
    "references",
    "subject_norm",
    "tags",
    "departments",
    "from_domain",
    "has_attachment",
    "source_kinds",
    "date",
]
# facet name -> (document field, the number of buckets the service asks for)
TERM_FACETS = {
    "tags": ("tags", 50),
    "departments": ("departments", 50),
    "sender_domains": ("from_domain", 20),
    "has_attachment": ("has_attachment", 2),
    "sources": ("source_kinds", 5),
}
MISSING = hashlib.sha256(b"matrix: never archived").hexdigest()
# The audit log in memory: its chain and durability are tests/archiver/audit/'s business, and
# writing these ~900 requests' records to S3 would take longer than the matrix itself.
AUDIT_STORE = InMemoryAuditStore()
AUDIT = AuditLog(AUDIT_STORE)


def _thread_raw(n: int) -> bytes:
    """A five-message conversation of our own (generated mail has threads of 2-3)."""
    refs = [f"<matrix-thread-{i}@matrix.example>" for i in range(n)]
    threading = f"In-Reply-To: {refs[-1]}\r\nReferences: {' '.join(refs)}\r\n" if refs else ""
    return (
        f"From: member{n}@matrix.example\r\nTo: team@matrix.example\r\n"
        f"Subject: {'Re: ' if n else ''}矩阵 thread plan\r\n"
        f"Date: Mon, 2 Jan 2023 10:{n:02d}:00 +0800\r\n"
        f"Message-ID: <matrix-thread-{n}@matrix.example>\r\n{threading}"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"第{n}封: matrixthread 季度计划 reply {n}\r\n"
    ).encode()


# -- the archive --------------------------------------------------------------------------------


@dataclass
class Corpus:
    settings: Settings
    index: SearchIndex
    raws: dict[str, bytes]  # id -> the archived bytes
    docs: dict[str, Document]  # id -> FIELDS, as indexed (tags as assigned here)
    groups: dict[str, str]  # id -> a key of GROUPS
    components: dict[str, frozenset[str]]  # id -> the ids of its conversation
    thread: list[str]  # the crafted conversation, root first
    journal: tuple[str, str]  # a message (in A) and its journal copy (in B)
    vocabulary: list[str]  # query atoms that parse

    def in_departments(self, departments: Iterable[str]) -> frozenset[str]:
        wanted = set(departments)
        return frozenset(i for i, g in self.groups.items() if wanted & set(GROUPS[g]))

    @property
    def everything(self) -> frozenset[str]:
        return frozenset(self.groups)


def _components(docs: Mapping[str, Document]) -> dict[str, frozenset[str]]:
    """Conversations by union-find over Message-ID, In-Reply-To and References."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for doc_id, doc in docs.items():
        links = [doc.get("message_id"), doc.get("in_reply_to"), *(doc.get("references") or [])]
        for link in [f"msgid:{v}" for v in links if v]:
            parent[find(link)] = find(f"doc:{doc_id}")
    members: dict[str, set[str]] = {}
    for doc_id in docs:
        members.setdefault(find(f"doc:{doc_id}"), set()).add(doc_id)
    return {doc_id: frozenset(members[find(f"doc:{doc_id}")]) for doc_id in docs}


def _assign(ids: list[str], thread: list[str], journal: tuple[str, str]) -> dict[str, str]:
    groups = {thread_id: ("a", "b", "none", "ab", "a")[n] for n, thread_id in enumerate(thread)}
    groups[journal[0]], groups[journal[1]] = "a", "b"
    rest = [i for i in sorted(ids) if i not in groups]
    groups.update({doc_id: ("a", "b", "ab", "none")[n % 4] for n, doc_id in enumerate(rest)})
    return groups


@pytest.fixture(scope="module")
def corpus(settings: Settings, backends: None) -> Iterator[Corpus]:
    own = throwaway_settings(settings, f"{settings.es_index}-matrix")
    with throwaway_archive(own) as archiver:
        generated = list(generate(44, seed=11))
        raws = [m.raw for m in generated] + [_thread_raw(n) for n in range(5)]
        journal_raw = b"X-Journal-Copy: matrix\r\n" + generated[1].raw
        raws.append(journal_raw)
        source = Source(kind="import", detail="scope-matrix", received_at=datetime.now(UTC))
        outcomes = archiver.ingest_many([Incoming(r, source) for r in raws])
        assert {o.status for o in outcomes} == {"imported"}
        index = archiver.index
        index.refresh()
        by_id = {hashlib.sha256(r).hexdigest(): r for r in raws}
        docs = index.get_many(by_id, FIELDS)
        assert set(docs) == set(by_id)
        thread = [hashlib.sha256(_thread_raw(n)).hexdigest() for n in range(5)]
        journal = (
            hashlib.sha256(generated[1].raw).hexdigest(),
            hashlib.sha256(journal_raw).hexdigest(),
        )
        groups = _assign(list(docs), thread, journal)
        updates: dict[str, Document] = {}
        for n, (doc_id, group) in enumerate(sorted(groups.items())):
            kept = [t for t in docs[doc_id].get("tags") or [] if not t.startswith("department/")]
            tags = kept + [department_tag(d) for d in GROUPS[group]]
            if n % 3 == 0:
                tags.append(EXTRA_TAG)
            updates[doc_id] = {"tags": tags, "departments": list(GROUPS[group])}
        assert set(index.update_many(updates).values()) == {None}
        index.refresh()
        docs = index.get_many(by_id, FIELDS)
        assert {i: sorted(d["tags"]) for i, d in docs.items()} == {
            i: sorted(u["tags"]) for i, u in updates.items()
        }
        atoms = [
            *{k for m in generated for k in m.keywords},
            *{f"from:{m.from_addr}" for m in generated if m.from_addr},
            "has:attachment",
            "matrixthread",
            f"tag:{department_tag(DEPT_A)}",
            f"department:{DEPT_B}",
            f"tag:{EXTRA_TAG}",
            "矩阵",
        ]
        vocabulary = sorted({a for a in atoms if _parses(a)})
        yield Corpus(
            settings=own,
            index=index,
            raws=by_id,
            docs=docs,
            groups=groups,
            components=_components(docs),
            thread=thread,
            journal=journal,
            vocabulary=vocabulary,
        )


def _parses(query: str) -> bool:
    try:
        parse_query(query)
    except InvalidQuery:
        return False
    return True


# -- the principals ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Who:
    name: str
    headers: dict[str, str]
    visible: frozenset[str]  # what it may read, computed from the tags assigned above
    search: bool = False
    view: bool = False
    raw: bool = False
    tag: bool = False
    rules: bool = False  # manage_rules: the tag list, with the counts of what it may search


# name -> roles, departments, the expected abilities; visible: None = the whole archive
PRINCIPALS: dict[str, tuple[list[str], list[str], dict[str, bool], list[str] | None]] = {
    "compliance_officer": (
        ["compliance_officer"],
        [],
        {"search": True, "view": True, "raw": True, "tag": True},
        None,
    ),
    "legal": (["legal"], [], {"search": True, "view": True, "raw": True, "tag": True}, None),
    "auditor": (["auditor"], [DEPT_A], {}, []),
    "admin": (["admin"], [DEPT_A], {"rules": True}, []),
    "lead_a": (["department_lead"], [DEPT_A], {"search": True, "view": True}, [DEPT_A]),
    "lead_ab": (
        ["department_lead"],
        [DEPT_A, DEPT_B],
        {"search": True, "view": True},
        [DEPT_A, DEPT_B],
    ),
    "lead_none": (["department_lead"], [], {"search": True, "view": True}, []),
    "lead_a_auditor": (
        ["department_lead", "auditor"],
        [DEPT_A],
        {"search": True, "view": True},
        [DEPT_A],
    ),
    "lead_b_compliance": (
        ["department_lead", "compliance_officer"],
        [DEPT_B],
        {"search": True, "view": True, "raw": True, "tag": True},
        None,
    ),
    "custom_b": (
        [CUSTOM_ROLE],
        [DEPT_B],
        {"search": True, "view": True, "raw": True, "tag": True},
        [DEPT_B],
    ),
}
TOKEN_SEARCH_ONLY = "compliance_token_search_only"
NAMES = [*PRINCIPALS, TOKEN_SEARCH_ONLY]


@pytest.fixture(scope="module")
def principals(settings: Settings, corpus: Corpus) -> dict[str, Who]:
    # the session's users (the app signs in there), with the cheapest Argon2: these passwords
    # are never typed, and RFC 9106's cost would make eleven users half a minute
    settings = settings.model_copy(
        update={"argon2_time_cost": 1, "argon2_memory_kib": 8, "argon2_parallelism": 1}
    )
    directory = bootstrap.user_directory(settings)
    directory.save_role(
        Role(
            name=CUSTOM_ROLE,
            permissions=frozenset(
                {Permission.SEARCH, Permission.VIEW, Permission.VIEW_RAW, Permission.TAG}
            ),
            department_scoped=True,
        )
    )
    auth.sign_in_service().forget()  # the process's cached roles must include the new one
    found: dict[str, Who] = {}
    for name, (roles, departments, abilities, scope) in PRINCIPALS.items():
        visible = corpus.everything if scope is None else corpus.in_departments(scope)
        headers = bearer(settings, add_user(settings, roles, departments))
        found[name] = Who(name, headers, visible, **abilities)
    # a token limited to searching: its owner may view and download, the token may not
    owner = add_user(settings, ["compliance_officer"])
    principal = directory.principal(directory.get(owner))
    token = bootstrap.api_tokens(settings).create(
        principal, "search only", frozenset({Permission.SEARCH}), datetime.now(UTC) + timedelta(1)
    )
    found[TOKEN_SEARCH_ONLY] = Who(
        TOKEN_SEARCH_ONLY,
        {"Authorization": f"Bearer {token.secret}"},
        corpus.everything,
        search=True,
    )
    return found


@pytest.fixture(scope="module")
def client(corpus: Corpus) -> Iterator[TestClient]:
    app = create_app()
    own = corpus.settings
    # built once: the backends of this module's archive, not the session's
    raw_store, json_store, tagging = (
        bootstrap.raw_store(own),
        bootstrap.json_store(own),
        bootstrap.tagging(own),
    )
    app.dependency_overrides[get_settings] = lambda: own
    app.dependency_overrides[deps.get_index] = lambda: corpus.index
    app.dependency_overrides[deps.get_raw_store] = lambda: raw_store
    app.dependency_overrides[deps.get_json_store] = lambda: json_store
    app.dependency_overrides[deps.get_tagging] = lambda: tagging
    app.dependency_overrides[get_audit_log] = lambda: AUDIT
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(params=NAMES)
def who(request: pytest.FixtureRequest, principals: dict[str, Who]) -> Who:
    return principals[request.param]


# -- expectations -------------------------------------------------------------------------------


def expected_facets(corpus: Corpus, ids: Iterable[str]) -> dict[str, Counter[str]]:
    """Every facet's counts over `ids`, from the documents' fields."""
    zone = ZoneInfo(corpus.settings.display_timezone)
    counts: dict[str, Counter[str]] = {name: Counter() for name in [*TERM_FACETS, "dates"]}
    for doc_id in ids:
        doc = corpus.docs[doc_id]
        for name, (field, _) in TERM_FACETS.items():
            value = doc.get(field)
            values = value if isinstance(value, list) else [value]
            counts[name].update({str(v).lower() for v in values if v is not None})
        when = datetime.fromisoformat(doc["date"]).astimezone(zone)
        counts["dates"][when.strftime("%Y-%m")] += 1
    return counts


def assert_facets(facets: Mapping[str, Any], expected: Mapping[str, Counter[str]]) -> None:
    assert set(facets) == set(expected)
    for name, values in facets.items():
        got = {v["value"]: v["count"] for v in values}
        size = TERM_FACETS[name][1] if name in TERM_FACETS else len(expected[name])
        if len(expected[name]) <= size:
            assert got == dict(expected[name]), name
        else:  # the top buckets only: each must still count exactly
            assert len(got) == size, name
            assert all(count == expected[name][value] for value, count in got.items()), name


def thread_expected(corpus: Corpus, visible: frozenset[str], doc_id: str) -> set[str]:
    """The conversation of doc_id as a reader of `visible` sees it (the service falls back to
    the normalised subject when the links show no other message)."""
    members = set(corpus.components[doc_id] & visible)
    subject = corpus.docs[doc_id].get("subject_norm")
    if members == {doc_id} and subject:
        members |= {i for i in visible if corpus.docs[i].get("subject_norm") == subject}
    return members


def anonymised(response: Response, doc_id: str) -> str:
    return json.dumps(response.json(), sort_keys=True, ensure_ascii=False).replace(doc_id, "<id>")


def sample_ids(corpus: Corpus) -> list[str]:
    """One message of each group, the crafted thread and the journal pair."""
    firsts = {g: next(i for i in sorted(corpus.groups) if corpus.groups[i] == g) for g in GROUPS}
    return sorted({*firsts.values(), *corpus.thread, *corpus.journal})


def assert_hidden(
    client: TestClient, who: Who, path: str, doc_id: str, method: str = "GET", **kwargs: Any
) -> None:
    """`path` (with {id}) answers for doc_id exactly as it does for a nonexistent id."""
    hidden = client.request(method, path.format(id=doc_id), headers=who.headers, **kwargs)
    missing = client.request(method, path.format(id=MISSING), headers=who.headers, **kwargs)
    assert hidden.status_code == missing.status_code == 404, (who.name, path, hidden.text)
    assert anonymised(hidden, doc_id) == anonymised(missing, MISSING)
    assert hidden.headers.get("content-type") == missing.headers.get("content-type")
    # and the audit log tells its readers no more than the client was told
    hidden_record, missing_record = last_records(2)
    assert hidden_record.target == doc_id and missing_record.target == MISSING
    assert recorded(hidden_record, doc_id) == recorded(missing_record, MISSING)


def last_records(n: int) -> list[AuditRecord]:
    seqs = list(AUDIT_STORE.record_seqs())
    found = [AuditRecord.model_validate_json(AUDIT_STORE.records[s]) for s in seqs]
    return [r for r in found if r.action is not AuditAction.AUDIT_SEAL][-n:]


def recorded(record: AuditRecord, doc_id: str) -> str:
    kept = record.model_dump(
        mode="json", exclude={"seq", "time", "prev_hash", "hash", "request_id"}
    )
    return json.dumps(kept, sort_keys=True, ensure_ascii=False).replace(doc_id, "<id>")


def assert_forbidden(response: Response, who: Who) -> None:
    assert response.status_code == 403, (who.name, response.text)
    assert response.json()["error"] == "PermissionDenied"


# -- search -------------------------------------------------------------------------------------


def test_search_hits_totals_and_every_facet(client: TestClient, corpus: Corpus, who: Who) -> None:
    response = client.get(
        "/api/search", params={"size": 100, "facets": "true"}, headers=who.headers
    )
    if not who.search:
        assert_forbidden(response, who)
        return
    assert response.status_code == 200, response.text
    result = response.json()
    assert {h["id"] for h in result["hits"]} == who.visible
    assert result["total"] == len(who.visible)
    assert_facets(result["facets"], expected_facets(corpus, who.visible))


def test_a_query_for_the_other_department_finds_only_shared_mail(
    client: TestClient, corpus: Corpus, who: Who
) -> None:
    for query, department in [
        (f"tag:{department_tag(DEPT_B)}", DEPT_B),
        (f"department:{DEPT_A}", DEPT_A),
        ("matrixthread", None),
    ]:
        response = client.get(
            "/api/search", params={"q": query, "size": 100, "facets": "true"}, headers=who.headers
        )
        if not who.search:
            assert_forbidden(response, who)
            return
        matching = corpus.in_departments([department]) if department else frozenset(corpus.thread)
        expected = matching & who.visible
        result = response.json()
        assert {h["id"] for h in result["hits"]} == expected, (who.name, query)
        assert result["total"] == len(expected)
        assert_facets(result["facets"], expected_facets(corpus, expected))


def test_a_cursor_walk_covers_the_scope_once(client: TestClient, who: Who) -> None:
    params: dict[str, Any] = {"cursor": "*", "size": 7, "sort": "date"}
    seen: list[str] = []
    for _ in range(20):
        response = client.get("/api/search", params=params, headers=who.headers)
        if not who.search:
            assert_forbidden(response, who)
            return
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["total"] == len(who.visible)
        seen += [h["id"] for h in page["hits"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    else:
        pytest.fail("the walk did not end")
    assert len(seen) == len(set(seen))
    assert set(seen) == who.visible


def test_a_cursor_handed_on_is_walked_in_the_new_readers_scope(
    client: TestClient, principals: dict[str, Who]
) -> None:
    """A whole-archive reader's cursor, replayed by a department lead: the lead's scope
    applies, the cursor carries no reading rights."""
    officer, lead = principals["compliance_officer"], principals["lead_a"]
    first = client.get(
        "/api/search", params={"cursor": "*", "size": 5}, headers=officer.headers
    ).json()
    assert first["next_cursor"]
    rest = client.get(
        "/api/search", params={"cursor": first["next_cursor"], "size": 5}, headers=lead.headers
    )
    assert rest.status_code == 200
    assert rest.json()["total"] == len(lead.visible)
    assert {h["id"] for h in rest.json()["hits"]} <= lead.visible


def test_saved_searches_run_in_scope(client: TestClient, corpus: Corpus, who: Who) -> None:
    query = f"tag:{department_tag(DEPT_B)} OR matrixthread"
    saved = client.put(
        "/api/saved-searches", json={"name": "matrix", "query": query}, headers=who.headers
    )
    if not who.search:
        assert_forbidden(saved, who)
        assert_forbidden(client.get("/api/saved-searches", headers=who.headers), who)
        return
    assert saved.status_code == 200, saved.text
    stored = client.get("/api/saved-searches/matrix", headers=who.headers)
    assert stored.status_code == 200
    run = client.get(
        "/api/search", params={"q": stored.json()["query"], "size": 100}, headers=who.headers
    )
    expected = (corpus.in_departments([DEPT_B]) | set(corpus.thread)) & who.visible
    assert {h["id"] for h in run.json()["hits"]} == expected
    assert run.json()["total"] == len(expected)


# -- reading one message ------------------------------------------------------------------------


def test_message_view_and_its_related_copies(client: TestClient, corpus: Corpus, who: Who) -> None:
    for doc_id in sample_ids(corpus):
        response = client.get(f"/api/messages/{doc_id}", headers=who.headers)
        if not who.view:
            assert_forbidden(response, who)
        elif doc_id in who.visible:
            assert response.status_code == 200, response.text
            view = response.json()
            assert view["id"] == doc_id
            message_id = corpus.docs[doc_id]["message_id"]
            copies = {i for i in who.visible if corpus.docs[i]["message_id"] == message_id}
            assert set(view["related_ids"]) == copies - {doc_id}
        else:
            assert_hidden(client, who, "/api/messages/{id}", doc_id)


def test_raw_download(client: TestClient, corpus: Corpus, who: Who) -> None:
    for doc_id in sample_ids(corpus):
        response = client.get(f"/api/messages/{doc_id}/raw", headers=who.headers)
        if not who.raw:
            assert_forbidden(response, who)
        elif doc_id in who.visible:
            assert response.status_code == 200
            assert response.content == corpus.raws[doc_id]
        else:
            assert_hidden(client, who, "/api/messages/{id}/raw", doc_id)
    if who.raw:  # whole-archive readers reach the store for a missing id: still the same 404
        missing = client.get(f"/api/messages/{MISSING}/raw", headers=who.headers)
        assert missing.status_code == 404
        assert missing.json()["error"] == "MessageNotFound"


def test_threads_show_only_the_members_in_scope(
    client: TestClient, corpus: Corpus, who: Who
) -> None:
    for doc_id in sample_ids(corpus):
        response = client.get(f"/api/threads/{doc_id}", headers=who.headers)
        if not who.view:
            assert_forbidden(response, who)
        elif doc_id in who.visible:
            assert response.status_code == 200, response.text
            members = {m["id"] for m in response.json()["messages"]}
            assert members == thread_expected(corpus, who.visible, doc_id), (who.name, doc_id)
        else:
            assert_hidden(client, who, "/api/threads/{id}", doc_id)


def test_the_crafted_thread_spans_both_departments(corpus: Corpus) -> None:
    groups = [corpus.groups[i] for i in corpus.thread]
    assert {"a", "b", "none", "ab"} <= set(groups)
    assert corpus.components[corpus.thread[0]] == frozenset(corpus.thread)
    a_members = corpus.in_departments([DEPT_A]) & set(corpus.thread)
    assert 1 < len(a_members) < len(corpus.thread)


def test_message_tags(client: TestClient, corpus: Corpus, who: Who) -> None:
    for doc_id in sample_ids(corpus):
        response = client.get(f"/api/messages/{doc_id}/tags", headers=who.headers)
        if not who.view:
            assert_forbidden(response, who)
        elif doc_id in who.visible:
            assert response.status_code == 200, response.text
            assert sorted(response.json()["tags"]) == sorted(corpus.docs[doc_id]["tags"])
        else:
            assert_hidden(client, who, "/api/messages/{id}/tags", doc_id)


def test_tag_counts(client: TestClient, corpus: Corpus, who: Who) -> None:
    response = client.get("/api/tags", headers=who.headers)
    if not (who.search or who.rules):
        assert_forbidden(response, who)
        return
    assert response.status_code == 200, response.text
    body = response.json()
    searchable = who.visible if who.search else frozenset()
    expected = Counter(t for i in searchable for t in corpus.docs[i]["tags"])
    assert {u["path"]: u["messages"] for u in body["used"]} == dict(expected)
    namespaces = {n["path"]: n["messages"] for n in body["namespaces"]}
    in_department = [i for i in searchable if corpus.groups[i] != "none"]
    assert namespaces["department"] == len(in_department)
    assert namespaces["project"] == expected[EXTRA_TAG]


def test_tag_changes(client: TestClient, corpus: Corpus, who: Who) -> None:
    path = "/api/messages/{id}/tags"
    body = {"add": [PROBE_TAG]}
    for doc_id in corpus.thread[:4]:  # one message of each group
        added = client.post(path.format(id=doc_id), json=body, headers=who.headers)
        removed = client.delete(f"{path.format(id=doc_id)}/{PROBE_TAG}", headers=who.headers)
        if not who.tag:
            assert_forbidden(added, who)
            assert_forbidden(removed, who)
        elif doc_id in who.visible:
            assert added.status_code == 200, added.text
            assert PROBE_TAG in added.json()["tags"]
            assert removed.status_code == 200, removed.text
            assert PROBE_TAG not in removed.json()["tags"]
        else:
            assert_hidden(client, who, path, doc_id, "POST", json=body)
            assert_hidden(client, who, path + "/" + PROBE_TAG, doc_id, "DELETE")
    # whatever was answered, no message kept the probe, and none out of scope was touched
    after = corpus.index.get_many(corpus.groups, ["tags"])
    assert {i: sorted(d["tags"]) for i, d in after.items()} == {
        i: sorted(d["tags"]) for i, d in corpus.docs.items()
    }
    corpus.index.refresh()


# -- the property: scoped search == unscoped search filtered to the scope -----------------------


def _query(atoms: list[str]) -> st.SearchStrategy[str]:
    atom = st.sampled_from(atoms)
    joined = st.tuples(atom, st.sampled_from([" ", " OR ", " -", " AND NOT "]), atom).map(
        lambda t: "".join(t)
    )
    return st.one_of(st.just(""), atom, joined)


@pytest.fixture(scope="module")
def service_for(corpus: Corpus) -> Any:
    def make(index: SearchIndex) -> Any:
        return bootstrap.search_service(corpus.settings, index)

    return make


@given(data=st.data())
@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_scoped_search_is_the_unscoped_search_filtered(
    corpus: Corpus, service_for: Any, data: st.DataObject
) -> None:
    query = data.draw(_query(corpus.vocabulary), label="q")
    departments = data.draw(
        st.frozensets(st.sampled_from([DEPT_A, DEPT_B, "法务部"])), label="departments"
    )
    sort = data.draw(st.sampled_from(["relevance", "date", "date_asc"]), label="sort")
    size = data.draw(st.sampled_from([4, 100]), label="size")
    page = data.draw(st.integers(1, 3), label="page") if size < 100 else 1
    lead = Principal(
        username="prop", roles=(BUILTIN_ROLES["department_lead"],), departments=departments
    )
    visible = corpus.in_departments(departments)
    scoped = service_for(ScopedIndex(corpus.index, lead.scope())).search(
        query, sort=sort, size=size, page=page, facets=True
    )
    unscoped = service_for(corpus.index).search(query, sort=sort, size=100, facets=True)
    assert unscoped.total == len(unscoped.hits)  # the corpus fits one page: nothing cut off
    filtered = [h for h in unscoped.hits if h.id in visible]
    shown = filtered[(page - 1) * size : page * size]
    assert [h.id for h in scoped.hits] == [h.id for h in shown]
    assert [h.model_dump() for h in scoped.hits] == [h.model_dump() for h in shown]
    assert scoped.total == len(filtered)
    assert scoped.facets is not None
    assert_facets(
        {k: [v.model_dump() for v in vs] for k, vs in scoped.facets.items()},
        expected_facets(corpus, [h.id for h in filtered]),
    )


def test_without_credentials_every_route_is_401(client: TestClient, corpus: Corpus) -> None:
    doc_id = corpus.thread[0]
    requests = [
        ("GET", "/api/search", {}),
        ("GET", "/api/tags", {}),
        ("GET", "/api/saved-searches", {}),
        ("PUT", "/api/saved-searches", {"json": {"name": "x", "query": "x"}}),
        ("GET", f"/api/messages/{doc_id}", {}),
        ("GET", f"/api/messages/{doc_id}/raw", {}),
        ("GET", f"/api/threads/{doc_id}", {}),
        ("GET", f"/api/messages/{doc_id}/tags", {}),
        ("POST", f"/api/messages/{doc_id}/tags", {"json": {"add": [PROBE_TAG]}}),
        ("DELETE", f"/api/messages/{doc_id}/tags/{PROBE_TAG}", {}),
    ]
    for method, path, kwargs in requests:
        response = client.request(method, path, **kwargs)
        assert response.status_code == 401, (method, path, response.text)
        assert doc_id not in response.text
