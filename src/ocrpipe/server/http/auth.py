"""The authorisation hook of every ``/v1`` route.

Today every caller on the bind address is allowed (the default bind is 127.0.0.1). Access control (API
keys, mTLS identities) plugs in here: replace :func:`authorize` via ``app.dependency_overrides`` or
extend it; it receives the request and raises an error to refuse it.
"""

from __future__ import annotations

from fastapi import Request


async def authorize(request: Request) -> None:
    """API keys, scopes and rate limits: see :mod:`ocrpipe.server.security.auth` (sets ``request.state.principal``)."""
    from ocrpipe.server.security.auth import authorize as check

    await check(request)
