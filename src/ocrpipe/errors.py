"""The one error-code enum and exception tree of engine, server and client.

Exception hierarchy (one place)::

    OcrError                 base: carries a stable ``code``, the failing ``stage`` and an HTTP status
    ├── InputError           the caller's input is unusable (empty, corrupt, wrong type, too large) -> 4xx
    ├── EngineError          a model or internal stage failed on valid input -> 5xx
    └── ServiceError         (ocrpipe.server.errors) a service-level refusal: overload, unknown job, auth
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Stage(enum.StrEnum):
    """Pipeline stages, as reported in timings and in errors."""

    DECODE = "decode"
    PREPROCESS = "preprocess"
    DETECT = "detect"
    RECOGNIZE = "recognize"
    POSTPROCESS = "postprocess"
    STORE = "store"


class ErrorCode(enum.StrEnum):
    """Every stable machine-readable error code, of every transport: the REST body's ``error.code``, gRPC's
    ``ocrpipe-error-code`` trailing metadata, job records, the CLI. Each is documented in the README's
    "Errors" table; :data:`STATUSES` gives its HTTP and gRPC status."""

    # the caller's input
    EMPTY_INPUT = "empty_input"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    CORRUPT_IMAGE = "corrupt_image"
    CORRUPT_PDF = "corrupt_pdf"
    ENCRYPTED_PDF = "encrypted_pdf"
    FILE_TOO_LARGE = "file_too_large"
    IMAGE_TOO_LARGE = "image_too_large"
    IMAGE_TOO_SMALL = "image_too_small"
    STORAGE_FULL = "storage_full"
    TOO_MANY_PAGES = "too_many_pages"
    TOO_MANY_PAGES_FOR_SYNC = "too_many_pages_for_sync"
    """More pages than a synchronous request takes: send the file to ``POST /v1/jobs``."""
    FILE_NOT_FOUND = "file_not_found"
    INVALID_ARGUMENT = "invalid_argument"
    # the engine
    MODEL_NOT_FOUND = "model_not_found"
    MODEL_CHECKSUM_MISMATCH = "model_checksum_mismatch"
    ENGINE_FAILURE = "engine_failure"
    INFERENCE_THREAD_DIED = "inference_thread_died"
    """The inference thread holding the item died (it was replaced); the same request may be retried."""
    DEADLINE_EXCEEDED = "deadline_exceeded"
    """The request's or job's time budget ran out before its pages were processed (on a Ray cluster also: no
    replica answered a page within the synchronous budget)."""
    INFERENCE_UNAVAILABLE = "inference_unavailable"
    """``/readyz``: the batcher cannot keep its inference threads alive."""
    REPLICA_LOST = "replica_lost"
    """On a Ray cluster: the replicas (or nodes) working on the request's pages died under every attempt, or
    no live replica answered the resends in time; the same request may be retried."""
    # the service: load, jobs, resources
    OVERLOADED = "overloaded"
    TOO_MANY_REQUESTS = "too_many_requests"
    SHUTTING_DOWN = "shutting_down"
    NOT_READY = "not_ready"
    DATABASE_UNAVAILABLE = "database_unavailable"
    JOB_NOT_FOUND = "job_not_found"
    JOB_NOT_FINISHED = "job_not_finished"
    JOB_FAILED = "job_failed"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    HTTP_ERROR = "http_error"
    INTERNAL_ERROR = "internal_error"
    # access control
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate_limited"
    INVALID_KEY_REQUEST = "invalid_key_request"
    # authoring and deploying templates
    INVALID_TEMPLATE = "invalid_template"
    TEMPLATE_DRAFT_NOT_FOUND = "template_draft_not_found"
    TEMPLATE_EXISTS = "template_exists"
    NO_TEMPLATE_FOLDER = "no_template_folder"


@dataclass(frozen=True)
class Status:
    """How a code is answered: the HTTP status and the gRPC status name (``grpc.StatusCode`` member)."""

    http: int
    grpc: str


STATUSES: dict[ErrorCode, Status] = {
    ErrorCode.EMPTY_INPUT: Status(400, "INVALID_ARGUMENT"),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: Status(415, "INVALID_ARGUMENT"),
    ErrorCode.CORRUPT_IMAGE: Status(400, "INVALID_ARGUMENT"),
    ErrorCode.CORRUPT_PDF: Status(400, "INVALID_ARGUMENT"),
    ErrorCode.ENCRYPTED_PDF: Status(400, "INVALID_ARGUMENT"),
    ErrorCode.FILE_TOO_LARGE: Status(413, "RESOURCE_EXHAUSTED"),
    ErrorCode.IMAGE_TOO_LARGE: Status(413, "RESOURCE_EXHAUSTED"),
    ErrorCode.IMAGE_TOO_SMALL: Status(400, "INVALID_ARGUMENT"),
    ErrorCode.STORAGE_FULL: Status(507, "RESOURCE_EXHAUSTED"),
    ErrorCode.TOO_MANY_PAGES: Status(413, "RESOURCE_EXHAUSTED"),
    ErrorCode.TOO_MANY_PAGES_FOR_SYNC: Status(413, "RESOURCE_EXHAUSTED"),
    ErrorCode.FILE_NOT_FOUND: Status(404, "NOT_FOUND"),
    ErrorCode.INVALID_ARGUMENT: Status(400, "INVALID_ARGUMENT"),
    ErrorCode.MODEL_NOT_FOUND: Status(500, "INTERNAL"),
    ErrorCode.MODEL_CHECKSUM_MISMATCH: Status(500, "INTERNAL"),
    ErrorCode.ENGINE_FAILURE: Status(500, "INTERNAL"),
    ErrorCode.INFERENCE_THREAD_DIED: Status(503, "UNAVAILABLE"),
    ErrorCode.DEADLINE_EXCEEDED: Status(504, "DEADLINE_EXCEEDED"),
    ErrorCode.INFERENCE_UNAVAILABLE: Status(503, "UNAVAILABLE"),
    ErrorCode.REPLICA_LOST: Status(503, "UNAVAILABLE"),
    ErrorCode.OVERLOADED: Status(503, "UNAVAILABLE"),
    ErrorCode.TOO_MANY_REQUESTS: Status(429, "RESOURCE_EXHAUSTED"),
    ErrorCode.SHUTTING_DOWN: Status(503, "UNAVAILABLE"),
    ErrorCode.NOT_READY: Status(503, "UNAVAILABLE"),
    ErrorCode.DATABASE_UNAVAILABLE: Status(503, "UNAVAILABLE"),
    ErrorCode.JOB_NOT_FOUND: Status(404, "NOT_FOUND"),
    ErrorCode.JOB_NOT_FINISHED: Status(409, "FAILED_PRECONDITION"),
    ErrorCode.JOB_FAILED: Status(422, "FAILED_PRECONDITION"),
    ErrorCode.IDEMPOTENCY_CONFLICT: Status(409, "ALREADY_EXISTS"),
    ErrorCode.NOT_FOUND: Status(404, "NOT_FOUND"),
    ErrorCode.METHOD_NOT_ALLOWED: Status(405, "UNIMPLEMENTED"),
    ErrorCode.HTTP_ERROR: Status(400, "INVALID_ARGUMENT"),
    ErrorCode.INTERNAL_ERROR: Status(500, "INTERNAL"),
    ErrorCode.UNAUTHORIZED: Status(401, "UNAUTHENTICATED"),
    ErrorCode.FORBIDDEN: Status(403, "PERMISSION_DENIED"),
    ErrorCode.RATE_LIMITED: Status(429, "RESOURCE_EXHAUSTED"),
    ErrorCode.INVALID_KEY_REQUEST: Status(400, "INVALID_ARGUMENT"),
    ErrorCode.INVALID_TEMPLATE: Status(400, "INVALID_ARGUMENT"),
    ErrorCode.TEMPLATE_DRAFT_NOT_FOUND: Status(404, "NOT_FOUND"),
    ErrorCode.TEMPLATE_EXISTS: Status(409, "ALREADY_EXISTS"),
    ErrorCode.NO_TEMPLATE_FOLDER: Status(409, "FAILED_PRECONDITION"),
}


class OcrError(Exception):
    """Base error: ``code`` is stable, ``message`` tells a person what to do.

    The HTTP status comes from :data:`STATUSES` unless ``http_status`` is given (a code answered with
    another status in one place, e.g. ``invalid_key_request`` as 409 when the key name is taken);
    ``retry_after`` (seconds) becomes the ``Retry-After`` header.
    """

    def __init__(self, code: ErrorCode | str, message: str, *, stage: Stage | None = None,
                 http_status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.stage = stage
        self.http_status = http_status or STATUSES[self.code].http
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body of DESIGN.md: ``{"error": {"code", "message", "stage"}}``."""
        err: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.stage is not None:
            err["stage"] = self.stage.value
        return {"error": err}

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable with its code, stage and status (process pools, Ray): the default pickles only ``args``.
        return _restore_error, (type(self), self.message, dict(self.__dict__))


def _restore_error(cls: type[OcrError], message: str, state: dict[str, Any]) -> OcrError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class InputError(OcrError):
    """The input cannot be processed as given (client error)."""

    def __init__(self, code: ErrorCode | str, message: str, *, stage: Stage | None = Stage.DECODE) -> None:
        super().__init__(code, message, stage=stage)


class EngineError(OcrError):
    """A model or internal stage failed on valid input (server error)."""
