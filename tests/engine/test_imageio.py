"""Decoding: every supported format, EXIF orientation, and a stable error code for each kind of bad input."""

import io

import numpy as np
import pytest
from PIL import Image

from ocrpipe.engine import decode as imageio
from ocrpipe.errors import ErrorCode, InputError


def _encode(fmt: str, img: Image.Image | None = None, **kw) -> bytes:
    img = img or Image.new("RGB", (40, 30), (200, 10, 10))
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "WEBP", "TIFF", "GIF", "AVIF"])
def test_formats_decode_to_rgb(fmt):
    pages = imageio.load_pages(_encode(fmt))
    assert len(pages) == 1
    assert pages[0].shape == (30, 40, 3) and pages[0].dtype == np.uint8


def test_multipage_tiff():
    frames = [Image.new("L", (20, 10), v) for v in (0, 128, 255)]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:])
    pages = imageio.load_pages(buf.getvalue())
    assert [int(p[0, 0, 0]) for p in pages] == [0, 128, 255]


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    data = _encode("JPEG", img, exif=exif)
    (page,) = imageio.load_pages(data)
    assert page.shape[:2] == (40, 20)


def test_rgba_is_composited_on_white():
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    (page,) = imageio.load_pages(_encode("PNG", img))
    assert page.min() == 255


def test_pdf_pages_render_at_dpi():
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    pdf.new_page(72 * 2, 72 * 1)  # 2 x 1 inch
    pdf.new_page(72, 72)
    buf = io.BytesIO()
    pdf.save(buf)
    pages = imageio.load_pages(buf.getvalue(), dpi=100)
    assert [p.shape[:2] for p in pages] == [(100, 200), (100, 100)]


@pytest.mark.parametrize(
    "data, code",
    [
        (b"", ErrorCode.EMPTY_INPUT),
        (b"hello, this is plain text and not an image", ErrorCode.UNSUPPORTED_MEDIA_TYPE),
        (b"%PDF-1.7\n garbage that is no pdf", ErrorCode.CORRUPT_PDF),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, ErrorCode.CORRUPT_IMAGE),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 64, ErrorCode.CORRUPT_IMAGE),
    ],
)
def test_bad_bytes_have_stable_codes(data, code):
    with pytest.raises(InputError) as err:
        imageio.load_pages(data)
    assert err.value.code == code
    assert err.value.http_status in (400, 413, 415)


def test_truncated_png():
    data = _encode("PNG", Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)))
    with pytest.raises(InputError) as err:
        imageio.load_pages(data[: len(data) // 2])
    assert err.value.code == ErrorCode.CORRUPT_IMAGE


def test_huge_dimensions_rejected_before_decoding():
    # A 30000x30000 PNG compresses to a few hundred kB; it must be refused from its header.
    img = Image.new("1", (30000, 30000), 1)
    data = _encode("PNG", img)
    with pytest.raises(InputError) as err:
        imageio.load_pages(data)
    assert err.value.code == ErrorCode.IMAGE_TOO_LARGE
    assert err.value.http_status == 413


def test_byte_and_page_limits(tmp_path):
    limits = imageio.Limits(max_bytes=100)
    with pytest.raises(InputError) as err:
        imageio.load_pages(b"x" * 101, limits=limits)
    assert err.value.code == ErrorCode.FILE_TOO_LARGE
    frames = [Image.new("L", (5, 5)) for _ in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:])
    with pytest.raises(InputError) as err:
        imageio.load_pages(buf.getvalue(), limits=imageio.Limits(max_pages=2))
    assert err.value.code == ErrorCode.TOO_MANY_PAGES


def test_encrypted_pdf(encrypted_pdf):
    with pytest.raises(InputError) as err:
        imageio.load_pages(encrypted_pdf)
    assert err.value.code == ErrorCode.ENCRYPTED_PDF


def test_missing_file():
    with pytest.raises(InputError) as err:
        imageio.load_pages("/no/such/file.png")
    assert err.value.code == ErrorCode.FILE_NOT_FOUND
