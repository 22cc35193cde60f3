"""HTTP routes (thin): parse the request, call the engine or the job store, shape the JSON."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from datetime import datetime
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Header, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from ocrpipe.engine import decode as imageio
from ocrpipe.errors import ErrorCode, InputError
from ocrpipe.server import errors
from ocrpipe.server.app import ServiceState
from ocrpipe.server.errors import ServiceError
from ocrpipe.server.http import schemas
from ocrpipe.server.http.auth import authorize
from ocrpipe.server.security.auth import Caller, scoped_idempotency_key, tenant_of
from ocrpipe.server.storage.jobs import IdempotencyConflict
from ocrpipe.server.storage.models import JobStatus

router = APIRouter(prefix="/v1", dependencies=[Depends(authorize)], tags=["ocr"])
system_router = APIRouter(tags=["system"])


def state(request: Request) -> ServiceState:
    return request.app.state.svc


State = Annotated[ServiceState, Depends(state)]


async def inflight_slot(request: Request) -> AsyncIterator[None]:
    """Bound concurrent synchronous OCR requests; beyond the bound answer 429 + Retry-After."""
    svc = state(request)
    if svc.inflight >= svc.settings.max_inflight:
        svc.metrics.rejected.labels(reason="inflight").inc()
        raise ServiceError(429, errors.TOO_MANY_REQUESTS,
                           f"{svc.inflight} OCR requests are in progress; retry shortly", retry_after=1)
    svc.inflight += 1
    svc.metrics.inflight.set(svc.inflight)
    try:
        yield
    finally:
        svc.inflight -= 1
        svc.metrics.inflight.set(svc.inflight)


Slot = Depends(inflight_slot)


async def read_upload(upload: UploadFile, svc: ServiceState) -> tuple[bytes, str | None]:
    """The upload's bytes, refusing empty and oversize files before the engine sees them."""
    data = await upload.read()
    name = upload.filename or None
    if not data:
        raise InputError(ErrorCode.EMPTY_INPUT, f"{name or 'the uploaded file'} is empty (0 bytes)")
    if len(data) > svc.settings.max_upload_bytes:
        limit = svc.settings.max_upload_bytes
        raise InputError(ErrorCode.FILE_TOO_LARGE,
                         f"{name or 'upload'} is {len(data)} bytes; the limit is {limit}")
    return data, name


def check_media(data: bytes, name: str | None) -> None:
    if imageio.sniff(data) is None:
        raise InputError(ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                         f"{name or 'the upload'} is not a supported image or PDF "
                         "(PNG, JPEG, TIFF, BMP, WebP, GIF, PDF)")


def check_count(files: list[UploadFile], svc: ServiceState) -> None:
    if len(files) > svc.settings.max_files:
        raise ServiceError(413, ErrorCode.TOO_MANY_PAGES.value,
                           f"{len(files)} files in one request; the limit is {svc.settings.max_files}")


# ---- synchronous OCR ---------------------------------------------------------------------------------


@router.post("/ocr", dependencies=[Slot], summary="OCR one image or PDF synchronously",
             response_model=schemas.DocumentOut, responses=schemas.ERRORS)
async def ocr(svc: State, file: Annotated[UploadFile, File(description="image or PDF")]) -> dict[str, Any]:
    """Returns the Document JSON: engine, pages with lines (text, confidence, box), text, timings."""
    data, name = await read_upload(file, svc)
    doc = await svc.engine.ocr(data, name)
    return doc.to_dict()


@router.post("/batch_ocr", dependencies=[Slot], summary="OCR many files in one request",
             response_model=schemas.BatchOut, responses=schemas.ERRORS)
async def batch_ocr(svc: State, files: Annotated[list[UploadFile], File(description="images or PDFs")]
                    ) -> dict[str, Any]:
    """All pages of all files go through the page workers and the batcher together.

    Each entry of ``documents`` is a Document (plus ``filename``) or, for a file that could not be read,
    ``{"filename", "error": {"code", "message", "stage"}}``.
    """
    check_count(files, svc)
    uploads = [(await f.read(), f.filename or None) for f in files]  # empty/bad files: per-file errors
    docs = await svc.engine.ocr_many(uploads)
    return {"documents": [{"filename": n, **d.to_dict()} for (_, n), d in zip(uploads, docs, strict=True)]}


@router.post("/detection", dependencies=[Slot], summary="Text boxes of an image or PDF",
             response_model=schemas.DetectionOut, responses=schemas.ERRORS)
async def detection(svc: State, file: Annotated[UploadFile, File(description="image or PDF")]
                    ) -> dict[str, Any]:
    data, name = await read_upload(file, svc)
    return {"pages": await svc.engine.detect(data, name)}


@router.post("/recognition", dependencies=[Slot], summary="Recognise one or many line images",
             response_model=schemas.RecognitionOut, responses=schemas.ERRORS)
async def recognition(svc: State, files: Annotated[list[UploadFile], File(description="line images")]
                      ) -> dict[str, Any]:
    """Each file is one text line (already cropped); returns text and confidence per line, in order."""
    check_count(files, svc)
    uploads = [await read_upload(f, svc) for f in files]
    results = await svc.engine.recognize_lines(uploads)
    return {"engine": svc.engine.pipeline.recognizer.name,
            "results": [{"text": r.text, "confidence": round(float(r.confidence), 4)} for r in results]}


async def queued_jobs(svc: ServiceState) -> int:
    """Jobs waiting to run, counted in the database at most once a second (keeps acks fast)."""
    now = time.monotonic()
    if now - svc.queued_checked > 1.0:
        svc.queued_checked = now
        svc.queued_count = await run_in_threadpool(svc.store.count_queued)
    return svc.queued_count


# ---- jobs --------------------------------------------------------------------------------------------


@router.post("/jobs", status_code=202, summary="Queue an OCR job (durable before the 202)",
             response_model=schemas.JobOut,
             responses={200: {"description": "Idempotent replay: the job created earlier with this key"},
                        409: {"model": schemas.ErrorBody, "description": "key reused with other content"},
                        **schemas.ERRORS})
async def create_job(svc: State, response: Response, caller: Caller,
                     file: Annotated[UploadFile, File(description="image or PDF")],
                     idempotency_key: Annotated[str | None, Header(max_length=255)] = None) -> dict[str, Any]:
    """The upload is written (fsync) and the job row committed before the answer; poll ``/v1/jobs/{id}``."""
    key = scoped_idempotency_key(caller, idempotency_key)
    data, name = await read_upload(file, svc)
    check_media(data, name)
    queued = await queued_jobs(svc)
    if queued >= svc.settings.max_queued_jobs:
        svc.metrics.rejected.labels(reason="jobs").inc()
        raise ServiceError(429, errors.TOO_MANY_REQUESTS, f"{queued} jobs are waiting; retry later",
                           retry_after=30)
    try:
        job, created = await run_in_threadpool(svc.store.create, data, filename=name,
                                               content_type=file.content_type, idempotency_key=key,
                                               tenant=tenant_of(caller), submitted_by=caller.name if caller else None)
    except IdempotencyConflict as exc:
        raise ServiceError(409, errors.IDEMPOTENCY_CONFLICT, str(exc)) from exc
    if created:
        svc.queued_count += 1
        svc.runner.wake()
    else:
        response.status_code = 200
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job.to_dict()


@router.get("/jobs", summary="Recent jobs", response_model=schemas.JobListOut)
async def list_jobs(svc: State, caller: Caller, status: JobStatus | None = None, since: datetime | None = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    jobs = await run_in_threadpool(svc.store.list, status=status.value if status else None, since=since,
                                   limit=limit, tenant=tenant_of(caller))
    return {"jobs": [j.to_dict() for j in jobs]}


@router.get("/jobs/{job_id}", summary="A job's status", response_model=schemas.JobOut,
            responses={404: {"model": schemas.ErrorBody}})
async def get_job(svc: State, job_id: str, caller: Caller) -> dict[str, Any]:
    job = await run_in_threadpool(svc.store.get, job_id, tenant_of(caller))
    if job is None:
        raise ServiceError(404, errors.JOB_NOT_FOUND, f"no job {job_id!r} (unknown or past retention)")
    return job.to_dict()


@router.get("/jobs/{job_id}/result", summary="A finished job's Document JSON",
            responses={200: {"model": schemas.DocumentOut}, 404: {"model": schemas.ErrorBody},
                       409: {"model": schemas.ErrorBody, "description": "not finished yet"},
                       422: {"model": schemas.ErrorBody, "description": "the job failed: its code and stage"}})
async def job_result(svc: State, job_id: str, caller: Caller) -> JSONResponse:
    found = await run_in_threadpool(svc.store.result, job_id, tenant_of(caller))
    if found is None:
        raise ServiceError(404, errors.JOB_NOT_FOUND, f"no job {job_id!r} (unknown or past retention)")
    job, result = found
    if job.status == JobStatus.FAILED:
        return JSONResponse(errors.error_body(job.error_code or errors.JOB_FAILED, job.error_message or "",
                                              stage=job.error_stage, job_id=job.id), status_code=422)
    if result is None:
        raise ServiceError(409, errors.JOB_NOT_FINISHED,
                           f"job {job_id} is {job.status}; poll /v1/jobs/{job_id}", retry_after=1)
    return JSONResponse(result)


@router.get("/jobs/{job_id}/pages/{index}", summary="A page of the job's upload as JPEG (for the web page)",
            response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
async def job_page(svc: State, job_id: str, index: int, caller: Caller) -> Response:
    found = await run_in_threadpool(svc.store.upload_of, job_id, tenant_of(caller))
    if found is None or not found[0].is_file():
        raise ServiceError(404, errors.JOB_NOT_FOUND, f"no stored upload for job {job_id!r}")
    path, name = found
    images = await asyncio.get_running_loop().run_in_executor(
        svc.engine.executor, svc.engine.decode, path.read_bytes(), name)
    if not 0 <= index < len(images):
        raise ServiceError(404, errors.NOT_FOUND, f"job {job_id} has {len(images)} page(s)")
    return Response(await run_in_threadpool(_jpeg, images[index]), media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})


def _jpeg(image: Any) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=85)
    return buf.getvalue()


# ---- system ------------------------------------------------------------------------------------------


@system_router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index() -> HTMLResponse:
    page = resources.files("ocrpipe.server.http") / "static" / "index.html"
    return HTMLResponse(page.read_text(encoding="utf-8"))


@system_router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@system_router.get("/readyz", summary="Models loaded and database reachable")
async def readyz(request: Request) -> JSONResponse:
    svc: ServiceState | None = getattr(request.app.state, "svc", None)
    if svc is None:
        return JSONResponse(errors.error_body("not_ready", "models are loading"), status_code=503)
    try:
        await run_in_threadpool(svc.store.ping)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return JSONResponse(errors.error_body("database_unavailable", type(exc).__name__), status_code=503)
    return JSONResponse({"status": "ready", "engine": svc.engine.pipeline.engine_name,
                         "batching": svc.settings.batching, "models": svc.engine.models,
                         "database": svc.store.engine.dialect.name})


@system_router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    svc: ServiceState = request.app.state.svc
    if svc.engine.batcher is not None:
        svc.metrics.queue_depth.set(svc.engine.batcher.depth)
    return Response(svc.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
