"""The API documentation pages, served entirely from this machine.

FastAPI's default ``/docs`` and ``/redoc`` load Swagger UI and ReDoc from a public CDN, so on an offline
machine -- where this product usually runs -- they are blank. Here the scripts and styles come from the
``fastapi-offline`` package (a plain copy of the Swagger UI and ReDoc distributions), mounted under
``/docs-assets``. The one inline script of the Swagger page carries a per-response nonce that the page's
Content-Security-Policy allows; nothing else inline may run.
"""

from __future__ import annotations

import secrets
from importlib import resources

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"

router = APIRouter(include_in_schema=False)


def docs_csp(nonce: str | None = None) -> str:
    """The Content-Security-Policy of the documentation pages (ReDoc needs inline styles and blob workers)."""
    script = f"'self' 'nonce-{nonce}'" if nonce else "'self'"
    return ("default-src 'self'; " f"script-src {script}; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; worker-src 'self' blob:; font-src 'self' data:; connect-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


@router.get("/docs")
async def swagger(request: Request) -> HTMLResponse:
    """Swagger UI for the OpenAPI schema."""
    nonce = secrets.token_urlsafe(16)
    page = get_swagger_ui_html(openapi_url=request.app.openapi_url or "/openapi.json",
                               title=f"{request.app.title} – API", swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                               swagger_css_url=f"{ASSETS}/swagger-ui.css", swagger_favicon_url=f"{ASSETS}/favicon.png")
    body = bytes(page.body).decode().replace("<script>", f'<script nonce="{nonce}">')
    return HTMLResponse(body, headers={"Content-Security-Policy": docs_csp(nonce)})


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc for the OpenAPI schema."""
    page = get_redoc_html(openapi_url=request.app.openapi_url or "/openapi.json", title=f"{request.app.title} – API",
                          redoc_js_url=f"{ASSETS}/redoc.standalone.js", redoc_favicon_url=f"{ASSETS}/favicon.png",
                          with_google_fonts=False)
    return HTMLResponse(bytes(page.body).decode(), headers={"Content-Security-Policy": docs_csp()})


def install(app: FastAPI) -> None:
    """Serve ``/docs``, ``/redoc`` and their assets (create the app with ``docs_url=None, redoc_url=None``)."""
    assets = resources.files("fastapi_offline") / "static"
    app.mount(ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")
    app.include_router(router)
