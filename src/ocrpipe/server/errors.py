"""The service's JSON errors: ``{"error": {"code", "message"[, "stage"]}}`` with a fitting status.

Engine errors (:class:`ocrpipe.errors.OcrError`) keep their own code and status; the service adds a few
codes of its own for HTTP-level conditions (overload, unknown job, idempotency conflict, ...).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ocrpipe.errors import ErrorCode, OcrError
from ocrpipe.server.scheduling.batcher import BatcherOverloaded

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """An HTTP-level error with a stable code."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


OVERLOADED = "overloaded"
TOO_MANY_REQUESTS = "too_many_requests"
JOB_NOT_FOUND = "job_not_found"
JOB_NOT_FINISHED = "job_not_finished"
JOB_FAILED = "job_failed"
IDEMPOTENCY_CONFLICT = "idempotency_conflict"
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
INTERNAL = "internal_error"


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(status: int, code: str, message: str, *, retry_after: float | None = None,
                   **extra: Any) -> JSONResponse:
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Register the exception handlers that turn every failure into the JSON error shape."""

    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, retry_after=exc.retry_after)

    @app.exception_handler(OcrError)
    async def _ocr(_: Request, exc: OcrError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.http_status)

    @app.exception_handler(BatcherOverloaded)
    async def _overloaded(_: Request, exc: BatcherOverloaded) -> JSONResponse:
        return error_response(503, OVERLOADED, str(exc), retry_after=exc.retry_after)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        ctype = request.headers.get("content-type", "")
        multipart = ctype.startswith("multipart/form-data")
        if request.method == "POST" and _wants_multipart(request) and not multipart:
            return error_response(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE.value,
                                  f"send the file as multipart/form-data, not {ctype or 'an empty body'!r}")
        problems = "; ".join(_problem(e) for e in exc.errors())
        return error_response(400, ErrorCode.INVALID_ARGUMENT.value, problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: NOT_FOUND, 405: METHOD_NOT_ALLOWED}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return error_response(500, INTERNAL, "internal error; see the server log")


def _problem(err: Any) -> str:
    loc = [str(p) for p in err.get("loc", ())]
    if loc and loc[0] == "body" and err.get("type") == "missing":
        return f"multipart field {loc[-1]!r} is required"
    return f"{'.'.join(loc)}: {err.get('msg')}"


def _wants_multipart(request: Request) -> bool:
    return request.url.path in ("/v1/ocr", "/v1/batch_ocr", "/v1/jobs", "/v1/detection", "/v1/recognition")
