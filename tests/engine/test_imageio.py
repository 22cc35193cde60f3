"""Decoding: every supported format, EXIF orientation, and a stable error code for each kind of bad input."""

import io
import struct
import zlib

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
    img = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
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


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` (1-bit grey) with one row of pixel data: only a decoder that
    trusts the header before decoding refuses it quickly."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\xff" * ((width + 7) // 8)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(row)) + chunk(b"IEND", b"")


def test_huge_dimensions_rejected_before_decoding():
    # A 30000x30000 PNG declared in its header must be refused from the header, before any decoding.
    data = _png_header_only(30000, 30000)
    assert struct.unpack(">II", data[16:24]) == (30000, 30000)  # what the IHDR declares
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


def _pdf(sizes, rotate=None) -> bytes:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    for i, (w, h) in enumerate(sizes):
        page = pdf.new_page(w, h)
        if rotate and i in rotate:
            page.set_rotation(rotate[i])
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


def test_page_source_renders_only_the_page_asked_for(monkeypatch):
    import pypdfium2 as pdfium

    widths = [72 + 36 * i for i in range(6)]  # each page its own width identifies it
    data = _pdf([(w, 72) for w in widths])
    rendered: list[float] = []
    real_render = pdfium.PdfPage.render

    def spy(page, *args, **kwargs):
        rendered.append(page.get_width())
        return real_render(page, *args, **kwargs)

    monkeypatch.setattr(pdfium.PdfPage, "render", spy)
    with imageio.open_pages(data, dpi=72) as src:
        assert len(src) == 6
        sizes = [src.page_size(i) for i in range(len(src))]
        assert rendered == []  # sizes come from the page boxes, not from rendering
        page = src.render(4)
    assert rendered == [widths[4]]
    assert page.shape == (72, widths[4], 3)
    assert sizes == [(w, 72) for w in widths]


def test_page_size_before_render_matches_the_render():
    data = _pdf([(144, 72), (100.3, 50.7), (612, 792)], rotate={0: 90})
    with imageio.open_pages(data, dpi=150) as src:
        for i in range(len(src)):
            width, height = src.page_size(i)
            assert src.render(i).shape[:2] == (height, width)
    exif = Image.Exif()
    exif[0x0112] = 6
    frames = [Image.new("RGB", (40, 20), "white"), Image.new("RGB", (30, 50), "white")]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:])
    for data in (_encode("JPEG", frames[0], exif=exif), buf.getvalue()):
        with imageio.open_pages(data) as src:
            for i in range(len(src)):
                width, height = src.page_size(i)
                assert src.render(i).shape[:2] == (height, width)
    with imageio.open_pages(_encode("JPEG", frames[0], exif=exif)) as src:
        assert src.page_size(0) == (20, 40)


def test_page_source_checks_limits_before_rendering():
    huge_sheet = _pdf([(72 * 100, 72 * 100)])  # 100 x 100 inch: scaled down to the pixel budget
    limits = imageio.Limits(max_pixels=4_000_000)
    with imageio.open_pages(huge_sheet, limits=limits, dpi=200) as src:
        width, height = src.page_size(0)
        assert width * height <= limits.max_pixels * 1.01
        assert src.render(0).shape[:2] == (height, width)
    data = _encode("PNG", Image.new("1", (9000, 9000), 1))  # opens (below Pillow's bomb guard) ...
    with imageio.open_pages(data) as src, pytest.raises(InputError) as err:
        src.page_size(0)  # ... and is refused from its header by the page's pixel limit
    assert err.value.code == ErrorCode.IMAGE_TOO_LARGE
    with pytest.raises(InputError) as err:
        imageio.open_pages(_pdf([(72, 72)] * 3), limits=imageio.Limits(max_pages=2))
    assert err.value.code == ErrorCode.TOO_MANY_PAGES
    with imageio.open_pages(_pdf([(72, 72)])) as src, pytest.raises(IndexError):
        src.render(1)


def test_pdf_sources_render_from_many_threads():
    from concurrent.futures import ThreadPoolExecutor

    sources = [imageio.open_pages(_pdf([(72 + 10 * k, 72 + 5 * i) for i in range(8)]), dpi=100)
               for k in range(3)]
    jobs = [(s, i) for s in sources for i in range(len(s))]
    with ThreadPoolExecutor(6) as pool:
        shapes = list(pool.map(lambda job: job[0].render(job[1]).shape, jobs))
    assert shapes == [(s.page_size(i)[1], s.page_size(i)[0], 3) for s, i in jobs]
    for s in sources:
        s.close()


@pytest.mark.parametrize("size, code", [((40_000, 10), ErrorCode.IMAGE_TOO_LARGE),
                                        ((10, 31_000), ErrorCode.IMAGE_TOO_LARGE),
                                        ((1, 1), ErrorCode.IMAGE_TOO_SMALL), ((600, 4), ErrorCode.IMAGE_TOO_SMALL)])
def test_each_side_is_bounded_before_decoding(size, code):
    data = _encode("PNG", Image.new("L", size, 255))
    with imageio.open_pages(data) as src, pytest.raises(InputError) as err:
        src.page_size(0)
    assert err.value.code == code


@pytest.mark.parametrize("points, code", [((36_000_000, 0.001), ErrorCode.IMAGE_TOO_SMALL),
                                          ((1.8e8, 100), ErrorCode.IMAGE_TOO_SMALL),
                                          ((0.5, 0.5), ErrorCode.IMAGE_TOO_SMALL)])
def test_pdf_page_boxes_are_checked_before_rendering(points, code):
    """A needle-shaped page within the area limit would render a 10^8-pixel-wide strip: it is scaled to the
    side limit first and then refused for what is left of it."""
    with imageio.open_pages(_pdf([points])) as src, pytest.raises(InputError) as err:
        src.page_size(0)
    assert err.value.code == code
    with imageio.open_pages(_pdf([(14400, 900)])) as src:  # 200 x 12.5 inch: scaled to 30,000 px wide
        width, height = src.page_size(0)
    assert width <= imageio.Limits().max_side and height >= imageio.Limits().min_side
