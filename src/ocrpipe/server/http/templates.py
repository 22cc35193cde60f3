"""Template routes: which templates the service reads printouts with."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ocrpipe.server.http.deps import Authorized, State

router = APIRouter(prefix="/v1", dependencies=[Authorized], tags=["templates"])


@router.get("/templates", summary="The templates in service (built-in and user)")
async def list_templates(svc: State) -> dict[str, Any]:
    """Name, device, version, page and source file of every template gRPC template jobs are read with;
    ``reload_error`` is the message of the last refused reload of the user folder (the last good set
    stays in service), else null."""
    listing: dict[str, Any] = svc.templates.listing()
    return listing
