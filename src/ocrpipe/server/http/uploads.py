"""Reading REST uploads; the checks themselves are :mod:`ocrpipe.server.intake`'s (shared with gRPC)."""

from __future__ import annotations

from fastapi import UploadFile
from starlette.concurrency import run_in_threadpool

from ocrpipe.errors import ErrorCode
from ocrpipe.server.errors import ServiceError
from ocrpipe.server.http.deps import ServiceState
from ocrpipe.server.intake import check_upload


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
