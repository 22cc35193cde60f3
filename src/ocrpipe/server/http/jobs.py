"""Job routes: queue a durable OCR job, list and poll jobs, fetch a result or a page image, delete a job."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Header, Query, Response, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ocrpipe.document import document_from_dict
from ocrpipe.engine.decode import Limits, open_pages
from ocrpipe.errors import ErrorCode
from ocrpipe.server import errors
from ocrpipe.server.errors import ServiceError
from ocrpipe.server.http import formats, schemas
from ocrpipe.server.http.deps import Authorized, Caller, Slot, State
from ocrpipe.server.http.uploads import queue_upload
from ocrpipe.server.security.auth import tenant_of
from ocrpipe.server.storage.models import JobStatus
from ocrpipe.server.storage.retention import delete_job

router = APIRouter(prefix="/v1", dependencies=[Authorized], tags=["ocr"])


@router.post("/jobs", status_code=202, summary="Queue an OCR job (durable before the 202)",
             response_model=schemas.JobOut,
             responses={200: {"description": "Idempotent replay: the job created earlier with this key"},
                        409: {"model": schemas.ErrorBody, "description": "key reused with other content"},
                        **schemas.ERRORS})
async def create_job(svc: State, response: Response, caller: Caller,
                     file: Annotated[UploadFile, File(description="image or PDF")],
                     idempotency_key: Annotated[str | None, Header(max_length=255)] = None) -> dict[str, Any]:
    """The upload is written (fsync) and the job row committed before the answer; poll ``/v1/jobs/{id}``."""
    return await queue_upload(svc, response, caller, file, idempotency_key=idempotency_key, scope="rest",
                              wake=svc.runner.wake)


@router.get("/jobs", summary="Recent jobs", response_model=schemas.JobListOut)
async def list_jobs(svc: State, caller: Caller, status: JobStatus | None = None, since: datetime | None = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    """The caller's tenant's most recent jobs, newest first, optionally by status and submission time."""
    jobs = await run_in_threadpool(svc.store.list, status=status.value if status else None, since=since,
                                   limit=limit, tenant=tenant_of(caller))
    return {"jobs": [j.to_dict() for j in jobs]}


@router.get("/jobs/{job_id}", summary="A job's status", response_model=schemas.JobOut,
            responses={404: {"model": schemas.ErrorBody}})
async def get_job(svc: State, job_id: str, caller: Caller) -> dict[str, Any]:
    """The job's row: status, timestamps, error code and stage when it failed."""
    job = await run_in_threadpool(svc.store.get, job_id, tenant_of(caller))
    if job is None:
        raise ServiceError(ErrorCode.JOB_NOT_FOUND, f"no job {job_id!r} (unknown or past retention)")
    return job.to_dict()


@router.get("/jobs/{job_id}/result", summary="A finished job's Document JSON (or text, hOCR, ALTO, PDF)",
            responses={200: {"model": schemas.DocumentOut, **formats.FORMAT_RESPONSES[200]},
                       400: {"model": schemas.ErrorBody}, 404: {"model": schemas.ErrorBody},
                       409: {"model": schemas.ErrorBody, "description": "not finished yet"},
                       422: {"model": schemas.ErrorBody, "description": "the job failed: its code and stage"}})
async def job_result(svc: State, job_id: str, caller: Caller, format: formats.Format = "json") -> Response:
    """The Document JSON of a finished job, or with ``format`` its text, hOCR, ALTO XML or a searchable PDF
    of the stored upload; 409 while it runs, 422 with its error when it failed."""
    fmt = formats.check_format(format)
    found = await run_in_threadpool(svc.store.result, job_id, tenant_of(caller))
    if found is None:
        raise ServiceError(ErrorCode.JOB_NOT_FOUND, f"no job {job_id!r} (unknown or past retention)")
    job, result = found
    if job.status == JobStatus.FAILED:
        return JSONResponse(errors.error_body(job.error_code or ErrorCode.JOB_FAILED, job.error_message or "",
                                              stage=job.error_stage, job_id=job.id), status_code=422)
    if result is None:
        raise ServiceError(ErrorCode.JOB_NOT_FINISHED,
                           f"job {job_id} is {job.status}; poll /v1/jobs/{job_id}", retry_after=1)
    if fmt == "json":
        return JSONResponse(result)
    source = None
    if fmt == "pdf":
        upload = await run_in_threadpool(svc.store.upload_of, job_id, tenant_of(caller))
        if upload is not None and upload[0].is_file():
            source = await run_in_threadpool(upload[0].read_bytes)
    return await formats.rendered(document_from_dict(result), fmt, source)


@router.get("/jobs/{job_id}/pages/{index}", summary="A page of the job's upload as JPEG (for the web page)",
            dependencies=[Slot], response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
async def job_page(svc: State, job_id: str, index: int, caller: Caller) -> Response:
    """Page ``index`` (from 0) of the stored upload, re-encoded as JPEG.

    Only that page is rendered (a PDF is opened, not decoded whole), on the page workers, and the call
    counts against the in-flight limit like an OCR request."""
    found = await run_in_threadpool(svc.store.upload_of, job_id, tenant_of(caller))
    if found is None or not found[0].is_file():
        raise ServiceError(ErrorCode.JOB_NOT_FOUND, f"no stored upload for job {job_id!r}")
    path, name = found
    jpeg = await asyncio.get_running_loop().run_in_executor(
        svc.engine.executor, _page_jpeg, path, name, index, svc.settings.limits(), svc.settings.pdf_dpi)
    if jpeg is None:
        raise ServiceError(ErrorCode.NOT_FOUND, f"job {job_id} has no page {index}")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def _page_jpeg(path: Path, name: str | None, index: int, limits: Limits, dpi: int) -> bytes | None:
    """JPEG bytes of one page of a stored upload (None: no such page)."""
    with open_pages(path, filename=name, limits=limits, dpi=dpi) as pages:
        if not 0 <= index < len(pages):
            return None
        return _jpeg(pages.render(index))


def _jpeg(image: Any) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=85)
    return buf.getvalue()


@router.delete("/jobs/{job_id}", summary="Delete a job: upload, result and field rows at once")
async def delete_job_route(svc: State, job_id: str, caller: Caller) -> dict[str, Any]:
    """Removes the stored image, the job row with its result and every row derived from it."""
    counts = await run_in_threadpool(delete_job, svc.store.sessions, job_id, tenant_of(caller))
    if counts is None:
        raise ServiceError(ErrorCode.JOB_NOT_FOUND, f"no job {job_id!r} (unknown or past retention)")
    return {"id": job_id, "deleted": True, "removed": counts}
