"""`/healthz`: whether PostgreSQL and Temporal answer (no token)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from seatflow.api.deps import Dep
from seatflow.api.models import Health
from seatflow.service.health import check_health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}},
            summary="Database and Temporal reachable")
async def healthz(d: Dep) -> JSONResponse:
    found = await check_health(d.engine, d.client)
    ok = found["database"] == "ok" and found["temporal"] == "ok"
    body = Health(status="ok" if ok else "degraded", **found)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
