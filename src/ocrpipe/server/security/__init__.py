"""Keeping patient data private: API keys with scopes and tenants, rate limits, the audit log, TLS,
retention and deletion.

:func:`install` plugs the layer into the FastAPI app of :mod:`ocrpipe.server.app`: the ``/v1`` auth
hook (:func:`ocrpipe.server.security.auth.authorize`) decides who may call what, ``DELETE /v1/jobs/{id}`` and
the ``/v1/admin`` routes are added, and a middleware writes the audit log.
"""

from __future__ import annotations

from typing import Any


def install(app: Any, settings: Any = None) -> None:
    """Add the security routes, middleware and state to ``app`` (call before other middleware)."""
    from ocrpipe.server.errors import error_response
    from ocrpipe.server.security import openapi
    from ocrpipe.server.security.audit import SecurityMiddleware
    from ocrpipe.server.security.auth import AuthError, SecurityState
    from ocrpipe.server.security.routes import admin_router, jobs_router
    from ocrpipe.server.security.settings import SecuritySettings

    app.state.security = SecurityState(settings or SecuritySettings())
    app.include_router(jobs_router)
    app.include_router(admin_router)
    app.add_middleware(SecurityMiddleware)
    openapi.install(app)

    @app.exception_handler(AuthError)
    async def _auth_error(_: Any, exc: AuthError) -> Any:
        resp = error_response(exc.status, exc.code, exc.message)
        resp.headers.update(exc.headers)
        return resp


def configure(app: Any, settings: Any) -> None:
    """Replace the security settings of an app made by ``create_app`` (used by ``ocrpipe serve``)."""
    from ocrpipe.server.security.auth import SecurityState

    app.state.security = SecurityState(settings)
