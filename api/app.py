"""The FastAPI application: routes, error handlers and the lifespan that owns the clients."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.errors import install_error_handlers
from api.gate import RequestGate
from api.openapi import install_openapi
from api.routes import (
    campaigns,
    clicks,
    codec,
    funnel,
    health,
    metrics,
    networks,
    personal_data,
    pixels,
    postbacks,
    reading,
    redeliveries,
    settings,
)
from relay.metrics import postback_refused
from relay.runtime import Runtime, running_intake

RuntimeFactory = Callable[[], AbstractAsyncContextManager[Runtime]]


def create_app(runtime_factory: RuntimeFactory) -> FastAPI:
    """Build the app; `runtime_factory` opens the clients when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime_factory() as runtime, running_intake(runtime):
            app.state.runtime = runtime
            yield

    # /docs and /redoc load Swagger UI and ReDoc from the pinned fastapi-offline package,
    # served here (/static-offline-docs), not from a CDN: they work without internet.
    app = FastAPIOffline(
        title="Relay",
        summary="Postbacks in; Meta Conversions API and TikTok Events API out.",
        version="0.1.0",
        lifespan=lifespan,
        # Swagger UI would otherwise ask validator.swagger.io to check the document.
        swagger_ui_parameters={"validatorUrl": None},
    )
    install_error_handlers(app)
    # Routes are matched in order: the postback and the click, the hot paths, come first.
    for module in (
        postbacks,
        clicks,
        health,
        metrics,
        networks,
        campaigns,
        pixels,
        funnel,
        settings,
        reading,
        redeliveries,
        personal_data,
        codec,
    ):
        app.include_router(module.router)
    app.add_middleware(codec.CodecCors)  # inside the gate: the postback never meets it
    # The postback, the hot path, is served by the gate itself (api/gate.py, `_Direct`).
    app.add_middleware(
        RequestGate,
        body_caps={"/postback": postbacks.MAX_BODY},
        direct={"/postback": postbacks.postback},
        refused={"/postback": postback_refused},
    )
    install_openapi(app)
    return app
