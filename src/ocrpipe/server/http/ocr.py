"""Synchronous OCR routes: whole documents, batches, detection only, recognition of line images."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile

from ocrpipe.server.http import formats, schemas
from ocrpipe.server.http.deps import Authorized, Slot, State
from ocrpipe.server.http.uploads import check_count, read_upload

router = APIRouter(prefix="/v1", dependencies=[Authorized], tags=["ocr"])


@router.post("/ocr", dependencies=[Slot], summary="OCR one image or PDF synchronously",
             response_model=schemas.DocumentOut, responses={**schemas.SYNC_ERRORS, **formats.FORMAT_RESPONSES})
async def ocr(svc: State, file: Annotated[UploadFile, File(description="image or PDF")],
              format: formats.Format = "json") -> Any:
    """Returns the Document JSON (engine, pages with lines and words: text, confidence, box; text, timings),
    or with ``format`` its text, hOCR, ALTO XML or a searchable PDF of the upload."""
    fmt = formats.check_format(format)
    data, name = await read_upload(file, svc)
    doc = await svc.engine.ocr(data, name)
    if fmt == "json":
        return doc.to_dict()
    return await formats.rendered(doc, fmt, data)


@router.post("/batch_ocr", dependencies=[Slot], summary="OCR many files in one request",
             response_model=schemas.BatchOut, responses=schemas.SYNC_ERRORS)
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
             response_model=schemas.DetectionOut, responses=schemas.SYNC_ERRORS)
async def detection(svc: State, file: Annotated[UploadFile, File(description="image or PDF")]
                    ) -> dict[str, Any]:
    """Returns the text boxes of every page, without recognition; the pages are scheduled like those of
    ``/v1/ocr`` (rendered one at a time, same page cap and time budget)."""
    data, name = await read_upload(file, svc)
    return {"pages": await svc.engine.detect(data, name)}


@router.post("/recognition", dependencies=[Slot], summary="Recognise one or many line images",
             response_model=schemas.RecognitionOut, responses=schemas.SYNC_ERRORS)
async def recognition(svc: State, files: Annotated[list[UploadFile], File(description="line images")]
                      ) -> dict[str, Any]:
    """Each file is one text line (already cropped); returns text and confidence per line, in order."""
    check_count(files, svc)
    uploads = [await read_upload(f, svc) for f in files]
    results = await svc.engine.recognize_lines(uploads)
    return {"engine": svc.engine.pipeline.recognizer.name,
            "results": [{"text": r.text, "confidence": round(float(r.confidence), 4)} for r in results]}
