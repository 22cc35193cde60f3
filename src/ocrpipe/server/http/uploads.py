"""Reading and checking REST uploads before the engine sees them."""

from __future__ import annotations

from fastapi import UploadFile

from ocrpipe.engine import decode as imageio
from ocrpipe.errors import ErrorCode, InputError
from ocrpipe.server.errors import ServiceError
from ocrpipe.server.state import ServiceState


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
    """Refuse bytes that are neither a supported image nor a PDF (sniffed, not trusted from the name)."""
    if imageio.sniff(data) is None:
        raise InputError(ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                         f"{name or 'the upload'} is not a supported image or PDF "
                         "(PNG, JPEG, TIFF, BMP, WebP, GIF, PDF)")


def check_count(files: list[UploadFile], svc: ServiceState) -> None:
    """Refuse requests with more files than ``max_files``."""
    if len(files) > svc.settings.max_files:
        raise ServiceError(ErrorCode.TOO_MANY_PAGES,
                           f"{len(files)} files in one request; the limit is {svc.settings.max_files}")
