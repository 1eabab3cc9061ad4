"""The FastAPI application: routes, error handlers and the lifespan that owns the clients."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import ui
from api.answers import JSONAnswer
from api.docs import frame_refusal, install_docs
from api.errors import install_error_handlers
from api.gate import Direct, DirectRoutes, RequestGate
from api.openapi import install_openapi
from api.routes import (
    campaigns,
    clicks,
    codec,
    conversions,
    funnel,
    health,
    logs,
    metrics,
    networks,
    personal_data,
    pixels,
    postbacks,
    redeliveries,
    settings,
    temporal_ui,
)
from relay.core.metrics import postback_refused
from relay.runtime import Runtime, running_intake

RuntimeFactory = Callable[[], AbstractAsyncContextManager[Runtime]]


def create_app(runtime_factory: RuntimeFactory) -> FastAPI:
    """Build the app; `runtime_factory` opens the clients when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime_factory() as runtime, running_intake(runtime):
            app.state.runtime = runtime
            try:
                yield
            finally:
                await temporal_ui.close(app.state)

    # /docs and /redoc load Swagger UI and ReDoc from the pinned fastapi-offline package,
    # served here (/static-offline-docs), not from a CDN: they work without internet. The
    # pages themselves are api.docs's, with their Content-Security-Policy.
    app = FastAPIOffline(
        docs_url=None,
        redoc_url=None,
        title="Relay",
        summary="Postbacks in; Meta Conversions API and TikTok Events API out.",
        version="0.1.0",
        lifespan=lifespan,
        default_response_class=JSONAnswer,  # every JSON answer ends with a newline
        # Swagger UI would otherwise ask validator.swagger.io to check the document.
        swagger_ui_parameters={"validatorUrl": None},
    )
    install_error_handlers(app)
    install_docs(app)
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
        conversions,
        logs,
        redeliveries,
        personal_data,
        codec,
    ):
        app.include_router(module.router)
    # The console's pages are not part of the API: left out of the OpenAPI document.
    # relay up's Temporal UI and its codec, for the console's signed-in users: before the
    # console's own routes, whose last one answers any other /ui path with a 404 page.
    app.include_router(temporal_ui.router)
    app.include_router(codec.console_router, include_in_schema=False)
    app.include_router(ui.router, include_in_schema=False)
    app.add_middleware(codec.CodecCors)  # inside the gate
    app.add_middleware(RequestGate, body_caps={"/postback": postbacks.MAX_BODY})
    app.add_middleware(PageHeaders, pages=PAGE_HEADERS)
    # The postback, the hot path, is served ahead of the router and the other middleware:
    # added last, this middleware runs first.
    postback = Direct("/postback", postbacks.postback, postbacks.MAX_BODY, postback_refused)
    app.add_middleware(DirectRoutes, routes=[postback])
    install_openapi(app)
    return app


# Pages a browser shows that other routes' modules serve: nothing may frame them (the token
# form could be overlaid, clickjacking), nor run a script or load anything in them.
PAGE_HEADERS = {
    "/codec/session": frame_refusal(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
}


class PageHeaders:
    """Adds `pages[path]`'s headers to every answer on that path (errors included)."""

    def __init__(self, app: ASGIApp, pages: dict[str, dict[str, str]]) -> None:
        self.app = app
        self.pages = pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extra = self.pages.get(scope["path"]) if scope["type"] == "http" else None
        if extra is None:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(extra)
            await send(message)

        await self.app(scope, receive, send_with_headers)
