"""FastAPI dependencies: backends and services, built once per process."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from fastapi import Depends

from archiver import bootstrap
from archiver.ports import JsonStore, RawStore, SearchIndex
from archiver.search.service import SearchService
from archiver.settings import Settings, get_settings
from archiver.tagging.service import TaggingService


@lru_cache(maxsize=1)
def get_raw_store() -> RawStore:
    return bootstrap.raw_store(get_settings())


@lru_cache(maxsize=1)
def get_json_store() -> JsonStore:
    return bootstrap.json_store(get_settings())


@lru_cache(maxsize=1)
def get_index() -> SearchIndex:
    return bootstrap.search_index(get_settings())


SettingsDep = Annotated[Settings, Depends(get_settings)]
RawStoreDep = Annotated[RawStore, Depends(get_raw_store)]
IndexDep = Annotated[SearchIndex, Depends(get_index)]


def get_search_service(index: IndexDep, settings: SettingsDep) -> SearchService:
    return bootstrap.search_service(settings, index)


SearchDep = Annotated[SearchService, Depends(get_search_service)]


@lru_cache(maxsize=1)
def get_tagging() -> TaggingService:
    return bootstrap.tagging(get_settings())


TaggingDep = Annotated[TaggingService, Depends(get_tagging)]
