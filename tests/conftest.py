"""Session fixtures: the real services (started by scripts/services.sh) and an isolated archive.

Each test session gets its own bucket and index alias, so runs never see each other's mail.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench.cleanup import (
    drop_bucket,
    drop_index,
    export_bucket,
    throwaway_archive,
    throwaway_settings,
)
from tests.support.corpus_summary import CORPUS_MISSING
from tests.support.corpus_summary import pytest_terminal_summary as pytest_terminal_summary

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
RUN_ID = uuid.uuid4().hex[:8]

# Set before any archiver module reads the settings; never the archive a user's data is in.
os.environ["MAILVAULT_ES_INDEX"] = f"mailvault-test-{RUN_ID}"
os.environ["MAILVAULT_S3_BUCKET"] = f"mailvault-test-{RUN_ID}"
os.environ["MAILVAULT_CELERY_QUEUE"] = f"mailvault-test-{RUN_ID}"  # no other run's worker


def corpus_files() -> list[Path]:
    """Every message of ../shared/corpora (empty when the folder is absent)."""
    if not CORPORA.is_dir():
        return []
    spamscope = sorted((CORPORA / "spamscope-mail-parser" / "tests" / "mails").glob("*"))
    stalwart = sorted((CORPORA / "stalwart-mail-parser" / "resources" / "eml").rglob("*.eml"))
    return [p for p in spamscope + stalwart if p.is_file()]


@pytest.fixture(scope="session")
def corpus() -> list[Path]:
    files = corpus_files()
    if not files:
        pytest.skip(f"{CORPUS_MISSING} at {CORPORA} (a user's clone has no shared/ folder)")
    return files


@pytest.fixture(scope="session")
def services() -> None:
    """Make sure Elasticsearch, S3 and Redis are up; start them if not."""
    status = subprocess.run(
        ["bash", str(ROOT / "scripts" / "services.sh"), "status"], capture_output=True, text=True
    )
    if status.returncode != 0:
        subprocess.run(["bash", str(ROOT / "scripts" / "services.sh"), "up"], check=True)


@pytest.fixture(scope="session")
def settings(services: None):  # type: ignore[no-untyped-def]
    from archiver.settings import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def backends(settings):  # type: ignore[no-untyped-def]
    """Bucket and index for this session, removed at the end."""
    from archiver import bootstrap

    bootstrap.init_backends(settings)
    index = bootstrap.search_index(settings)
    yield
    drop_index(index.client, settings.es_index)
    drop_bucket(bootstrap.raw_store(settings).client, settings.s3_bucket)
    drop_bucket(bootstrap.raw_store(settings).client, export_bucket(settings))


@pytest.fixture(scope="session")
def archiver(settings, backends) -> Iterator[object]:  # type: ignore[no-untyped-def]
    from archiver import bootstrap

    instance = bootstrap.archiver(settings, parallel=False)
    yield instance
    instance.close()


@pytest.fixture(scope="session")
def slapd() -> Iterator[object]:
    """A private OpenLDAP with the users and groups of tests/support/slapd.py DIRECTORY."""
    from tests.support.slapd import running_slapd

    with running_slapd() as server:
        yield server


@contextmanager
def own_archive(settings, name: str) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """An archiver on an index and bucket of its own, for tests whose assertions need to know
    every message in the index (other tests ingest generated mail with the same keywords)."""
    with throwaway_archive(throwaway_settings(settings, f"{settings.es_index}-{name}")) as archiver:
        yield archiver
