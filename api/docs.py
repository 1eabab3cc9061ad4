"""`/docs` (Swagger UI) and `/redoc`, served with a Content-Security-Policy and framing
refused.

Their scripts and styles come from the pinned fastapi-offline package, served here under
`STATIC_URL` (they work without internet); the page's one inline script, Swagger UI's
start, is allowed by its hash, computed from the page as rendered. Nothing else may run,
and the pages may fetch from this origin only (the OpenAPI document, "Try it out")."""

import base64
import hashlib
import re

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import HTMLResponse

STATIC_URL = "/static-offline-docs"  # fastapi-offline's default mount
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
# Styles: ReDoc (styled-components) adds <style> elements, Swagger UI style attributes.
# Images and fonts: the stylesheets' data: URIs. Workers: ReDoc's search runs in a blob:.
_POLICY = (
    "default-src 'none'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def frame_refusal(policy: str) -> dict[str, str]:
    """The headers of a page that may not be framed (X-Frame-Options for old browsers)."""
    return {"Content-Security-Policy": policy, "X-Frame-Options": "DENY"}


def with_policy(page: HTMLResponse) -> HTMLResponse:
    """`page` with the policy allowing exactly its own inline scripts."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(page.body)
    )
    page.headers.update(frame_refusal(_POLICY.format(hashes=hashes)))
    return page


def install_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """The two pages, for an app made with `FastAPIOffline(docs_url=None, redoc_url=None)`
    (which still mounts the assets)."""
    title = app.title

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return with_policy(
            get_swagger_ui_html(
                openapi_url=f"{root}{app.openapi_url}",
                title=f"{title} - Swagger UI",
                swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
                swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
                swagger_ui_parameters=app.swagger_ui_parameters,
            )
        )

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return with_policy(
            get_redoc_html(
                openapi_url=f"{root}{app.openapi_url}",
                title=f"{title} - ReDoc",
                redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
                with_google_fonts=False,
            )
        )
