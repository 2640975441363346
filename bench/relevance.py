"""Relevance evaluation: a labelled query set over generated mail, MRR@10 and recall@10.

    python -m bench.relevance          evaluate (needs the services): ours vs standard analyzer
    python -m bench.relevance --label  rewrite tests/relevance/queries.json from the corpus

The corpus is bench.mailgen's messages (seed 5) plus hand-written messages for the word-boundary
cases: for each query word, one message where it is a word and one where its characters only
meet across a word boundary (a unigram analyzer cannot tell them apart).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jieba

from archiver import bootstrap
from archiver.models import Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.search.service import SearchService
from archiver.settings import Settings, get_settings
from archiver.text.tokenizer import get_tokenizer
from bench.cleanup import throwaway_archive, throwaway_settings
from bench.mailgen import PRECISION_CASES, generate

QUERIES_PATH = Path(__file__).resolve().parents[1] / "tests" / "relevance" / "queries.json"
CORPUS_SIZE = 3000
SEED = 5
# A sentence where the word of PRECISION_CASES is a word (jieba agrees; checked when labelling).
WORD_SENTENCES = {
    "市长": "市长今天视察了新建的工厂",
    "研究生": "她是一名研究生，正在写论文",
    "和尚": "山上的和尚每天早起念经",
    "的确": "这个方案的确需要再修改",
    "球拍": "他买了一副新的球拍",
    "民生": "这项政策关系到民生",
    "地面": "雨后地面很滑请注意安全",
    "上海": "下周我们去上海出差",
    "雨天": "雨天路滑请减速慢行",
    "中国": "中国的经济发展很快",
    "和服": "她穿着一件漂亮的和服",
}
CASE_MARK = "relevancecase"  # in every hand-written message: their queries search only them
Label = str  # "g<index>" for generated messages, "w<n>"/"b<n>" for word/boundary messages


@dataclass(frozen=True)
class Query:
    id: str
    kind: str  # zh, en, mixed, field, boundary
    query: str
    relevant: list[Label]
    # messages holding the query's characters only across a word boundary: must not match
    distractors: list[Label] = field(default_factory=list)


def corpus() -> list[tuple[Label, bytes]]:
    messages: list[tuple[Label, bytes]] = [
        (f"g{m.index}", m.raw) for m in generate(CORPUS_SIZE, seed=SEED)
    ]
    for n, (text, word) in enumerate(PRECISION_CASES):
        if word in WORD_SENTENCES:
            messages.append((f"w{n}", _plain(f"w{n}", WORD_SENTENCES[word])))
            messages.append((f"b{n}", _plain(f"b{n}", text)))
    return messages


def _plain(label: str, text: str) -> bytes:
    return (
        f"Message-ID: <{label}@relevance.test>\r\nFrom: tester@example.com\r\n"
        f"Subject: {CASE_MARK} {label}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{text}。\r\n"
    ).encode()


def label_queries() -> list[Query]:
    """Derive the labelled set from the generator's ground truth (which message holds which
    keyword), then freeze it in tests/relevance/queries.json."""
    messages = list(generate(CORPUS_SIZE, seed=SEED))
    tokenizer = get_tokenizer()
    holders: dict[str, set[int]] = defaultdict(set)
    for m in messages:
        for keyword in m.keywords:
            holders[keyword].add(m.index)

    def relevant(word: str) -> list[Label]:
        wanted = set(tokenizer.terms(word))
        found = {i for k, ids in holders.items() if wanted <= set(tokenizer.terms(k)) for i in ids}
        return [f"g{i}" for i in sorted(found)]

    zh = sorted(k for k in holders if not k.isascii())
    en = sorted(k for k in holders if k.isascii())
    queries = [Query(f"zh-{n:02}", "zh", k, relevant(k)) for n, k in enumerate(zh[::7][:25])]
    queries += [Query(f"en-{n:02}", "en", k, relevant(k)) for n, k in enumerate(en[::11][:10])]
    both = [
        m
        for m in messages
        if any(k.isascii() for k in m.keywords) and any(not k.isascii() for k in m.keywords)
    ]
    for n, m in enumerate(both[:6]):
        zh_word = next(k for k in m.keywords if not k.isascii())
        en_word = next(k for k in m.keywords if k.isascii())
        queries.append(Query(f"mixed-{n:02}", "mixed", f"{zh_word} {en_word}", [f"g{m.index}"]))
    singles = [m for m in messages if any(len(holders[k]) == 1 for k in m.keywords)]
    for n, m in enumerate(singles[:8]):
        word = next(k for k in m.keywords if len(holders[k]) == 1)
        sender = m.from_addr.rpartition("<")[2].rstrip(">").lower()
        queries.append(Query(f"field-{n:02}", "field", f"from:{sender} {word}", [f"g{m.index}"]))
    return [q for q in queries + boundary_queries() if q.relevant]


def boundary_queries() -> list[Query]:
    """Among the hand-written messages: relevant where jieba makes the query a word (search
    mode, as indexed: 上海 is a word of 上海市), a distractor where the characters only meet."""
    texts: dict[Label, str] = {}
    for n, (text, word) in enumerate(PRECISION_CASES):
        if word in WORD_SENTENCES:
            assert word in jieba.lcut(WORD_SENTENCES[word]), word
            assert word not in jieba.lcut_for_search(text), word
            texts[f"w{n}"], texts[f"b{n}"] = WORD_SENTENCES[word], text
    queries = []
    for n, word in enumerate(dict.fromkeys(WORD_SENTENCES)):
        holding = [label for label, text in texts.items() if word in text]
        relevant = [lb for lb in holding if word in jieba.lcut_for_search(texts[lb])]
        queries.append(
            Query(
                f"boundary-{n:02}",
                "boundary",
                f"{word} {CASE_MARK}",
                relevant,
                sorted(set(holding) - set(relevant)),
            )
        )
    return queries


def save_queries(queries: Sequence[Query]) -> None:
    QUERIES_PATH.parent.mkdir(parents=True, exist_ok=True)
    rows = [q.__dict__ for q in queries]
    QUERIES_PATH.write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", "utf-8")


def load_queries() -> list[Query]:
    return [Query(**row) for row in json.loads(QUERIES_PATH.read_text("utf-8"))]


@dataclass(frozen=True)
class Scores:
    mrr: float
    recall: float
    queries: int
    false_matches: float  # share of distractors returned in the top 10


def score(queries: Sequence[Query], run: Callable[[str], list[Label]]) -> Scores:
    """MRR@10 (1/rank of the first relevant hit) and recall@10 (share of the relevant
    messages in the top 10, out of at most 10), averaged over queries."""
    mrr = recall = false = 0.0
    with_distractors = [q for q in queries if q.distractors]
    for query in queries:
        top = run(query.query)[:10]
        if query.distractors:
            false += len(set(query.distractors) & set(top)) / len(query.distractors)
        relevant = set(query.relevant)
        rank = next((i for i, label in enumerate(top, 1) if label in relevant), None)
        mrr += 1 / rank if rank else 0.0
        recall += len(relevant & set(top)) / min(len(relevant), 10)
    return Scores(
        mrr / len(queries),
        recall / len(queries),
        len(queries),
        false / len(with_distractors) if with_distractors else 0.0,
    )


def ingest_corpus(archiver: Archiver) -> dict[str, Label]:
    """Index the corpus; returns sha256 → label."""
    now = datetime.now(UTC)
    messages = corpus()
    for start in range(0, len(messages), 500):
        batch = messages[start : start + 500]
        archiver.ingest_many(
            [
                Incoming(raw, Source(kind="import", detail=label, received_at=now), label)
                for label, raw in batch
            ]
        )
    archiver.index.refresh()
    return {hashlib.sha256(raw).hexdigest(): label for label, raw in messages}


def ours(service: SearchService, labels: dict[str, Label]) -> Callable[[str], list[Label]]:
    def run(query: str) -> list[Label]:
        return [labels.get(h.id, "?") for h in service.search(query, size=10).hits]

    return run


# -- baseline: the same messages through Elasticsearch's standard analyzer -------------------


def standard_baseline(
    settings: Settings, archiver: Archiver, labels: dict[str, Label]
) -> tuple[Callable[[str], list[Label]], Callable[[], None]]:
    """Index subject and body with the standard analyzer (CJK → single characters) and query
    each word as a phrase (adjacent characters), the strongest plain-Elasticsearch setup."""
    client = bootstrap.search_index(settings).client
    name = f"mailvault-baseline-{uuid.uuid4().hex[:8]}"
    client.indices.create(
        index=name,
        mappings={
            "properties": {
                "subject": {"type": "text", "analyzer": "standard"},
                "body": {"type": "text", "analyzer": "standard"},
                "from": {"properties": {"address": {"type": "keyword"}}},
            }
        },
    )
    operations: list[dict[str, Any]] = []
    for batch in archiver.index.scan({"match_all": {}}, ["subject", "body", "from"], 500):
        for doc in batch:
            operations += [
                {"index": {"_index": name, "_id": doc["id"]}},
                {"subject": doc.get("subject"), "body": doc.get("body"), "from": doc.get("from")},
            ]
    for start in range(0, len(operations), 1000):
        client.bulk(operations=operations[start : start + 1000])
    client.indices.refresh(index=name)

    def run(query: str) -> list[Label]:
        must: list[dict[str, Any]] = []
        for word in query.split():
            field, _, value = word.partition(":")
            if value and field == "from":
                must.append({"term": {"from.address": value}})
            else:
                must.append(
                    {
                        "multi_match": {
                            "query": word,
                            "type": "phrase",
                            "fields": ["subject^3", "body"],
                        }
                    }
                )
        response = client.search(index=name, query={"bool": {"must": must}}, size=10)
        return [labels.get(h["_id"], "?") for h in response["hits"]["hits"]]

    return run, lambda: client.indices.delete(index=name)


def evaluate(settings: Settings) -> dict[str, dict[str, Scores]]:
    """Index the corpus on the settings' (throwaway) index and bucket, score both systems,
    drop everything again."""
    with throwaway_archive(settings, parallel=True) as archiver:
        labels = ingest_corpus(archiver)
        service = SearchService(archiver.index, get_tokenizer(settings.user_dict))
        baseline, drop = standard_baseline(settings, archiver, labels)
        try:
            return {
                system: _scores(run)
                for system, run in (
                    ("jieba (mailvault)", ours(service, labels)),
                    ("standard analyzer", baseline),
                )
            }
        finally:
            drop()


def _scores(run: Callable[[str], list[Label]]) -> dict[str, Scores]:
    queries = load_queries()
    by_kind = {"all": score(queries, run)}
    for kind in sorted({q.kind for q in queries}):
        by_kind[kind] = score([q for q in queries if q.kind == kind], run)
    return by_kind


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--label", action="store_true")
    args = parser.parse_args()
    if args.label:
        queries = label_queries()
        save_queries(queries)
        print(f"wrote {len(queries)} labelled queries to {QUERIES_PATH}")
        return
    run = uuid.uuid4().hex[:8]
    report = evaluate(throwaway_settings(get_settings(), f"mailvault-relevance-{run}"))
    print(
        f"corpus: {CORPUS_SIZE} generated messages (seed {SEED}) + "
        f"{2 * len(WORD_SENTENCES)} word-boundary messages"
    )
    for system, by_kind in report.items():
        print(system)
        for kind, s in by_kind.items():
            print(
                f"  {kind:<9} queries {s.queries:3}  MRR@10 {s.mrr:.3f}  "
                f"recall@10 {s.recall:.3f}  distractors returned {s.false_matches:.3f}"
            )


if __name__ == "__main__":
    main()
