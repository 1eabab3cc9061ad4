"""Liveness and readiness.

Anyone may ask whether Relay is ready, and which check or part is not; why, and the inbox's
numbers, are for the admin bearer token (they name files and exceptions, and tell how full
the inbox is)."""

import asyncio
import logging

from fastapi import APIRouter, Request
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, Field

from api.answers import JSONAnswer
from api.deps import RuntimeDep, admin_refusal
from relay.core.supervision import PARTS
from relay.runtime import Runtime

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
    temporal: str = Field(
        examples=["ok", "down", "down: RPCError"],
        description="ok or down; with the admin token, down says why.",
    )
    clickhouse: str = Field(examples=["ok"], description="As `temporal`.")
    inbox: InboxStats | None = Field(
        default=None, description="Only with the admin token (and where the API runs)."
    )
    stuck: dict[str, str] = Field(
        default_factory=dict,
        description="Background parts that cannot make progress now (forwarder, inbox, a "
        "ClickHouse batch writer, ...), each with why for the admin token and `stuck` for "
        "anyone else; empty when none is.",
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
    responses={
        503: {"model": Readiness, "description": "Not ready: names the failing check or part."}
    },
)
async def readyz(request: Request, runtime: RuntimeDep) -> JSONAnswer:
    """200 only when Temporal and ClickHouse answer and no background part (the forwarder,
    the inbox, a batch writer) is stuck; 503 otherwise, `stuck` naming each stuck part.

    Without credentials (an orchestrator's probe): ready or not, and which check or part
    fails. With the admin bearer token (a wrong one counts as none): why each fails, and
    the inbox's depth, capacity and oldest entry's age."""
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
    if not _is_admin(request, runtime):
        public = {name: v.split(":")[0] for name, v in checks.items()}  # "down", not why
        answer = {"ready": ready, **public, "stuck": dict.fromkeys(stuck, "stuck")}
        return JSONAnswer(answer, status_code=200 if ready else 503)
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
    return JSONAnswer(body, status_code=200 if ready else 503)


def _is_admin(request: Request, runtime: Runtime) -> bool:
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    return scheme.lower() == "bearer" and admin_refusal(token, runtime.admin_token) is None
