"""Rules, the evaluation engine, the directory and topics on real documents (no services: the
documents are built from raw mail by the same code the pipeline runs)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import jieba.analyse
import pytest

from archiver.errors import InvalidTagging
from archiver.models import Envelope, Source
from archiver.pipeline.documents import analyse, with_participants
from archiver.ports import Document
from archiver.tagging.directory import Directory, parse_directory
from archiver.tagging.engine import Evaluation, TagSource, manual_change, plan
from archiver.tagging.keywords import JIEBA_STOP_WORDS, top_keywords
from archiver.tagging.model import TagState, normalise_tag
from archiver.tagging.rules import MessageView, compile_rule, parse_rule
from archiver.text.tokenizer import get_tokenizer

NOW = datetime(2024, 6, 3, tzinfo=UTC)


def message(
    subject: str,
    body: str = "正文",
    sender: str = "zhang.san@example.cn",
    to: str = "li.si@example.cn",
    envelope: Envelope | None = None,
    headers: str = "",
) -> Document:
    raw = (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n{headers}"
        "Date: Mon, 3 Jun 2024 10:00:00 +0800\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()
    sha = hashlib.sha256(raw).hexdigest()
    doc = analyse(sha, raw, NOW, None, 100_000, None)
    source = Source(kind="smtp", detail="q1", received_at=NOW, envelope=envelope)
    return with_participants(doc, [source])


def rule(when: dict[str, Any], **actions: Any) -> dict[str, Any]:
    return {"name": "r", "when": when, "actions": actions or {"add_tags": ["project/x"]}}


def matches(when: dict[str, Any], doc: Document) -> bool:
    compiled = compile_rule(parse_rule(rule(when), get_tokenizer()), 1, get_tokenizer())
    return bool(compiled.tags_for(MessageView(doc)))


def test_the_jira_example_sets_the_department() -> None:
    data = {
        "name": "jira",
        "when": {"field": "subject", "op": "regex", "value": r"JIRA-\d+"},
        "actions": {"set_department": "技术部"},
    }
    compiled = compile_rule(parse_rule(data, get_tokenizer()), 3, get_tokenizer())
    hit = message("请review一下JIRA-1234的patch")
    miss = message("JIRA 周会")
    change = plan(hit, Evaluation([TagSource.of_rule(compiled)]), NOW)
    assert change is not None
    assert change.fields["tags"] == ["department/技术部"]
    assert change.fields["departments"] == ["技术部"]
    [event] = change.fields["tag_events"]
    assert event == {
        "tag": "department/技术部",
        "action": "add",
        "by": {"kind": "rule", "rule": "jira", "version": 3, "user": None},
        "at": "2024-06-03T00:00:00Z",
    }
    assert plan(miss, Evaluation([TagSource.of_rule(compiled)]), NOW) is None


def test_domain_and_envelope_conditions() -> None:
    envelope = Envelope(mail_from="bounce@mailer.partner.com", rcpt_to=["audit@corp.cn"])
    doc = message(
        "季度报告",
        sender="wang@Partner.COM",
        to="boss@corp.cn",
        envelope=envelope,
        headers="X-Mailer: Foxmail 7\r\n",
    )
    assert matches({"field": "sender_domain", "op": "equals", "value": "partner.com"}, doc)
    assert matches({"field": "recipient", "op": "glob", "value": "*@corp.cn"}, doc)
    assert matches({"field": "envelope_to", "op": "equals", "value": "audit@corp.cn"}, doc)
    assert matches({"field": "envelope_from_domain", "op": "contains", "value": "partner"}, doc)
    assert not matches({"field": "recipient", "op": "equals", "value": "audit@corp.cn"}, doc)
    assert matches({"field": "header:X-Mailer", "op": "glob", "value": "foxmail*"}, doc)
    assert matches({"field": "source", "op": "equals", "value": "smtp"}, doc)
    assert matches({"field": "size", "op": "gt", "value": 100}, doc)
    assert not matches({"field": "size", "op": "lt", "value": 100}, doc)
    combined = {
        "all": [
            {"field": "sender_domain", "op": "equals", "value": "partner.com"},
            {"not": {"field": "subject", "op": "contains", "value": "合同"}},
            {
                "any": [
                    {"field": "subject", "op": "contains", "value": "报告"},
                    {"field": "subject", "op": "contains", "value": "合同"},
                ]
            },
        ]
    }
    assert matches(combined, doc)
    assert not matches({"not": combined}, doc)


def test_chinese_keywords_match_segmented_words_only() -> None:
    bridge = message("南京市长江大桥", body="南京市长江大桥于1968年建成。")
    mayor = message("会见", body="市长今天会见了代表团。")
    rule_for_mayor = {"field": "words", "op": "contains", "value": "市长"}
    assert not matches(rule_for_mayor, bridge)
    assert matches(rule_for_mayor, mayor)
    assert matches({"field": "words", "op": "contains", "value": "长江大桥"}, bridge)
    # a substring test would fire on the bridge: that is what `words` is for
    assert matches({"field": "body", "op": "contains", "value": "市长"}, bridge)


def test_traditional_and_simplified_full_and_half_width_match_alike() -> None:
    hk = message("請審批合同", body="ＪＩＲＡ－１２３４ 已經開發完成")
    assert matches({"field": "subject", "op": "contains", "value": "审批"}, hk)
    assert matches({"field": "words", "op": "contains", "value": "开发"}, hk)
    assert matches({"field": "body", "op": "contains", "value": "jira-1234"}, hk)
    sensitive = {"field": "body", "op": "contains", "value": "JIRA", "case_sensitive": True}
    assert matches(sensitive, hk)
    assert not matches({**sensitive, "value": "jira"}, hk)
    mainland = message("请审批合同")
    assert matches({"field": "subject", "op": "equals", "value": "請審批合同"}, mainland)


@pytest.mark.parametrize(
    ("data", "location", "text"),
    [
        (
            rule({"field": "subject", "op": "regex", "value": "JIRA-(\\d+"}),
            "when.value",
            "invalid regex 'JIRA-(\\\\d+': missing ), unterminated subpattern",
        ),
        (
            rule({"field": "subjekt", "op": "contains", "value": "x"}),
            "when.field",
            "unknown field 'subjekt'",
        ),
        (
            rule({"field": "size", "op": "contains", "value": "x"}),
            "when.op",
            "operator 'contains' does not apply to size (use equals, gt, lt)",
        ),
        (rule({"field": "size", "op": "gt", "value": "big"}), "when.value", "needs a number"),
        (
            rule(
                {
                    "all": [
                        {"field": "subject", "op": "contains", "value": "a"},
                        {"field": "from", "op": "equals", "value": "b"},
                    ]
                }
            ),
            "when.all[1].field",
            "unknown field 'from'",
        ),
        (rule({"any": []}), "when.any", "non-empty list"),
        (rule({"field": "words", "op": "contains", "value": "，。"}), "when.value", "no words"),
        (
            rule({"field": "subject", "op": "contains", "value": "x"}, add_tags=["a//b"]),
            "actions.add_tags[0]",
            "empty path segment",
        ),
        (
            {
                "name": "r",
                "when": {"field": "subject", "op": "contains", "value": "x"},
                "actions": {},
            },
            "actions",
            "no action",
        ),
        ({"name": "bad name", "when": {}, "actions": {"add_tags": ["x"]}}, "name", "letters"),
        (
            {"name": "r", "when": {}, "actions": {"add_tags": ["x"]}, "color": 1},
            "color",
            "Extra inputs",
        ),
    ],
)
def test_invalid_rules_are_rejected_saying_where(
    data: dict[str, Any], location: str, text: str
) -> None:
    with pytest.raises(InvalidTagging) as raised:
        parse_rule(data, get_tokenizer())
    assert raised.value.location == location
    assert text in str(raised.value)
    assert str(raised.value).startswith(f"invalid rule at {location}: ")


def test_tag_paths_are_normalised() -> None:
    assert normalise_tag(" /project/ 凤凰 /") == "project/凤凰"
    assert normalise_tag("ｕｒｇｅｎｃｙ/high") == "urgency/high"  # NFKC
    with pytest.raises(InvalidTagging):
        normalise_tag("")


def _source(tags: set[str], name: str = "r", version: int = 1) -> TagSource:
    compiled = compile_rule(
        parse_rule(
            {
                "name": name,
                "when": {"field": "size", "op": "gt", "value": 0},
                "actions": {"add_tags": sorted(tags)},
            },
            get_tokenizer(),
        ),
        version,
        get_tokenizer(),
    )
    return TagSource.of_rule(compiled)


def _applied(doc: Document, evaluation: Evaluation) -> Document:
    change = plan(doc, evaluation, NOW)
    return {**doc, **change.fields} if change else doc


def test_a_rule_change_moves_tags_and_applying_twice_changes_nothing() -> None:
    doc = _applied(message("hello"), Evaluation([_source({"project/a", "urgency/high"})]))
    assert doc["tags"] == ["project/a", "urgency/high"]
    assert plan(doc, Evaluation([_source({"project/a", "urgency/high"})]), NOW) is None
    change = plan(doc, Evaluation([_source({"project/b", "urgency/high"}, version=2)]), NOW)
    assert change is not None
    assert (change.gained, change.lost) == ({"project/b"}, {"project/a"})
    events = change.fields["tag_events"]
    assert [(e["tag"], e["action"], e["by"]["version"]) for e in events] == [
        ("project/a", "add", 1),
        ("urgency/high", "add", 1),
        ("project/b", "add", 2),
        ("project/a", "remove", 2),
    ]
    # another source asserting the same tag keeps it when one lets go
    both = _applied(doc, Evaluation([_source({"project/a"}, name="other")]))
    after = _applied(both, Evaluation([TagSource.released("r", 3)]))  # rule r deleted
    assert after["tags"] == ["project/a"]
    assert TagState.of(after).holders["project/a"] == {"rule:other"}


def test_manual_tags_override_rules_and_are_recorded() -> None:
    doc = _applied(message("hello"), Evaluation([_source({"project/a"})]))
    change = manual_change(doc, ["urgency/high"], ["project/a"], "alice", NOW)
    assert change is not None
    doc = {**doc, **change.fields}
    assert doc["tags"] == ["urgency/high"]
    assert [(e["tag"], e["action"], e["by"]) for e in doc["tag_events"][-2:]] == [
        ("urgency/high", "add", {"kind": "manual", "rule": None, "version": None, "user": "alice"}),
        ("project/a", "remove", {"kind": "manual", "rule": None, "version": None, "user": "alice"}),
    ]
    # the rule still matches but does not put back what a person removed
    assert plan(doc, Evaluation([_source({"project/a"})]), NOW) is None
    assert manual_change(doc, ["urgency/high"], [], "bob", NOW) is None  # already there


def test_legacy_tags_without_events_are_kept() -> None:
    doc = {**message("x"), "tags": ["old/tag"]}
    assert _applied(doc, Evaluation([_source({"project/a"})]))["tags"] == ["old/tag", "project/a"]


def test_directory_from_csv_and_json_tags_departments_by_scope() -> None:
    csv_text = "邮箱,姓名,部门,经理\nZhang.San@example.cn,张三,技术部,boss@example.cn\n\n"
    csv_text += "li.si@example.cn,李四,财务部,\n"
    people = parse_directory(csv_text.encode(), "csv")
    assert [(p.address, p.department) for p in people] == [
        ("zhang.san@example.cn", "技术部"),
        ("li.si@example.cn", "财务部"),
    ]
    json_people = parse_directory(
        b'[{"email": "zhang.san@example.cn", "name": "Zhang", "department": "R&D/Backend"}]',
        "json",
    )
    doc = message("x")
    everyone = Directory({p.address: p for p in people}, "participants", 1)
    assert everyone.tags_for(doc) == {"department/技术部", "department/财务部"}
    assert Directory({p.address: p for p in people}, "sender", 1).tags_for(doc) == {
        "department/技术部"
    }
    change = plan(doc, Evaluation([TagSource.of_directory(everyone)]), NOW)
    assert change is not None
    assert change.fields["departments"] == ["技术部", "财务部"]
    assert change.fields["tag_events"][0]["by"] == {
        "kind": "directory",
        "rule": None,
        "version": 1,
        "user": None,
    }
    sub = Directory({p.address: p for p in json_people}, "sender", 2).tags_for(doc)
    assert sub == {"department/R&D/Backend"}


@pytest.mark.parametrize(
    ("data", "fmt", "text"),
    [
        (b"name,department\nx,y\n", "csv", "no address column"),
        (b"address,department\nnot-an-address,y\n", "csv", "at line 2: address"),
        (b'{"a": 1', "json", "not JSON"),
        (b'[{"address": "a@b.cn", "department": "x//y"}]', "json", "empty path segment"),
    ],
)
def test_invalid_directories_are_rejected(data: bytes, fmt: str, text: str) -> None:
    with pytest.raises(InvalidTagging) as raised:
        parse_directory(data, fmt)  # type: ignore[arg-type]
    assert text in str(raised.value)


def test_topics_are_jiebas_tfidf_on_our_segmentation() -> None:
    text = (
        "本次供应链管理系统升级涉及采购模块、库存模块和财务结算模块。采购模块将支持电子招标，"
        "库存模块增加条码盘点，财务结算模块对接银行直连。请各部门在升级窗口前完成数据备份，"
        "升级期间供应链管理系统暂停服务。"
    )
    ours = top_keywords(get_tokenizer().terms(text, "precise"), 8, JIEBA_STOP_WORDS)
    assert ours == jieba.analyse.extract_tags(text, topK=8)
    assert "模块" in ours[:3]


def test_topics_of_mixed_text_drop_stop_words_and_numbers() -> None:
    words = get_tokenizer().terms(
        "Please review the Kubernetes migration plan 2024 请审核迁移方案", "precise"
    )
    ours = top_keywords(words, 5, JIEBA_STOP_WORDS | {"please"})
    assert "kubernetes" in ours and "迁移" in ours
    assert not {"please", "the", "2024"} & set(ours)
