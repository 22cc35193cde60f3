"""How the service answers a failure, on either transport.

Every code is a member of :class:`ocrpipe.errors.ErrorCode`. :func:`failure` maps any exception to one
:class:`Failure` (HTTP status, gRPC status, code, message, retry-after); the FastAPI handlers below and the
gRPC servicer (:mod:`ocrpipe.server.grpc.server`) both answer from it. REST bodies are
``{"error": {"code", "message"[, "stage"]}}``; gRPC puts the code in the trailing metadata
``ocrpipe-error-code`` and ``"<code>: <message>"`` in the status details.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ocrpipe.errors import STATUSES, ErrorCode, OcrError, Stage

log = logging.getLogger(__name__)

GRPC_CODE_KEY = "ocrpipe-error-code"
"""The gRPC trailing-metadata key that carries the error code."""


class ServiceError(OcrError):
    """A service-level refusal (overload, unknown job, conflict, access) with a stable code.

    The statuses come from :data:`ocrpipe.errors.STATUSES`; ``http_status`` overrides the HTTP one where a
    code is answered differently in one place.
    """

    def __init__(self, code: ErrorCode | str, message: str, *, retry_after: float | None = None,
                 http_status: int | None = None, stage: Stage | None = None) -> None:
        super().__init__(code, message, stage=stage, http_status=http_status, retry_after=retry_after)


@dataclass(frozen=True)
class Failure:
    """One failure as both transports answer it."""

    http_status: int
    grpc_status: grpc.StatusCode
    code: ErrorCode
    message: str
    retry_after: float | None = None
    stage: Stage | None = None

    def body(self, **extra: Any) -> dict[str, Any]:
        """The REST error body."""
        err: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.stage is not None:
            err["stage"] = self.stage.value
        return {"error": {**err, **extra}}

    def headers(self) -> dict[str, str]:
        """The REST headers the failure needs: ``Retry-After`` (whole seconds, never 0) and, for 401,
        ``WWW-Authenticate``."""
        out: dict[str, str] = {}
        if self.retry_after is not None:
            out["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        if self.http_status == 401:
            out["WWW-Authenticate"] = 'Bearer realm="ocrpipe"'
        return out

    def details(self) -> str:
        """The gRPC status details."""
        return f"{self.code.value}: {self.message}"


def failure(exc: BaseException) -> Failure:
    """The answer to ``exc`` on either transport; anything unexpected is ``internal_error`` (logged by the
    caller, never shown)."""
    if not isinstance(exc, OcrError):
        exc = ServiceError(ErrorCode.INTERNAL_ERROR, "internal error; see the server log")
    return Failure(http_status=exc.http_status, grpc_status=grpc.StatusCode[STATUSES[exc.code].grpc],
                   code=exc.code, message=exc.message, retry_after=exc.retry_after, stage=exc.stage)


def error_body(code: ErrorCode | str, message: str, **extra: Any) -> dict[str, Any]:
    """The REST error body for ``code`` (for answers that are not raised, e.g. a failed job's result, whose
    stored code may predate this version)."""
    return {"error": {"code": str(code), "message": message, **extra}}


def error_response(exc: BaseException, **extra: Any) -> JSONResponse:
    """The REST answer to ``exc``: status, JSON body and headers from :func:`failure`."""
    f = failure(exc)
    return JSONResponse(f.body(**extra), status_code=f.http_status, headers=f.headers() or None)


def grpc_abort(context: grpc.ServicerContext, exc: BaseException) -> NoReturn:
    """End a gRPC call with the answer :func:`failure` gives for ``exc`` (code in the trailing metadata)."""
    answer = failure(exc)
    context.set_trailing_metadata(((GRPC_CODE_KEY, answer.code.value),))
    context.abort(answer.grpc_status, answer.details())
    raise AssertionError("unreachable")  # context.abort raises


def install(app: FastAPI) -> None:
    """Register the exception handlers that turn every failure into the JSON error shape."""

    @app.exception_handler(OcrError)
    async def _ocr(_: Request, exc: OcrError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(_invalid_request(request, exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # 400 here is the multipart parser refusing the body (no boundary, a 1 MB part header, 50,000 fields):
        # the caller's request is malformed, which has a documented code of its own.
        code = {400: ErrorCode.INVALID_ARGUMENT, 404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED,
                413: ErrorCode.FILE_TOO_LARGE}.get(exc.status_code, ErrorCode.HTTP_ERROR)
        return error_response(ServiceError(code, str(exc.detail), http_status=exc.status_code))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return error_response(exc)


def _invalid_request(request: Request, exc: RequestValidationError) -> ServiceError:
    ctype = request.headers.get("content-type", "")
    multipart = ctype.startswith("multipart/form-data")
    if request.method == "POST" and _wants_multipart(request) and not multipart:
        return ServiceError(ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                            f"send the file as multipart/form-data, not {ctype or 'an empty body'!r}")
    problems = "; ".join(_problem(e) for e in exc.errors())
    return ServiceError(ErrorCode.INVALID_ARGUMENT, problems or "invalid request")


def _problem(err: Any) -> str:
    loc = [str(p) for p in err.get("loc", ())]
    if loc and loc[0] == "body" and err.get("type") == "missing":
        return f"multipart field {loc[-1]!r} is required"
    return f"{'.'.join(loc)}: {err.get('msg')}"


def _wants_multipart(request: Request) -> bool:
    return request.url.path in ("/v1/ocr", "/v1/batch_ocr", "/v1/jobs", "/v1/detection", "/v1/recognition")
