"""Decode PNG, JPEG, TIFF (multi-page), BMP, WebP, GIF, AVIF and PDF into RGB page images, safely.

The media type is sniffed from the bytes, never trusted from a file name. Size limits (bytes, pixels per
page, pages) are checked before anything large is allocated: image dimensions are read from the header
before decoding, PDF page sizes before rendering.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, ImageSequence

from ocrpipe.errors import ErrorCode, InputError

PDF = "application/pdf"
_MAGIC = (
    (b"%PDF-", PDF),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"BM", "image/bmp"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
SUPPORTED = ("image/png", "image/jpeg", "image/tiff", "image/bmp", "image/webp", "image/gif", "image/avif", PDF)
_AVIF_BRANDS = (b"avif", b"avis")
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")


@dataclass(frozen=True)
class Limits:
    """Upper bounds that protect the process from hostile or accidental huge inputs."""

    max_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 60_000_000
    """Per page: e.g. an A4 scan at 600 dpi is 35 Mpx."""
    max_pages: int = 100


def sniff(data: bytes) -> str | None:
    """The media type of ``data`` from its magic bytes, or None when unknown."""
    head = data[:16]
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if len(head) >= 12 and head[4:8] == b"ftyp":  # ISO base media file: AVIF or HEIF by brand
        brands = data[8:min(len(data), 8 + int.from_bytes(data[:4], "big"))]
        if any(b in brands for b in _AVIF_BRANDS):
            return "image/avif"
        if any(b in brands for b in _HEIF_BRANDS):
            return "image/heif"
    # Tolerate a little junk before a PDF header, as PDF readers do.
    if b"%PDF-" in data[:1024]:
        return PDF
    for magic, media in _MAGIC:
        if head.startswith(magic):
            return media
    return None


def read_source(source: str | Path | bytes, limits: Limits) -> tuple[bytes, str]:
    """Return ``(bytes, display name)`` for a path or raw bytes, enforcing the byte limit."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        name = "<bytes>"
    else:
        path = Path(source)
        name = str(path)
        if not path.is_file():
            raise InputError(ErrorCode.FILE_NOT_FOUND, f"no such file: {path}")
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise InputError(ErrorCode.FILE_TOO_LARGE,
                             f"{path} is {size} bytes; the limit is {limits.max_bytes} bytes")
        data = path.read_bytes()
    if len(data) > limits.max_bytes:
        raise InputError(ErrorCode.FILE_TOO_LARGE,
                         f"input is {len(data)} bytes; the limit is {limits.max_bytes} bytes")
    if not data:
        raise InputError(ErrorCode.EMPTY_INPUT, f"{name} is empty (0 bytes)")
    return data, name


def load_pages(source: str | Path | bytes, *, filename: str | None = None, limits: Limits | None = None,
               dpi: int = 200) -> list[np.ndarray]:
    """Decode every page of ``source`` to an RGB uint8 array of shape (H, W, 3)."""
    limits = limits or Limits()
    data, name = read_source(source, limits)
    name = filename or name
    media = sniff(data)
    if media is None:
        raise InputError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"{name} is not a supported image or PDF (supported: PNG, JPEG, TIFF, BMP, WebP, GIF, AVIF, PDF)",
        )
    if media == PDF:
        return _load_pdf(data, name, limits, dpi)
    if media == "image/heif":
        raise InputError(ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                         f"{name} is a HEIF/HEIC image, which is not supported; convert it to JPEG or PNG")
    return _load_image(data, name, limits)


def _load_image(data: bytes, name: str, limits: Limits) -> list[np.ndarray]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            pages = []
            for index, frame in enumerate(ImageSequence.Iterator(img)):
                if index >= limits.max_pages:
                    raise InputError(ErrorCode.TOO_MANY_PAGES,
                                     f"{name} has more than {limits.max_pages} pages")
                _check_pixels(frame.size, name, limits)
                frame.load()
                pages.append(to_rgb_array(ImageOps.exif_transpose(frame)))
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(ErrorCode.IMAGE_TOO_LARGE, f"{name}: {exc}") from exc
    except (OSError, ValueError, SyntaxError, EOFError, TypeError, IndexError, struct.error) as exc:
        raise InputError(ErrorCode.CORRUPT_IMAGE,
                         f"{name} could not be decoded (truncated or corrupt image): {exc}") from exc
    if not pages:
        raise InputError(ErrorCode.CORRUPT_IMAGE, f"{name} contains no image frames")
    return pages


def _check_pixels(size: tuple[int, int], name: str, limits: Limits) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InputError(ErrorCode.CORRUPT_IMAGE, f"{name} has an empty size {width}x{height}")
    if width * height > limits.max_pixels:
        raise InputError(
            ErrorCode.IMAGE_TOO_LARGE,
            f"{name} is {width}x{height} = {width * height} pixels; the limit is {limits.max_pixels} "
            "pixels per page (downscale it, or raise the limit)",
        )


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to RGB uint8, compositing transparency over white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() or 1.0
        img = Image.fromarray((arr * (255.0 / hi)).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Accept a gray (H, W), RGB or RGBA array and return RGB uint8 (H, W, 3)."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise InputError(ErrorCode.INVALID_ARGUMENT, f"expected a uint8 image, got {arr.dtype}")
    if arr.ndim == 2:
        return np.ascontiguousarray(np.stack([arr] * 3, axis=-1))
    if arr.ndim == 3 and arr.shape[2] == 3:
        return np.ascontiguousarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 4:
        return to_rgb_array(Image.fromarray(arr, "RGBA"))
    raise InputError(ErrorCode.INVALID_ARGUMENT, f"unsupported image array shape {arr.shape}")


def _load_pdf(data: bytes, name: str, limits: Limits, dpi: int) -> list[np.ndarray]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        text = str(exc).lower()
        if "password" in text:
            raise InputError(ErrorCode.ENCRYPTED_PDF,
                             f"{name} is encrypted with a password; decrypt it first") from exc
        raise InputError(ErrorCode.CORRUPT_PDF, f"{name} is not a readable PDF: {exc}") from exc
    try:
        count = len(pdf)
        if count == 0:
            raise InputError(ErrorCode.CORRUPT_PDF, f"{name} has no pages")
        if count > limits.max_pages:
            raise InputError(ErrorCode.TOO_MANY_PAGES,
                             f"{name} has {count} pages; the limit is {limits.max_pages}")
        pages = []
        for index in range(count):
            page = pdf[index]
            try:
                width_pt, height_pt = page.get_size()
                scale = dpi / 72.0
                pixels = width_pt * height_pt * scale * scale
                if pixels > limits.max_pixels:  # a huge sheet: render at the largest scale that fits
                    scale *= (limits.max_pixels / pixels) ** 0.5
                bitmap = page.render(scale=scale, may_draw_forms=True)
                pages.append(to_rgb_array(bitmap.to_pil()))
            finally:
                page.close()
        return pages
    except pdfium.PdfiumError as exc:
        raise InputError(ErrorCode.CORRUPT_PDF, f"{name}: page could not be rendered: {exc}") from exc
    finally:
        pdf.close()
