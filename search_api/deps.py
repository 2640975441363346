"""FastAPI dependencies: backends and services, built once per process, and the views of the
index a principal reads through.

The getters are coroutines that only return what a cached builder made (the builders connect
nothing: the clients connect on first use). FastAPI runs a plain def dependency in its
threadpool, a hop per dependency per request that costs milliseconds on a busy machine; these
need none."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from time import monotonic
from typing import Annotated

from fastapi import BackgroundTasks, Depends

from archiver import bootstrap
from archiver.access.model import Permission
from archiver.exports.service import ExportService
from archiver.exports.signing import ManifestSigner
from archiver.holds.service import HoldService
from archiver.ports import JsonStore, RawStore, SearchIndex
from archiver.retention.disposition import Disposition
from archiver.retention.recompute import recompute
from archiver.retention.service import RetentionService
from archiver.search.scoped import ScopedIndex
from archiver.settings import Settings, get_settings
from archiver.status import CachedStatus
from archiver.tagging.service import TaggingService
from search_api.audit import RequestAudit


@lru_cache(maxsize=1)
def _raw_store() -> RawStore:
    return bootstrap.raw_store(get_settings())


async def get_raw_store() -> RawStore:
    return _raw_store()


@lru_cache(maxsize=1)
def _json_store() -> JsonStore:
    return bootstrap.json_store(get_settings())


async def get_json_store() -> JsonStore:
    return _json_store()


@lru_cache(maxsize=1)
def _index() -> SearchIndex:
    return bootstrap.search_index(get_settings())


async def get_index() -> SearchIndex:
    return _index()


SettingsDep = Annotated[Settings, Depends(get_settings)]
RawStoreDep = Annotated[RawStore, Depends(get_raw_store)]
IndexDep = Annotated[SearchIndex, Depends(get_index)]
JsonStoreDep = Annotated[JsonStore, Depends(get_json_store)]


@lru_cache(maxsize=1)
def cached_status() -> CachedStatus:
    settings = get_settings()
    return CachedStatus(bootstrap.status_probe(settings), settings.status_cache_seconds, monotonic)


async def get_status() -> CachedStatus:
    return cached_status()


StatusDep = Annotated[CachedStatus, Depends(get_status)]


@lru_cache(maxsize=1)
def _tagging() -> TaggingService:
    return bootstrap.tagging(get_settings())


async def get_tagging() -> TaggingService:
    return _tagging()


TaggingDep = Annotated[TaggingService, Depends(get_tagging)]


def scoped_index(index: SearchIndex, audit: RequestAudit, permission: Permission) -> ScopedIndex:
    """The index as the request's principal may read it with `permission`."""
    if audit.principal is None:  # a route reading mail always opens its audit with a principal
        raise RuntimeError("scoped_index needs an authenticated request")
    return ScopedIndex(index, audit.principal.scope(permission))


@lru_cache(maxsize=1)
def _retention() -> RetentionService:
    return bootstrap.retention(get_settings())


async def get_retention() -> RetentionService:
    return _retention()


@lru_cache(maxsize=1)
def _holds() -> HoldService:
    return HoldService(_retention())


async def get_holds() -> HoldService:
    return _holds()


@lru_cache(maxsize=1)
def _disposition() -> Disposition:
    return bootstrap.disposition(get_settings())


async def get_disposition() -> Disposition:
    return _disposition()


@lru_cache(maxsize=1)
def _exports() -> ExportService:
    from ingest.tasks import enqueue_export  # the API hands builds to the Celery workers

    return bootstrap.exports(get_settings(), enqueue_export)


async def get_exports() -> ExportService:
    return _exports()


@lru_cache(maxsize=1)
def _signer() -> ManifestSigner:
    return bootstrap.export_signer(get_settings())


async def get_signer() -> ManifestSigner:
    return _signer()


RetentionDep = Annotated[RetentionService, Depends(get_retention)]
HoldsDep = Annotated[HoldService, Depends(get_holds)]
DispositionDep = Annotated[Disposition, Depends(get_disposition)]
ExportsDep = Annotated[ExportService, Depends(get_exports)]
SignerDep = Annotated[ManifestSigner, Depends(get_signer)]


@dataclass
class RetentionFollowUp:
    """Retention work a change leaves behind, run after its answer is sent: a message whose
    tags changed is decided again; a changed policy, hold, rule or directory recomputes all."""

    background: BackgroundTasks
    retention: RetentionService

    def redecide(self, ids: list[str]) -> None:
        self.background.add_task(self.retention.redecide, ids)

    def recompute(self) -> None:
        self.background.add_task(recompute, self.retention)


async def get_follow_up(background: BackgroundTasks, retention: RetentionDep) -> RetentionFollowUp:
    return RetentionFollowUp(background, retention)


FollowUpDep = Annotated[RetentionFollowUp, Depends(get_follow_up)]
