"""Response shapes, for the generated OpenAPI document at ``/docs`` (the JSON contract of DESIGN.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ocrpipe.errors import ErrorCode


class ErrorDetail(BaseModel):
    code: ErrorCode = Field(description="stable machine-readable code (README, \"Errors\")")
    message: str = Field(description="what went wrong and what to do")
    stage: str | None = Field(default=None, description="failing pipeline stage, when known")


class ErrorBody(BaseModel):
    error: ErrorDetail


class WordOut(BaseModel):
    text: str
    confidence: float
    box: list[list[float]] = Field(description="4 corners [x, y] in original pixels, clockwise from top-left")


class LineOut(BaseModel):
    text: str
    confidence: float
    box: list[list[float]] = Field(description="4 corners [x, y] in original pixels, clockwise from top-left")
    words: list[WordOut] = Field(default_factory=list, description="the line's words with their own boxes")


class PageOut(BaseModel):
    index: int
    width: int
    height: int
    lines: list[LineOut]


class ModelOut(BaseModel):
    name: str
    kind: str
    version: str
    sha256: str | None
    source: str


class DocumentOut(BaseModel):
    engine: str
    pages: list[PageOut]
    text: str = Field(description="lines joined by \\n, pages by \\f, in reading order")
    timings_ms: dict[str, float]
    models: list[ModelOut]


class BatchItemOut(BaseModel):
    """A Document plus ``filename``, or ``filename`` plus ``error`` for a file that could not be read."""

    model_config = {"extra": "allow"}
    filename: str | None
    error: ErrorDetail | None = None


class BatchOut(BaseModel):
    documents: list[BatchItemOut]


class BoxOut(BaseModel):
    box: list[list[float]]
    score: float


class DetectionPageOut(BaseModel):
    index: int
    width: int
    height: int
    boxes: list[BoxOut]


class DetectionOut(BaseModel):
    pages: list[DetectionPageOut]


class RecognitionItemOut(BaseModel):
    text: str
    confidence: float


class RecognitionOut(BaseModel):
    engine: str
    results: list[RecognitionItemOut]


class JobOut(BaseModel):
    id: str
    status: str = Field(description="queued, running, succeeded or failed")
    created_at: str
    started_at: str | None
    finished_at: str | None
    attempts: int
    filename: str | None
    size_bytes: int
    pages: int | None
    duration_ms: float | None
    error: ErrorDetail | None = Field(default=None, description="set when status is failed")


class JobListOut(BaseModel):
    jobs: list[JobOut]


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "empty, corrupt or invalid input"},
    413: {"model": ErrorBody, "description": "file, image or page count over the limits"},
    415: {"model": ErrorBody, "description": "not multipart/form-data, or not an image/PDF"},
    429: {"model": ErrorBody, "description": "too many requests in progress (see Retry-After)"},
    503: {"model": ErrorBody, "description": "recognition queue full (see Retry-After)"},
}
SYNC_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    504: {"model": ErrorBody, "description": "the request's time budget ran out (deadline_exceeded)"},
}
"""The synchronous OCR routes' errors: those of every upload plus their time budget."""
