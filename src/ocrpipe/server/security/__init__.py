"""Keeping patient data private: API keys with scopes and tenants, rate limits, the audit log, TLS,
retention and deletion.

:func:`install` plugs the layer into the FastAPI app of :mod:`ocrpipe.server.app`: the ``/v1`` auth
hook (:func:`ocrpipe.server.http.deps.authorize`, calling :func:`ocrpipe.server.security.auth.check_request`)
decides who may call what, and a middleware writes the audit log. The ``/v1/admin`` and ``DELETE /v1/jobs/{id}``
routes live with the other REST routes in :mod:`ocrpipe.server.http`.
"""

from __future__ import annotations

from typing import Any


def install(app: Any, settings: Any = None) -> None:
    """Add the security middleware, state and OpenAPI additions to ``app`` (call before other middleware)."""
    from ocrpipe.server.security import openapi
    from ocrpipe.server.security.audit import SecurityMiddleware
    from ocrpipe.server.security.auth import SecurityState
    from ocrpipe.server.security.settings import SecuritySettings

    app.state.security = SecurityState(settings or SecuritySettings())
    app.add_middleware(SecurityMiddleware)
    openapi.install(app)


def configure(app: Any, settings: Any) -> None:
    """Replace the security settings of an app made by ``create_app`` (used by ``ocrpipe serve``)."""
    from ocrpipe.server.security.auth import SecurityState

    app.state.security = SecurityState(settings)
