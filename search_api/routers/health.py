from __future__ import annotations

from typing import Any

import redis
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from search_api.deps import IndexDep, RawStoreDep, SettingsDep

router = APIRouter(tags=["health"])


def broker_health(url: str) -> dict[str, Any]:
    """Redis carries the pipeline's tasks: searching works without it, archiving does not."""
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as exc:
        return {"status": "unavailable", "error": f"{type(exc).__name__}: {exc}"}
    return {"status": "ok"}


@router.get("/healthz")
def healthz(index: IndexDep, store: RawStoreDep, settings: SettingsDep) -> JSONResponse:
    """Each backend's state; 503 when any is unavailable."""
    backends: dict[str, Any] = {
        "elasticsearch": index.health(),
        "s3": store.health(),
        "redis": broker_health(settings.redis_url),
    }
    ok = all(b.get("status") in ("green", "yellow", "ok") for b in backends.values())
    return JSONResponse(
        {"status": "ok" if ok else "degraded", "backends": backends}, status_code=200 if ok else 503
    )
