"""Liveness and readiness."""

import asyncio
import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import RuntimeDep
from relay.supervision import PARTS

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


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
    stuck: dict[str, str] = Field(
        default_factory=dict,
        description="Background parts that cannot make progress now, with why "
        "(forwarder, inbox, a ClickHouse batch writer, ...); empty when none is.",
        examples=[
            {},
            {
                "inbox": "the inbox .data/inbox.sqlite cannot be written (OperationalError: "
                "database or disk is full); postbacks are answered 503"
            },
        ],
    )


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: the failing check says why."}},
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """200 only when Temporal and ClickHouse answer and no background part (the forwarder,
    the inbox, a batch writer) is stuck; 503 otherwise, `stuck` naming each stuck part."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(runtime.temporal.service_client.check_health(), timeout=3)
        checks["temporal"] = "ok"
    except Exception as exc:
        checks["temporal"] = f"down: {type(exc).__name__}"
    try:
        # Bounded: a paused server accepts the connection and never answers.
        await asyncio.wait_for(asyncio.to_thread(runtime.clickhouse.command, "SELECT 1"), 3)
        checks["clickhouse"] = "ok"
    except Exception as exc:
        checks["clickhouse"] = f"down: {type(exc).__name__}"
    stuck = PARTS.stuck()
    ready = all(v == "ok" for v in checks.values()) and not stuck
    body: dict[str, object] = {"ready": ready, **checks, "stuck": stuck}
    if runtime.intake is not None:
        # Postbacks are accepted while Temporal or ClickHouse is down; they wait here.
        inbox = runtime.intake.inbox
        try:
            stats = await asyncio.wait_for(inbox.stats(), timeout=3)
        except Exception as exc:  # the inbox cannot be read: its part says why
            log.warning("/readyz: inbox stats unavailable (%s: %s)", type(exc).__name__, exc)
            body["inbox"] = {"depth": inbox.depth, "capacity": inbox.capacity, "oldest_age_s": None}
        else:
            age = stats.oldest_age_s
            body["inbox"] = {
                "depth": stats.depth,
                "capacity": stats.capacity,
                "oldest_age_s": None if age is None else round(age, 3),
            }
    return JSONResponse(body, status_code=200 if ready else 503)
