"""Liveness and readiness."""

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """200 while the process is up."""
    return {"status": "ok"}


class InboxStats(BaseModel):
    depth: int
    capacity: int
    oldest_age_s: float | None


class Readiness(BaseModel):
    ready: bool
    temporal: str = Field(examples=["ok", "down: RPCError"])
    clickhouse: str = Field(examples=["ok"])
    inbox: InboxStats | None = None


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: the failing check says why."}},
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """200 only when both Temporal and ClickHouse answer."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(runtime.temporal.service_client.check_health(), timeout=3)
        checks["temporal"] = "ok"
    except Exception as exc:
        checks["temporal"] = f"down: {type(exc).__name__}"
    try:
        await asyncio.to_thread(runtime.clickhouse.command, "SELECT 1")
        checks["clickhouse"] = "ok"
    except Exception as exc:
        checks["clickhouse"] = f"down: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    body: dict[str, object] = {"ready": ready, **checks}
    if runtime.intake is not None:
        # Postbacks are accepted while Temporal or ClickHouse is down; they wait here.
        stats = await runtime.intake.inbox.stats()
        body["inbox"] = {
            "depth": stats.depth,
            "capacity": stats.capacity,
            "oldest_age_s": None if stats.oldest_age_s is None else round(stats.oldest_age_s, 3),
        }
    return JSONResponse(body, status_code=200 if ready else 503)
