"""Reading REST uploads; the checks themselves are :mod:`ocrpipe.server.intake`'s (shared with gRPC)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Response, UploadFile
from starlette.concurrency import run_in_threadpool

from ocrpipe.errors import ErrorCode
from ocrpipe.server.errors import ServiceError
from ocrpipe.server.http.deps import ServiceState
from ocrpipe.server.intake import Transport, check_upload, scoped_idempotency_key
from ocrpipe.server.security.auth import Principal, tenant_of
from ocrpipe.server.storage.jobs import IdempotencyConflict


async def read_upload(upload: UploadFile, svc: ServiceState) -> tuple[bytes, str | None]:
    """The upload's bytes after the intake checks (empty, byte limit, media type, pages and their sizes)."""
    data = await upload.read()
    name = upload.filename or None
    await run_in_threadpool(check_upload, data, name, limits=svc.settings.limits(), dpi=svc.settings.pdf_dpi)
    return data, name


def check_count(files: list[UploadFile], svc: ServiceState) -> None:
    """Refuse requests with more files than ``max_files``."""
    if len(files) > svc.settings.max_files:
        raise ServiceError(ErrorCode.TOO_MANY_PAGES,
                           f"{len(files)} files in one request; the limit is {svc.settings.max_files}")


async def queue_upload(svc: ServiceState, response: Response, caller: Principal | None, upload: UploadFile, *,
                       idempotency_key: str | None, scope: Transport, wake: Callable[[], None] | None,
                       **job: Any) -> dict[str, Any]:
    """Queue ``upload`` as a durable job (its own fields in ``job``): the intake checks, the queue check, the
    row committed, ``wake`` called for a new job; a replay of ``idempotency_key`` (scoped to the tenant and
    ``scope``) answers 200 with the earlier job. ``Location`` points to the job."""
    tenant = tenant_of(caller)
    key = scoped_idempotency_key(tenant, idempotency_key, scope)
    data, name = await read_upload(upload, svc)
    await run_in_threadpool(svc.queue.check)
    try:
        row, created = await run_in_threadpool(
            svc.store.create, data, filename=name, content_type=upload.content_type, idempotency_key=key,
            tenant=tenant, submitted_by=caller.name if caller else None, **job)
    except IdempotencyConflict as exc:
        raise ServiceError(ErrorCode.IDEMPOTENCY_CONFLICT, str(exc)) from exc
    if created:
        svc.queue.created()
        if wake is not None:
            wake()
    else:
        response.status_code = 200
    response.headers["Location"] = f"/v1/jobs/{row.id}"
    return row.to_dict()
