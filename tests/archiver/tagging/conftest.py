"""An index and bucket of a test module's own, for tests that save rules (which would tag the
session's other mail) or count every message; the module sets OWN_SETTINGS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from archiver.pipeline.archiver import Archiver
from archiver.settings import Settings
from bench.cleanup import throwaway_archive, throwaway_settings


@pytest.fixture(scope="module")
def own(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The session's settings on the module's own archive, with OWN_SETTINGS (name: the suffix
    of its index and bucket) applied."""
    updates: dict[str, Any] = dict(request.module.OWN_SETTINGS)
    name = updates.pop("name")
    return throwaway_settings(settings.model_copy(update=updates), f"{settings.es_index}-{name}")


@pytest.fixture(scope="module")
def own_archiver(own: Settings, backends: None) -> Iterator[Archiver]:
    with throwaway_archive(own) as instance:
        yield instance
