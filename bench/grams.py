"""Which Chinese span index is faster and smaller: bigrams made in Python (core whitespace
analyzer) or single characters from the core ``standard`` analyzer over the folded Han runs (what
the index's ``*_han`` fields hold)?

    python -m bench.grams --count 20000

Generates mail with bench.mailgen, indexes the folded subject and body both ways into two
throwaway indices (only those fields: the difference is what is measured), force-merges them to
one segment and prints, for each: the bytes sent, the indexing time, the index size per message,
and p50/p95 latency of span queries (2 characters, and 4-8 characters starting mid-word, taken
from the bodies) run as phrases over each field, alternating between the two indices so that a
busy machine slows both alike. Latency is Elasticsearch's own ``took`` (no HTTP client in the
figure); the machine is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from archiver import bootstrap
from archiver.settings import get_settings
from archiver.text.fold import fold
from archiver.text.tokenizer import HAN_RUN, han_runs
from bench.mailgen import generate

Doc = dict[str, str | list[str]]


def gram_terms(text: str) -> list[str]:
    """The bigram copy of text's Chinese: each character of a Han run starts one term, the
    bigram it begins or, for the run's last character, the character alone (南京市 → 南京 京市
    市), so a phrase of bigrams never crosses two runs."""
    terms: list[str] = []
    for run in han_runs(text):
        terms += [run[i : i + 2] for i in range(len(run))]
    return terms


def span_bigrams(run: str) -> list[str]:
    """The query side: a run's bigrams, whose phrase matches wherever the run occurs (one
    character has none: it is a prefix of the terms)."""
    return [run[i : i + 2] for i in range(len(run) - 1)]


def bigram_doc(subject: str, body: str) -> Doc:
    return {"subject": " ".join(gram_terms(subject)), "body": " ".join(gram_terms(body))}


def unigram_doc(subject: str, body: str) -> Doc:
    # the standard analyzer makes one token per Han character; the runs go as an array, whose
    # position gap keeps a phrase inside one run (as the bigram copy's last-character terms do)
    return {"subject": han_runs(subject), "body": han_runs(body)}


def bigram_query(span: str) -> dict[str, Any]:
    bigrams = span_bigrams(span)
    if not bigrams:
        return {"prefix": {"body": span}}
    return {"match_phrase": {"body": " ".join(bigrams)}}


def unigram_query(span: str) -> dict[str, Any]:
    return {"match_phrase": {"body": span}}


Field = dict[str, Any]
POSITIONS: Field = {"type": "text", "index_options": "positions"}
LAYOUTS: dict[str, tuple[Field, Callable[[str, str], Doc], Callable[[str], dict[str, Any]]]] = {
    "bigrams (Python, whitespace)": (
        {**POSITIONS, "analyzer": "whitespace"},
        bigram_doc,
        bigram_query,
    ),
    "unigrams (standard analyzer)": (
        {**POSITIONS, "analyzer": "standard"},
        unigram_doc,
        unigram_query,
    ),
    # Elasticsearch shingles the standard analyzer's characters into a hidden field and runs
    # an exact phrase over those pairs: bigram phrases with nothing made in Python
    "unigrams + index_phrases": (
        {**POSITIONS, "analyzer": "standard", "index_phrases": True},
        unigram_doc,
        unigram_query,
    ),
}


def spans(bodies: list[str], count: int, rng: random.Random) -> Iterator[str]:
    """count spans of 4-8 characters inside Han runs, starting at any character (mid-word)."""
    runs = [r for b in bodies for r in HAN_RUN.findall(fold(b)) if len(r) >= 8]
    for _ in range(count):
        run = rng.choice(runs)
        length = rng.randint(4, 8)
        start = rng.randrange(0, len(run) - length + 1)
        yield run[start : start + length]


def pairs(bodies: list[str], count: int, rng: random.Random) -> Iterator[str]:
    runs = [r for b in bodies for r in HAN_RUN.findall(fold(b)) if len(r) >= 2]
    for _ in range(count):
        run = rng.choice(runs)
        start = rng.randrange(0, len(run) - 1)
        yield run[start : start + 2]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run(count: int, queries: int, seed: int) -> None:
    client: Any = bootstrap.search_index(get_settings()).client
    messages = [(m.subject, m.body_text) for m in generate(count, seed=seed)]
    rng = random.Random(seed)
    bodies = [b for _, b in messages]
    workload = {
        "span 4-8": list(spans(bodies, queries, rng)),
        "span 2": list(pairs(bodies, queries, rng)),
    }
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, {platform.python_version()}; "
        f"{count} generated messages (seed {seed}), {queries} queries per kind"
    )
    names = {layout: f"mailvault-benchgrams-{uuid.uuid4().hex[:8]}" for layout in LAYOUTS}
    try:
        built = {
            layout: _build(client, names[layout], field, make, messages)
            for layout, (field, make, _) in LAYOUTS.items()
        }
        # The layouts' queries alternate, one each, so a busy machine slows both alike.
        took: dict[str, dict[str, list[float]]] = {layout: {} for layout in LAYOUTS}
        hits: dict[str, dict[str, int]] = {layout: {} for layout in LAYOUTS}
        for kind, texts in workload.items():
            for text in texts[:20]:  # warm up
                for layout, (_, _, query) in LAYOUTS.items():
                    client.search(index=names[layout], query=query(text), size=10)
            for text in texts:
                for layout, (_, _, query) in LAYOUTS.items():
                    response = client.search(
                        index=names[layout], query=query(text), size=10, track_total_hits=True
                    )
                    took[layout].setdefault(kind, []).append(float(response["took"]))
                    total = response["hits"]["total"]["value"]
                    hits[layout][kind] = hits[layout].get(kind, 0) + total
        for layout, (sent, indexing, size) in built.items():
            print(layout)
            print(
                f"  sent {sent / count:7.0f} B/message  indexing {indexing:6.1f} s "
                f"({count / indexing:6.0f} msg/s)  index {size / count:6.0f} B/message"
            )
            for kind, values in took[layout].items():
                print(
                    f"  {kind:<9} p50 {statistics.median(values):5.1f} ms  "
                    f"p95 {percentile(values, 95):5.1f} ms  hits {hits[layout][kind]}"
                )
    finally:
        for name in names.values():
            client.options(ignore_status=404).indices.delete(index=name)


def _build(
    client: Any,
    name: str,
    field: Field,
    make: Callable[[str, str], Doc],
    messages: list[tuple[str, str]],
) -> tuple[int, float, int]:
    """Index the messages in one layout: (bytes sent, seconds, bytes on disk once merged)."""
    client.indices.create(
        index=name,
        settings={"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1"},
        mappings={"dynamic": "false", "properties": {"subject": field, "body": field}},
    )
    started = time.perf_counter()
    sent = 0
    for start in range(0, len(messages), 500):
        operations: list[Any] = []
        for subject, body in messages[start : start + 500]:
            doc = make(fold(subject), fold(body))
            sent += len(json.dumps(doc, ensure_ascii=False).encode())
            operations += [{"index": {"_index": name}}, doc]
        client.bulk(operations=operations)
    client.indices.refresh(index=name)
    indexing = time.perf_counter() - started
    client.indices.forcemerge(index=name, max_num_segments=1)
    stats = client.indices.stats(index=name, metric="store")
    return sent, indexing, int(stats["indices"][name]["primaries"]["store"]["size_in_bytes"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    run(args.count, args.queries, args.seed)


if __name__ == "__main__":
    main()
