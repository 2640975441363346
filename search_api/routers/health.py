from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from search_api.deps import IndexDep, RawStoreDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(index: IndexDep, store: RawStoreDep) -> JSONResponse:
    """Each backend's state; 503 when any is unavailable."""
    backends: dict[str, Any] = {"elasticsearch": index.health(), "s3": store.health()}
    ok = all(b.get("status") in ("green", "yellow", "ok") for b in backends.values())
    return JSONResponse(
        {"status": "ok" if ok else "degraded", "backends": backends}, status_code=200 if ok else 503
    )
