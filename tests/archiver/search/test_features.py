"""Query language, sorting, cursor walks, facets and threads on a small known corpus (real ES)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from archiver.models import Envelope, Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.search.conversations import thread_of
from archiver.search.service import SearchService
from archiver.text.tokenizer import get_tokenizer

pytestmark = pytest.mark.services
MARK = "featuremarker"  # in every message here, to search among them only


def _raw(headers: dict[str, str], body: str, attachment: tuple[str, bytes] | None = None) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    text = f"{body}\r\n{MARK}\r\n"
    if attachment is None:
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text).encode()
    name, data = attachment
    return (
        head + 'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text + "--b1\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; "
        f"filename*=UTF-8''{name}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + __import__("base64").b64encode(data).decode()
        + "\r\n--b1--\r\n"
    ).encode()


MESSAGES = {
    "m1": _raw(
        {
            "Message-ID": "<m1@feature.test>",
            "From": "=?utf-8?B?5byg5LiJ?= <zhang.san@example.cn>",
            "To": "li.si@corp.example",
            "Cc": "wang@example.com",
            "Subject": "=?utf-8?B?5YWz5LqO5ZCI5ZCM5a6h5om555qE6YCa55+l?=",  # 关于合同审批的通知
            "Date": "Mon, 15 Jan 2024 10:00:00 +0800",
        },
        "请审批附件中的合同草案。",
        ("%E5%90%88%E5%90%8C%E8%8D%89%E6%A1%88.txt", b"draft"),
    ),
    "m2": _raw(
        {
            "Message-ID": "<m2@feature.test>",
            "In-Reply-To": "<m1@feature.test>",
            "References": "<m1@feature.test>",
            "From": "li.si@corp.example",
            "To": "zhang.san@example.cn",
            "Subject": "Re: =?utf-8?B?5YWz5LqO5ZCI5ZCM5a6h5om555qE6YCa55+l?=",
            "Date": "Thu, 1 Feb 2024 09:00:00 +0800",
        },
        "已审批。",
    ),
    "m3": _raw(
        {
            "Message-ID": "<m3@feature.test>",
            "In-Reply-To": "<m2@feature.test>",
            "From": "=?utf-8?B?5byg5LiJ?= <zhang.san@example.cn>",
            "To": "li.si@corp.example",
            "Subject": "=?utf-8?B?5Zue5aSN77ya5YWz5LqO5ZCI5ZCM5a6h5om555qE6YCa55+l?=",
            "Date": "Fri, 2 Feb 2024 09:00:00 +0800",
        },
        "收到，谢谢。",
    ),
    "m4": _raw(
        {
            "Message-ID": "<m4@feature.test>",
            "From": "Bob <bob@other.org>",
            "To": "team@example.com",
            "Subject": "Quarterly report",
            "Date": "Mon, 1 Apr 2024 01:00:00 +0800",
        },  # still March in UTC
        "The quarterly report is attached.\r\n" + "padding line\r\n" * 9000,
    ),
    "m5": _raw(
        {
            "Message-ID": "<m5@feature.test>",
            "From": "carol@other.org",
            "To": "bob@other.org",
            "Subject": "RE: Quarterly  report",
            "Date": "Tue, 2 Apr 2024 10:00:00 +0800",
        },
        "Thanks for the report.",
    ),
    "m6": _raw(
        {
            "Message-ID": "<m6@feature.test>",
            "From": "ceo@example.com",
            "To": "board@example.com",
            "Subject": "Board notes",
            "Date": "Wed, 3 Apr 2024 10:00:00 +0800",
        },
        "Notes from the board meeting.",
    ),
}
ID = {name: hashlib.sha256(raw).hexdigest() for name, raw in MESSAGES.items()}
NAME = {sha: name for name, sha in ID.items()}


@pytest.fixture(scope="module")
def service(archiver: Archiver) -> SearchService:
    now = datetime.now(UTC)
    items = [
        Incoming(raw, Source(kind="import", detail=name, received_at=now))
        for name, raw in MESSAGES.items()
        if name != "m6"
    ]
    journal = Envelope(
        mail_from="ceo@example.com", rcpt_to=["board@example.com", "hidden@example.com"]
    )
    items.append(
        Incoming(
            MESSAGES["m6"], Source(kind="smtp", detail="q1", received_at=now, envelope=journal)
        )
    )
    assert {o.status for o in archiver.ingest_many(items)} <= {"imported", "duplicate"}
    archiver.index.refresh()
    return SearchService(archiver.index, get_tokenizer(), "Asia/Shanghai")


def found(service: SearchService, query: str, **options: object) -> set[str]:
    result = service.search(f"({query}) {MARK}", size=50, **options)
    return {NAME[h.id] for h in result.hits}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("合同", {"m1", "m2", "m3"}),
        ("合同 草案", {"m1"}),
        ("合同 OR quarterly", {"m1", "m2", "m3", "m4", "m5"}),
        ("subject:合同 -from:zhang.san@example.cn", {"m2"}),
        ("from:*@example.cn", {"m1", "m3"}),
        ("from:example.cn", {"m1", "m3"}),
        ("from:@other.org", {"m4", "m5"}),
        ("from:张三", {"m1", "m3"}),
        ("from:bob", {"m4"}),
        ("to:li.si@corp.example", {"m1", "m3"}),
        ("cc:wang@example.com", {"m1"}),
        ("participant:li.si@corp.example", {"m1", "m2", "m3"}),
        ("envelope:hidden@example.com", {"m6"}),
        ("participant:hidden@example.com", {"m6"}),
        ("bcc:hidden@example.com", set()),  # not in a Bcc header: only the envelope knows
        ("has:attachment", {"m1"}),
        ("filename:草案", {"m1"}),
        ("filename:*.txt", {"m1"}),
        ("larger:100K", {"m4"}),
        ("smaller:100K -合同", {"m5", "m6"}),
        ("date:2024-03", set()),  # m4 is 1 April in Asia/Shanghai
        ("date:2024-04", {"m4", "m5", "m6"}),
        ("date:2024-01..2024-02", {"m1", "m2", "m3"}),
        ("before:2024-02-01", {"m1"}),
        ("after:2024-02-02 before:2024-04-02", {"m3", "m4"}),
        ("source:smtp", {"m6"}),
        ("source:import -source:smtp", {"m1", "m2", "m3", "m4", "m5"}),
        ("message-id:<m1@feature.test>", {"m1"}),
        ('"合同审批"', {"m1", "m2", "m3"}),
        ('"审批 合同"', set()),
        ('subject:"quarterly report"', {"m4", "m5"}),
        ("body:审批", {"m1", "m2"}),
        ("subject:(审批 -re)", {"m1", "m3"}),
    ],
)
def test_query_language(service: SearchService, query: str, expected: set[str]) -> None:
    assert found(service, query) == expected


def test_sort_by_date_and_exact_total(service: SearchService) -> None:
    newest = service.search(MARK, sort="date", size=6)
    assert [NAME[h.id] for h in newest.hits] == ["m6", "m5", "m4", "m3", "m2", "m1"]
    assert newest.total == 6
    oldest = service.search(MARK, sort="date_asc", size=2)
    assert [NAME[h.id] for h in oldest.hits] == ["m1", "m2"]


def test_cursor_walk_sees_every_hit_exactly_once(service: SearchService) -> None:
    seen: list[str] = []
    result = service.search(MARK, size=2, cursor="*", sort="date")
    pages = 1
    while True:
        seen += [h.id for h in result.hits]
        if result.next_cursor is None:
            break
        result = service.search(cursor=result.next_cursor)
        pages += 1
    assert sorted(seen) == sorted(ID.values())
    assert pages == 4  # 2 + 2 + 2, then an empty last page closes the point in time


def test_facets_count_the_matching_messages(service: SearchService) -> None:
    facets = service.search(MARK, facets=True, size=1).facets
    assert facets is not None
    as_dict = {name: {v.value: v.count for v in values} for name, values in facets.items()}
    assert as_dict["sender_domains"] == {
        "example.cn": 2,
        "other.org": 2,
        "corp.example": 1,
        "example.com": 1,
    }
    assert as_dict["has_attachment"] == {"true": 1, "false": 5}
    assert as_dict["sources"] == {"import": 5, "smtp": 1}
    assert as_dict["dates"] == {"2024-01": 1, "2024-02": 2, "2024-04": 3}


def test_highlights_cover_subject_and_body(service: SearchService) -> None:
    hit = next(h for h in service.search(f"审批 {MARK}", size=10).hits if NAME[h.id] == "m1")
    assert hit.subject_highlight == "关于合同<em>审批</em>的通知"
    assert "<em>审批</em>" in hit.snippet


def test_threads_follow_headers_then_subjects(service: SearchService) -> None:
    index = service.index
    chain = [d["id"] for d in thread_of(index, ID["m3"])]  # m3 names only m2, m2 names m1
    assert chain == [ID["m1"], ID["m2"], ID["m3"]]
    assert [d["id"] for d in thread_of(index, ID["m1"])] == chain
    by_subject = [d["id"] for d in thread_of(index, ID["m5"])]  # no threading headers at all
    assert by_subject == [ID["m4"], ID["m5"]]
    assert [d["id"] for d in thread_of(index, ID["m6"])] == [ID["m6"]]
