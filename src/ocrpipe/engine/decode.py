"""Decode PNG, JPEG, TIFF (multi-page), BMP, WebP, GIF, AVIF and PDF into RGB page images, safely.

The media type is sniffed from the bytes, never trusted from a file name. Size limits (bytes, pixels per
page and per side, pages) are checked before anything large is allocated: image dimensions are read from the header
before decoding, PDF page sizes before rendering.
"""

from __future__ import annotations

import io
import math
import struct
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

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
    max_side: int = 30_000
    """Per side of a page, in pixels (A0 at 600 dpi is 19,866 x 28,087): a strip within the area limit can
    still be too long to allocate its working copies."""
    min_side: int = 8
    """Per side: a smaller image cannot hold a readable glyph."""


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


def open_pages(source: str | Path | bytes, *, filename: str | None = None, limits: Limits | None = None,
               dpi: int = 200) -> PageSource:
    """Open ``source`` as a lazily decoded document: nothing is rendered until :meth:`PageSource.render`.

    The byte limit, the media type and the page count are checked here; the pixel limit per page is
    checked by :meth:`PageSource.page_size` and :meth:`PageSource.render`.
    """
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
        return _PdfSource(data, name, limits, dpi)
    if media == "image/heif":
        raise InputError(ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                         f"{name} is a HEIF/HEIC image, which is not supported; convert it to JPEG or PNG")
    return _ImageSource(data, name, media, limits)


def load_pages(source: str | Path | bytes, *, filename: str | None = None, limits: Limits | None = None,
               dpi: int = 200) -> list[np.ndarray]:
    """Decode every page of ``source`` to an RGB uint8 array of shape (H, W, 3)."""
    with open_pages(source, filename=filename, limits=limits, dpi=dpi) as src:
        return [src.render(i) for i in range(len(src))]


class PageSource(ABC):
    """A decoded-on-demand document: its page count and page sizes are known before any page is rendered.

    Safe to share between threads (each source serialises its own decoder; pdfium calls share one lock).
    """

    def __init__(self, name: str, media_type: str, limits: Limits, count: int) -> None:
        self.name = name
        self.media_type = media_type
        self.limits = limits
        if count == 0:
            code = ErrorCode.CORRUPT_PDF if media_type == PDF else ErrorCode.CORRUPT_IMAGE
            raise InputError(code, f"{name} has no pages")
        if count > limits.max_pages:
            raise InputError(ErrorCode.TOO_MANY_PAGES, f"{name} has {count} pages; the limit is {limits.max_pages}")
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __enter__(self) -> PageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self._count:
            raise IndexError(f"page {index} out of range for {self.name} ({self._count} pages)")

    def page_size(self, index: int) -> tuple[int, int]:
        """``(width, height)`` in pixels that :meth:`render` will return, read without rendering.

        Raises ``image_too_large`` when an image page exceeds the pixel limit.
        """
        self._check_index(index)
        return self._page_size(index)

    def render(self, index: int) -> np.ndarray:
        """Page ``index`` as an RGB uint8 array (H, W, 3), EXIF orientation applied."""
        self._check_index(index)
        return self._render(index)

    @abstractmethod
    def _page_size(self, index: int) -> tuple[int, int]: ...

    @abstractmethod
    def _render(self, index: int) -> np.ndarray: ...

    @abstractmethod
    def close(self) -> None:
        """Release the decoder; further calls fail."""


_EXIF_ORIENTATION = 0x0112
_SWAPS_AXES = (5, 6, 7, 8)  # EXIF orientations that rotate by 90° or 270°
_PIL_ERRORS = (OSError, ValueError, SyntaxError, EOFError, TypeError, IndexError, struct.error)


class _ImageSource(PageSource):
    """A Pillow image; multi-frame TIFF and GIF give one page per frame."""

    def __init__(self, data: bytes, name: str, media_type: str, limits: Limits) -> None:
        self._lock = threading.Lock()
        with self._decoding(name):
            self._img = Image.open(io.BytesIO(data))
            count = int(getattr(self._img, "n_frames", 1))
        super().__init__(name, media_type, limits, count)

    @contextmanager
    def _decoding(self, name: str) -> Iterator[None]:
        """Map Pillow's exceptions to stable error codes; bomb warnings are errors."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                yield
        except InputError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InputError(ErrorCode.IMAGE_TOO_LARGE, f"{name}: {exc}") from exc
        except _PIL_ERRORS as exc:
            raise InputError(ErrorCode.CORRUPT_IMAGE,
                             f"{name} could not be decoded (truncated or corrupt image): {exc}") from exc

    def _page_size(self, index: int) -> tuple[int, int]:
        with self._lock, self._decoding(self.name):
            self._img.seek(index)
            return self._display_size()

    def _display_size(self) -> tuple[int, int]:
        width, height = self._img.size
        _check_pixels((width, height), self.name, self.limits)
        if self._img.format == "PNG" and "exif" not in self._img.info:
            # Pillow's PNG getexif() decodes the whole image to look for an eXIf chunk after the pixel data;
            # the size must come from the header alone (one seen before the pixels is in ``info``).
            return width, height
        if self._img.getexif().get(_EXIF_ORIENTATION) in _SWAPS_AXES:
            return height, width
        return width, height

    def _render(self, index: int) -> np.ndarray:
        with self._lock, self._decoding(self.name):
            self._img.seek(index)
            self._display_size()
            self._img.load()
            return to_rgb_array(ImageOps.exif_transpose(self._img))

    def close(self) -> None:
        """Close the Pillow image."""
        with self._lock:
            self._img.close()


_PDFIUM_LOCK = threading.Lock()
"""pdfium is not thread-safe: every call into it, on any document, holds this lock."""


class _PdfSource(PageSource):
    """A PDF rendered page by page with pdfium at ``dpi``."""

    def __init__(self, data: bytes, name: str, limits: Limits, dpi: int) -> None:
        import pypdfium2 as pdfium

        self._pdfium = pdfium
        self.dpi = dpi
        with _PDFIUM_LOCK:
            try:
                self._pdf = pdfium.PdfDocument(data)
            except pdfium.PdfiumError as exc:
                if "password" in str(exc).lower():
                    raise InputError(ErrorCode.ENCRYPTED_PDF,
                                     f"{name} is encrypted with a password; decrypt it first") from exc
                raise InputError(ErrorCode.CORRUPT_PDF, f"{name} is not a readable PDF: {exc}") from exc
            count = len(self._pdf)
        try:
            super().__init__(name, PDF, limits, count)
        except InputError:
            self.close()
            raise

    def _scale(self, index: int) -> tuple[float, float, float]:
        """``(scale, width_pt, height_pt)``; a huge sheet is rendered at the largest scale that fits."""
        try:
            width_pt, height_pt = self._pdf.get_page_size(index)
        except self._pdfium.PdfiumError as exc:
            raise InputError(ErrorCode.CORRUPT_PDF, f"{self.name}: page {index} has no size: {exc}") from exc
        if not (math.isfinite(width_pt) and math.isfinite(height_pt)) or width_pt <= 0 or height_pt <= 0:
            raise InputError(ErrorCode.CORRUPT_PDF, f"{self.name}: page {index} has no area "
                                                    f"({width_pt} x {height_pt} pt)")
        scale = self.dpi / 72.0
        pixels = width_pt * height_pt * scale * scale
        if pixels > self.limits.max_pixels:
            scale *= (self.limits.max_pixels / pixels) ** 0.5
        longest = max(width_pt, height_pt) * scale
        if longest > self.limits.max_side:
            scale *= self.limits.max_side / longest
        size = (math.ceil(width_pt * scale), math.ceil(height_pt * scale))
        if min(size) < self.limits.min_side:
            raise InputError(ErrorCode.IMAGE_TOO_SMALL,
                             f"{self.name}: page {index + 1} is {width_pt:g} x {height_pt:g} pt, which renders "
                             f"to {size[0]}x{size[1]} pixels at most; a page needs {self.limits.min_side} pixels "
                             "per side")
        return scale, width_pt, height_pt

    def _page_size(self, index: int) -> tuple[int, int]:
        with _PDFIUM_LOCK:
            scale, width_pt, height_pt = self._scale(index)
        # pdfium's bitmap size for a render at ``scale``
        return math.ceil(width_pt * scale), math.ceil(height_pt * scale)

    def _render(self, index: int) -> np.ndarray:
        with _PDFIUM_LOCK:
            scale, _, _ = self._scale(index)
            try:
                page = self._pdf[index]
                try:
                    bitmap = page.render(scale=scale, may_draw_forms=True)
                    return to_rgb_array(bitmap.to_pil())
                finally:
                    page.close()
            except self._pdfium.PdfiumError as exc:
                raise InputError(ErrorCode.CORRUPT_PDF, f"{self.name}: page could not be rendered: {exc}") from exc

    def close(self) -> None:
        """Close the pdfium document."""
        with _PDFIUM_LOCK:
            self._pdf.close()


def _check_pixels(size: tuple[int, int], name: str, limits: Limits) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InputError(ErrorCode.CORRUPT_IMAGE, f"{name} has an empty size {width}x{height}")
    if max(width, height) > limits.max_side:
        raise InputError(ErrorCode.IMAGE_TOO_LARGE, f"{name} is {width}x{height} pixels; the limit is "
                                                    f"{limits.max_side} pixels per side")
    if min(width, height) < limits.min_side:
        raise InputError(ErrorCode.IMAGE_TOO_SMALL, f"{name} is {width}x{height} pixels; a page or line image "
                                                    f"needs at least {limits.min_side} pixels per side")
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
