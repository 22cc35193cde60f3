"""Admin routes (scope ``admin``): API keys, the audit log and the retention sweeper."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ocrpipe.errors import ErrorCode
from ocrpipe.server.errors import ServiceError
from ocrpipe.server.http.deps import Authorized
from ocrpipe.server.security.audit import audit_log
from ocrpipe.server.security.auth import key_store
from ocrpipe.server.security.keys import KeyAdminError, KeyExists

router = APIRouter(prefix="/v1/admin", dependencies=[Authorized], tags=["admin"])

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class KeyRequest(BaseModel):
    """A new API key."""

    name: str = Field(pattern=_NAME, description="unique key name, e.g. the clinic or device")
    scopes: list[str] = Field(min_length=1, description="subset of submit, read, admin")
    tenant: str | None = Field(None, pattern=_NAME, description="owner of the key's jobs (default: name)")
    rate_limit_per_min: float | None = Field(None, gt=0, le=1e6)


@router.get("/keys", summary="All API keys (no secrets)")
async def list_keys(request: Request) -> dict[str, Any]:
    keys = await run_in_threadpool(key_store(request.app).list)
    return {"keys": [k.to_dict() for k in keys]}


@router.post("/keys", status_code=201, summary="Create an API key (the key is shown only here)")
async def create_key(request: Request, body: KeyRequest) -> dict[str, Any]:
    try:
        info, secret = await run_in_threadpool(key_store(request.app).create, body.name, body.scopes,
                                               body.tenant, body.rate_limit_per_min)
    except KeyAdminError as exc:
        raise ServiceError(ErrorCode.INVALID_KEY_REQUEST, str(exc),
                           http_status=409 if isinstance(exc, KeyExists) else None) from exc
    return {**info.to_dict(), "key": secret}


@router.delete("/keys/{name}", summary="Revoke an API key (by name or id)")
async def revoke_key(request: Request, name: str) -> dict[str, Any]:
    try:
        info = await run_in_threadpool(key_store(request.app).revoke, name)
    except KeyAdminError as exc:
        raise ServiceError(ErrorCode.NOT_FOUND, str(exc)) from exc
    return info.to_dict()


@router.get("/audit", summary="Audit log: who read, submitted or deleted which job")
async def audit(request: Request, job_id: Annotated[str | None, Query(max_length=64)] = None,
                key_name: Annotated[str | None, Query(max_length=64)] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    entries = await run_in_threadpool(audit_log(request.app).query, job_id=job_id, key_name=key_name,
                                      limit=limit)
    return {"entries": [e.to_dict() for e in entries]}


@router.post("/retention/sweep", summary="Run the retention sweeper now")
async def sweep(request: Request) -> dict[str, Any]:
    removed = await run_in_threadpool(request.app.state.svc.runner.sweep)
    return {"removed": removed, "retention_hours": request.app.state.svc.settings.retention_hours}
