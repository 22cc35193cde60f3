"""The one error-code enum and exception tree of engine, server and client.

Exception hierarchy (one place)::

    OcrError                 base: carries a stable ``code``, the failing ``stage`` and an HTTP status
    ├── InputError           the caller's input is unusable (empty, corrupt, wrong type, too large) -> 4xx
    └── EngineError          a model or internal stage failed on valid input -> 5xx
"""

from __future__ import annotations

import enum
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
    """Stable machine-readable error codes (API, CLI and job records use the same strings)."""

    EMPTY_INPUT = "empty_input"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    CORRUPT_IMAGE = "corrupt_image"
    CORRUPT_PDF = "corrupt_pdf"
    ENCRYPTED_PDF = "encrypted_pdf"
    FILE_TOO_LARGE = "file_too_large"
    IMAGE_TOO_LARGE = "image_too_large"
    TOO_MANY_PAGES = "too_many_pages"
    FILE_NOT_FOUND = "file_not_found"
    INVALID_ARGUMENT = "invalid_argument"
    MODEL_NOT_FOUND = "model_not_found"
    MODEL_CHECKSUM_MISMATCH = "model_checksum_mismatch"
    ENGINE_FAILURE = "engine_failure"


class OcrError(Exception):
    """Base error: ``code`` is stable, ``message`` tells a person what to do."""

    http_status = 500

    def __init__(self, code: ErrorCode | str, message: str, *, stage: Stage | None = None) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.stage = stage

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body of DESIGN.md: ``{"error": {"code", "message", "stage"}}``."""
        err: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.stage is not None:
            err["stage"] = self.stage.value
        return {"error": err}

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"


class InputError(OcrError):
    """The input cannot be processed as given (client error)."""

    http_status = 400

    _STATUS = {
        ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
        ErrorCode.FILE_TOO_LARGE: 413,
        ErrorCode.IMAGE_TOO_LARGE: 413,
        ErrorCode.TOO_MANY_PAGES: 413,
        ErrorCode.FILE_NOT_FOUND: 404,
    }

    def __init__(self, code: ErrorCode | str, message: str, *, stage: Stage | None = Stage.DECODE) -> None:
        super().__init__(code, message, stage=stage)
        self.http_status = self._STATUS.get(self.code, 400)


class EngineError(OcrError):
    """A model or internal stage failed on valid input (server error)."""

    http_status = 500
