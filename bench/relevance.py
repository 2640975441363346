"""Relevance evaluation: a labelled query set over generated mail, MRR@10 and recall@10.

    python -m bench.relevance          evaluate (needs the services): ours vs standard analyzer
    python -m bench.relevance --label  rewrite tests/relevance/queries.json from the corpus

The corpus is bench.mailgen's messages (seed 5) plus hand-written messages:

- word-boundary cases: for each query word, one message where it is a word and one where its
  characters only meet across a word boundary (found too, but must rank below);
- known-item subjects: an original (sometimes with a bullet), its replies and forwards, a near
  copy, and messages that mention the subject in their bodies; the query is the subject as
  pasted, the original is the one relevant message;
- simplified/traditional pairs: the same sentence in simplified (UTF-8) and traditional (Big5)
  characters; a query in either script must find both.

Span queries are 4-8 characters of a generated body's Chinese, starting inside a jieba word; their
relevant messages are all those whose subject or body holds the span (folded).

Systems, side by side: ours (span matching, the default), ours in word-only mode, and the same
messages in Elasticsearch's standard analyzer queried with match AND and with phrases.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jieba

from archiver import bootstrap
from archiver.errors import InvalidQuery
from archiver.models import Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.search.service import SearchService
from archiver.settings import Settings, get_settings
from archiver.text.fold import fold
from archiver.text.subjects import subject_key
from archiver.text.tokenizer import HAN_RUN, get_tokenizer
from bench.cleanup import throwaway_archive, throwaway_settings
from bench.corpora import CorpusUnavailable, spam_assassin_messages
from bench.mailgen import PRECISION_CASES, GeneratedMessage, generate

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
SCRIPT_MARK = "scriptcase"  # in the simplified/traditional messages
# Known-item subjects: the original, as sent (a bullet sometimes), and how many messages merely
# mention it in their bodies (a common phrase has many such messages: 深圳公司)
SUBJECT_CASES: list[tuple[str, int]] = [
    ("● 有些话不吐不快", 3),
    ("深圳公司", 40),
    ("关于明年预算的初步想法", 5),
    ("★ 年会节目报名（截止周五）", 4),
    ("Server migration plan: phase 2", 3),
    ("请审批：华南区域渠道返利方案", 6),
    ("周末团建安排", 12),
    ("【通知】办公室搬迁", 8),
]
REPLY_FORMS = ("Re: {}", "回复：{}", "转发: {}", "Fw: Re: {}", "{}（修订版）")
# The same sentence in both scripts: the word differs between them
SCRIPT_SENTENCES = [
    "请尽快审批这份采购合同",
    "新系统的开发进度需要汇报",
    "供应商的报价已经发到邮箱",
    "下周的销售会议改到周三",
    "电网改造的数据已经更新",
    "报销发票请在月底前提交",
    "这个项目的质量问题很严重",
    "请确认客户的联系地址",
]
SPAN_QUERIES = 60
SUBJECT_QUERIES = 40
REAL_SUBJECT_QUERIES = 300
REAL_SPAN_QUERIES = 300
Label = str  # "g<index>" generated; "w<n>"/"b<n>" word/boundary; "s…"/"t…" script; "k…" subjects


@dataclass(frozen=True)
class Query:
    id: str
    kind: str  # zh, en, mixed, field, boundary, span, subject, script
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
    messages += [(label, raw) for label, raw, _ in subject_messages()]
    messages += script_messages()
    return messages


def _plain(label: str, text: str, subject: str | None = None, charset: str = "utf-8") -> bytes:
    subject = f"{CASE_MARK} {label}" if subject is None else subject
    encoded = subject if subject.isascii() else f"=?utf-8?b?{_b64(subject)}?="
    return (
        f"Message-ID: <{label}@relevance.test>\r\nFrom: tester@example.com\r\n"
        f"Subject: {encoded}\r\nContent-Type: text/plain; charset={charset}\r\n\r\n"
    ).encode() + f"{text}。\r\n".encode(charset)


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def subject_messages() -> list[tuple[Label, bytes, str]]:
    """(label, raw, subject): each case's original "k<n>", its replies and near copy
    "k<n>r<m>", and the messages that mention it "k<n>m<m>"."""
    out: list[tuple[Label, bytes, str]] = []
    for n, (subject, mentions) in enumerate(SUBJECT_CASES):
        bare = subject_key(subject)[0] if subject.isascii() else subject.lstrip("●★ ")
        out.append((f"k{n}", _plain(f"k{n}", f"{bare}，详见附件", subject), subject))
        for m, form in enumerate(REPLY_FORMS):
            reply = form.format(subject)
            out.append((f"k{n}r{m}", _plain(f"k{n}r{m}", f"收到，{bare}我再看看", reply), reply))
        for m in range(mentions):
            other = f"周报第{m}期"
            body = f"上周讨论了{bare}的事情，还有其他几项"
            out.append((f"k{n}m{m}", _plain(f"k{n}m{m}", body, other), other))
    return out


def _traditional(text: str) -> str:
    import opencc

    return str(opencc.OpenCC("s2t").convert(text))


def script_messages() -> list[tuple[Label, bytes]]:
    out: list[tuple[Label, bytes]] = []
    for n, sentence in enumerate(SCRIPT_SENTENCES):
        subject = f"{SCRIPT_MARK} {n}"
        out.append((f"s{n}", _plain(f"s{n}", sentence, subject)))
        out.append((f"t{n}", _plain(f"t{n}", _traditional(sentence), subject, "big5")))
    return out


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
    queries += span_queries(messages) + subject_queries(messages) + script_queries()
    return [q for q in queries + boundary_queries() if q.relevant]


@dataclass(frozen=True)
class Text:
    subject: str
    plain: str  # subject, body, attachment text and names, as the parser reads them
    folded: str  # what a span must be found in (traditional and full-width forms folded)


def _texts(raws: Sequence[tuple[Label, bytes]]) -> dict[Label, Text]:
    """Each message as the pipeline's parser reads it (attachments extracted)."""
    from archiver.mime.parsing import parse_message

    texts: dict[Label, Text] = {}
    for label, raw in raws:
        parsed = parse_message(raw, datetime.now(UTC))
        names = " ".join(a.filename for a in parsed.attachments if a.filename)
        plain = "\n".join((parsed.subject, parsed.body_text, parsed.attachment_text, names))
        texts[label] = Text(parsed.subject, plain, fold(plain))
    return texts


class Spans:
    """Spans of 4-8 characters that start inside a jieba word, each with the messages that hold
    it; rarer ones first (a span in hundreds of messages says little)."""

    def __init__(self, texts: dict[Label, Text], rng: random.Random) -> None:
        self.texts = {label: text.folded for label, text in texts.items()}
        self.rng = rng
        self.tokenizer = get_tokenizer()
        self.found: dict[str, list[Label]] = {}

    def add(self, run: str, start: int) -> None:
        span = run[start : start + self.rng.randint(4, 8)]
        if len(span) >= 4 and span not in self.found:  # the span as written, found folded
            self.found[span] = [label for label, text in self.texts.items() if fold(span) in text]

    def inside_starts(self, run: str) -> list[int]:
        tokens = self.tokenizer.tokens(run, "precise")
        return [t.start + 1 for t in tokens if t.end - t.start >= 2]

    def queries(self, prefix: str, count: int) -> list[Query]:
        ranked = sorted(self.found.items(), key=lambda item: (len(item[1]), item[0]))
        return [
            Query(f"{prefix}-{n:02}", "span", span, relevant)
            for n, (span, relevant) in enumerate(ranked[:count])
        ]


def runs_of(text: str, shortest: int = 9) -> list[str]:
    return [r.group() for r in HAN_RUN.finditer(text) if len(r.group()) >= shortest]


def span_queries(messages: Sequence[GeneratedMessage]) -> list[Query]:
    """SPAN_QUERIES spans from the bodies of Chinese messages: of the running text, and reaching
    into a keyword (rarer)."""
    rng = random.Random(SEED)
    raws = [(f"g{m.index}", m.raw) for m in messages]
    spans = Spans(_texts(raws + [(label, raw) for label, raw, _ in subject_messages()]), rng)
    bodies = [m for m in messages if m.language != "en"]
    for m in rng.sample(bodies, min(len(bodies), 300)):
        runs = runs_of(fold(m.body_text))
        if runs and (starts := spans.inside_starts(run := rng.choice(runs))):
            spans.add(run, rng.choice(starts))
        for keyword in (k for k in m.keywords if not k.isascii()):
            for run in (r for r in runs if fold(keyword) in r):
                at = run.index(fold(keyword))
                starts = [i for i in spans.inside_starts(run) if at - 3 <= i <= at + 1]
                if starts:
                    spans.add(run, rng.choice(starts))
    return spans.queries("span", SPAN_QUERIES)


def subject_queries(messages: Sequence[GeneratedMessage]) -> list[Query]:
    """The hand-written cases, and generated subjects as pasted: the relevant messages are the
    originals (not replies) with that subject."""
    queries = [
        Query(f"subject-k{n}", "subject", subject, [f"k{n}"])
        for n, (subject, _) in enumerate(SUBJECT_CASES)
    ]
    originals: dict[str, list[Label]] = defaultdict(list)
    shown: dict[str, str] = {}
    for m in messages:
        key, reply = subject_key(m.subject)
        if key and not reply:
            originals[key].append(f"g{m.index}")
            shown.setdefault(key, m.subject)
    few = sorted(k for k in originals if len(originals[k]) <= 5)  # known items, not templates
    keys = random.Random(SEED).sample(few, min(len(few), SUBJECT_QUERIES - len(queries)))
    queries += [
        Query(f"subject-{n:02}", "subject", shown[key], originals[key])
        for n, key in enumerate(keys)
    ]
    return queries


def script_queries() -> list[Query]:
    """Each pair's distinctive word, in simplified and in traditional characters."""
    tokenizer = get_tokenizer()
    queries = []
    for n, sentence in enumerate(SCRIPT_SENTENCES):
        word = max(
            tokenizer.terms(sentence, "precise"), key=lambda w: (_traditional(w) != w, len(w))
        )
        for script, text in (("s", word), ("t", _traditional(word))):
            queries.append(
                Query(
                    f"script-{n:02}{script}", "script", f"{text} {SCRIPT_MARK}", [f"s{n}", f"t{n}"]
                )
            )
    return queries


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


# -- real mail: the SpamAssassin public corpus --------------------------------------------------


def real_corpus() -> list[tuple[Label, bytes]]:
    """Its 6,046 messages, once each (a few are byte-identical copies)."""
    seen: set[str] = set()
    messages = []
    for name, raw in spam_assassin_messages():
        digest = hashlib.sha256(raw).hexdigest()
        if digest not in seen:
            seen.add(digest)
            messages.append((f"r:{name}", raw))
    return messages


def real_queries(raws: Sequence[tuple[Label, bytes]]) -> list[Query]:
    """Drawn with a fixed seed, as a new user would try them: the subject of an original (not a
    reply) that at most five originals share, as it reads, relevant: those originals; and 4-8
    characters of a message's Chinese starting inside a jieba word, as written (simplified or
    traditional), relevant: every message holding them, folded."""
    rng = random.Random(SEED)
    texts = _texts(raws)
    originals: dict[str, list[Label]] = defaultdict(list)
    shown: dict[str, str] = {}
    for label, text in texts.items():
        key, reply = subject_key(text.subject)
        if len(key) >= 4 and not reply:
            originals[key].append(label)
            shown.setdefault(key, text.subject)
    few = sorted(k for k in originals if len(originals[k]) <= 5)
    keys = rng.sample(few, min(len(few), REAL_SUBJECT_QUERIES))
    queries = [
        Query(f"real-subject-{n:03}", "subject", shown[key], originals[key])
        for n, key in enumerate(keys)
    ]
    spans = Spans(texts, rng)
    for text in texts.values():
        for run in runs_of(text.plain):
            starts = spans.inside_starts(run)
            for start in rng.sample(starts, min(len(starts), 3)):
                spans.add(run, start)
    return queries + spans.queries("real-span", REAL_SPAN_QUERIES)


def save_queries(queries: Sequence[Query]) -> None:
    QUERIES_PATH.parent.mkdir(parents=True, exist_ok=True)
    # one query a line: span queries have hundreds of relevant messages
    rows = [json.dumps(q.__dict__, ensure_ascii=False) for q in queries]
    QUERIES_PATH.write_text("[\n" + ",\n".join(rows) + "\n]\n", "utf-8")


def load_queries() -> list[Query]:
    return [Query(**row) for row in json.loads(QUERIES_PATH.read_text("utf-8"))]


@dataclass(frozen=True)
class Scores:
    mrr: float
    recall: float
    queries: int
    false_matches: float  # share of distractors returned in the top 10
    # share of queries with distractors where every relevant message in the top 10 ranks above
    # every distractor returned (a distractor may be found, but below)
    ordered: float = 1.0


def score(queries: Sequence[Query], run: Callable[[str], list[Label]]) -> Scores:
    """MRR@10 (1/rank of the first relevant hit) and recall@10 (share of the relevant
    messages in the top 10, out of at most 10), averaged over queries."""
    mrr = recall = false = ordered = 0.0
    with_distractors = [q for q in queries if q.distractors]
    for query in queries:
        top = run(query.query)[:10]
        relevant = set(query.relevant)
        if query.distractors:
            false += len(set(query.distractors) & set(top)) / len(query.distractors)
            ranks = [i for i, label in enumerate(top) if label in relevant]
            wrong = [i for i, label in enumerate(top) if label in set(query.distractors)]
            ordered += all(r < w for r in ranks for w in wrong) and bool(ranks)
        rank = next((i for i, label in enumerate(top, 1) if label in relevant), None)
        mrr += 1 / rank if rank else 0.0
        recall += len(relevant & set(top)) / min(len(relevant), 10)
    return Scores(
        mrr / len(queries),
        recall / len(queries),
        len(queries),
        false / len(with_distractors) if with_distractors else 0.0,
        ordered / len(with_distractors) if with_distractors else 1.0,
    )


def ingest_corpus(archiver: Archiver, messages: Sequence[tuple[Label, bytes]]) -> dict[str, Label]:
    """Index the messages; returns sha256 → label."""
    now = datetime.now(UTC)
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


def ours(
    service: SearchService, labels: dict[str, Label], match: str = "span"
) -> Callable[[str], list[Label]]:
    def run(query: str) -> list[Label]:
        try:
            hits = service.search(query, size=10, match=match).hits
        except InvalidQuery:  # what the reader gets is an error at a position: no message
            return []
        return [labels.get(h.id, "?") for h in hits]

    return run


# -- baseline: the same messages through Elasticsearch's standard analyzer -------------------


def standard_baseline(
    settings: Settings, archiver: Archiver, labels: dict[str, Label]
) -> tuple[dict[str, Callable[[str], list[Label]]], Callable[[], None]]:
    """Index subject and body with the standard analyzer (CJK → single characters) and query
    each word with match AND (every character, anywhere) and as a phrase (adjacent
    characters): what plain Elasticsearch does."""
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

    def runner(kind: str) -> Callable[[str], list[Label]]:
        def run(query: str) -> list[Label]:
            must: list[dict[str, Any]] = []
            for word in query.split():
                field, _, value = word.partition(":")
                if value and field == "from":
                    must.append({"term": {"from.address": value}})
                    continue
                match: dict[str, Any] = {"query": word, "fields": ["subject^3", "body"]}
                if kind == "phrase":
                    match["type"] = "phrase"
                else:
                    match["operator"] = "and"
                must.append({"multi_match": match})
            response = client.search(index=name, query={"bool": {"must": must}}, size=10)
            return [labels.get(h["_id"], "?") for h in response["hits"]["hits"]]

        return run

    runs = {"standard, match AND": runner("and"), "standard, phrase": runner("phrase")}
    return runs, lambda: client.indices.delete(index=name)


Report = dict[str, dict[str, Scores]]  # system -> query kind (and "all") -> scores


def evaluate(
    settings: Settings, messages: Sequence[tuple[Label, bytes]], queries: Sequence[Query]
) -> Report:
    """Index the messages on the settings' (throwaway) index and bucket, score every system,
    drop everything again."""
    with throwaway_archive(settings, parallel=True) as archiver:
        labels = ingest_corpus(archiver, messages)
        service = SearchService(archiver.index, get_tokenizer(settings.user_dict))
        baselines, drop = standard_baseline(settings, archiver, labels)
        systems = {
            "mailvault": ours(service, labels),
            "mailvault, match=words": ours(service, labels, "words"),
            **baselines,
        }
        try:
            return {system: _scores(run, queries) for system, run in systems.items()}
        finally:
            drop()


def _scores(run: Callable[[str], list[Label]], queries: Sequence[Query]) -> dict[str, Scores]:
    by_kind = {"all": score(queries, run)}
    for kind in sorted({q.kind for q in queries}):
        by_kind[kind] = score([q for q in queries if q.kind == kind], run)
    return by_kind


def print_report(report: Report) -> None:
    systems = list(report)
    print(f"{'kind':<9} {'queries':>7}  " + "  ".join(f"{s:>24}" for s in systems))
    print(f"{'':<9} {'':>7}  " + "  ".join(f"{'MRR@10 recall@10':>24}" for _ in systems))
    for kind in report[systems[0]]:
        row = [report[s][kind] for s in systems]
        cells = "  ".join(f"{r.mrr:>15.3f} {r.recall:>8.3f}" for r in row)
        print(f"{kind:<9} {row[0].queries:>7}  {cells}")


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
    settings = get_settings()
    report = evaluate(
        throwaway_settings(settings, f"mailvault-relevance-{run}"), corpus(), load_queries()
    )
    print(
        f"generated corpus: {CORPUS_SIZE} messages (seed {SEED}) + "
        f"{2 * len(WORD_SENTENCES)} word-boundary, {len(subject_messages())} known-item subject "
        f"and {2 * len(SCRIPT_SENTENCES)} simplified/traditional messages"
    )
    print_report(report)
    print("boundary: distractors returned in the top 10 / relevant ranked above every distractor")
    for system, kinds in report.items():
        if (b := kinds.get("boundary")) is not None:
            print(f"  {system:<24} {b.false_matches:.3f} / {b.ordered:.3f}")
    try:
        real = real_corpus()
    except CorpusUnavailable as exc:
        print(f"\nreal mail: skipped ({exc})")
        return
    queries = real_queries(real)
    print(
        f"\nreal mail: the SpamAssassin public corpus ({len(real)} distinct messages; "
        "English, and Chinese in Big5 and GB2312): known-item subjects and Chinese spans"
    )
    print_report(
        evaluate(throwaway_settings(settings, f"mailvault-relevance-real-{run}"), real, queries)
    )


if __name__ == "__main__":
    main()
