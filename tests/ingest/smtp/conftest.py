"""Fixtures of the SMTP sink tests: each module gets a private S3 (failures are injected there)
and uses the session's Elasticsearch index."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from archiver.pipeline.archiver import Archiver
from archiver.settings import Settings
from tests.support.seaweed import archive_on_private_s3


@pytest.fixture(scope="module")
def private_archive(settings: Settings, backends: None) -> Iterator[tuple[Archiver, Settings]]:
    with archive_on_private_s3(settings) as archive:
        yield archive


@pytest.fixture(scope="module")
def archiver(private_archive: tuple[Archiver, Settings]) -> Archiver:
    """This module's archive: a private S3, the session's index."""
    return private_archive[0]


@pytest.fixture(scope="module")
def sink_settings(private_archive: tuple[Archiver, Settings]) -> Settings:
    return private_archive[1]
