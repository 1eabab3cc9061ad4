"""`GET /metrics`: Prometheus text for scrapers, behind a bearer token."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import RuntimeDep, admin_refusal, check_admin_token
from api.errors import install_error_handlers
from relay.core.metrics import ProcessState, render
from relay.runtime import Runtime

router = APIRouter(tags=["health"])
_bearer = HTTPBearer(auto_error=False)


async def require_scraper(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """The metrics token (`RELAY_METRICS_TOKEN`) or the admin token: counts of postbacks
    and deliveries are business data, though they hold no personal data."""
    given = credentials.credentials if credentials else ""
    metrics_token = runtime.settings.metrics_token
    if metrics_token is not None and admin_refusal(given, metrics_token.get_secret_value()) is None:
        return
    check_admin_token(request, runtime, given, "bearer")


async def _state(runtime: Runtime) -> ProcessState:
    intake = runtime.intake
    if intake is None:
        return ProcessState(config_cache_age_s=runtime.config_cache.age_s)
    inbox = intake.inbox
    oldest_age_s: float | None
    try:
        stats = await asyncio.wait_for(inbox.stats(), timeout=3)
        oldest_age_s = stats.oldest_age_s or 0.0
    except Exception:  # cannot be read now (relay_part_ready{part="inbox"} says why): no age
        oldest_age_s = None
    return ProcessState(
        config_cache_age_s=runtime.config_cache.age_s,
        inbox_depth=inbox.depth,
        inbox_capacity=inbox.capacity,
        inbox_oldest_age_s=oldest_age_s,
        postbacks_in_flight=intake.admission.in_flight,
    )


@router.get(
    "/metrics",
    dependencies=[Depends(require_scraper)],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
)
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus text: Relay's series (`relay_*`: postbacks by outcome, delivery attempts
    by destination and verdict, attempt latency, inbox depth, configuration cache age,
    connections closed for being too slow or too many, clients gone mid-body),
    the process's (`process_*`, `python_*`) and the Temporal SDK's (`temporal_*`).

    Bearer `RELAY_METRICS_TOKEN` or the admin token."""
    body = await render(await _state(runtime))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def metrics_app(runtime: Runtime) -> FastAPI:
    """`/metrics` alone, for `relay worker` (`RELAY_METRICS_PORT`)."""
    app = FastAPI(title="Relay worker metrics", openapi_url=None, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    app.include_router(router)
    app.state.runtime = runtime
    return app
