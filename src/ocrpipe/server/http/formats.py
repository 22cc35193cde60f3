"""``?format=`` of the OCR and job-result routes: the Document as JSON, text, hOCR, ALTO or a searchable PDF."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response
from starlette.concurrency import run_in_threadpool

from ocrpipe.document import Document
from ocrpipe.errors import ErrorCode
from ocrpipe.export import render
from ocrpipe.server.errors import ServiceError

MEDIA_TYPES = {
    "json": "application/json",
    "text": "text/plain; charset=utf-8",
    "hocr": "text/html; charset=utf-8",
    "alto": "application/xml; charset=utf-8",
    "pdf": "application/pdf",
}

Format = Annotated[str, Query(description="json (default), text, hocr, alto or pdf (a searchable PDF of the "
                                          "upload: its pages with an invisible text layer)")]

FORMAT_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {media.split(";")[0]: {} for media in MEDIA_TYPES.values()}},
}


def check_format(fmt: str) -> str:
    """The format, or 400 ``invalid_argument`` naming the ones offered."""
    if fmt not in MEDIA_TYPES:
        raise ServiceError(ErrorCode.INVALID_ARGUMENT, f"unknown format {fmt!r}; use one of {', '.join(MEDIA_TYPES)}")
    return fmt


async def rendered(doc: Document, fmt: str, source: bytes | None) -> Response:
    """The Document in a non-JSON format (``source``: the uploaded file, needed for ``pdf``)."""
    if fmt == "pdf":
        from ocrpipe.export.pdf import searchable_pdf

        if source is None:
            raise ServiceError(ErrorCode.NOT_FOUND, "the upload is no longer stored, so no PDF can be made of it")
        body = await run_in_threadpool(searchable_pdf, source, None, doc)
        return Response(body, media_type=MEDIA_TYPES[fmt])
    text = await run_in_threadpool(render.FORMATS[fmt], doc)
    return Response(text.encode("utf-8"), media_type=MEDIA_TYPES[fmt])
