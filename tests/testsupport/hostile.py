"""A hostile corpus: crafted files a careless integrator or an attacker sends, each with the answers the
service may give for it.

Every case is generated here from nothing (no third-party files). ``expect`` lists the documented error
codes a refusal may carry; ``ok`` says whether reading the file successfully is also an acceptable answer
(a strange but valid file). Whatever the answer, it must never be a 5xx, a crash or a hang.

``python -m testsupport.hostile OUT_DIR`` (from ``tests/``) writes the corpus to a folder for manual runs.
"""

from __future__ import annotations

import io
import random
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TOO_LARGE = frozenset({"image_too_large", "file_too_large", "too_many_pages"})
CORRUPT = frozenset({"corrupt_image", "corrupt_pdf", "unsupported_media_type", "empty_input"})
TINY = frozenset({"image_too_small"})


@dataclass(frozen=True)
class Case:
    """One crafted upload."""

    name: str
    data: bytes
    filename: str
    expect: frozenset[str]
    """Error codes a refusal may carry (for any endpoint that takes a document)."""
    ok: bool = False
    """Whether a successful read is also a right answer."""


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def lying_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` while its data holds a single row."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\xff" * min(width, 4096))
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _image(width: int, height: int, fmt: str = "PNG", mode: str = "RGB", noise: bool = False, **save: object) -> bytes:
    from PIL import Image

    if noise:
        import numpy as np

        arr = np.random.default_rng(7).integers(0, 256, (height, width), dtype=np.uint8)
        img = Image.fromarray(arr).convert(mode)
    else:
        img = Image.new(mode, (width, height), "white" if mode in {"RGB", "L"} else 255)
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


def pdf_pages(sizes: list[tuple[float, float]]) -> bytes:
    """A PDF of blank pages of the given sizes in points (made with pypdf)."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for w, h in sizes:
        writer.add_blank_page(width=w, height=h)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def encrypted_pdf() -> bytes:
    """A one-page PDF protected by a user password."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _truncated(data: bytes, keep: float) -> bytes:
    return data[: max(1, int(len(data) * keep))]


def _flipped(data: bytes, seed: int, count: int = 40, skip: int = 16) -> bytes:
    rng = random.Random(seed)
    out = bytearray(data)
    for _ in range(count):
        i = rng.randrange(skip, len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def _gif_frames(n: int) -> bytes:
    from PIL import Image

    frames = []
    for i in range(n):
        frame = Image.new("L", (32, 32), 255)
        frame.putpixel((i % 32, (i // 32) % 32), 0)  # every frame differs, so none is merged away
        frames.append(frame)
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def _tiff_frames(n: int, size: int = 16) -> bytes:
    from PIL import Image

    frames = [Image.new("L", (size, size), 255) for _ in range(n)]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def _cases() -> list[Callable[[], Case]]:
    page = lambda: _image(600, 300)  # noqa: E731 - a plain valid page other cases are made from
    return [
        lambda: Case("empty", b"", "empty.png", CORRUPT),
        lambda: Case("one-byte", b"\x00", "x.png", CORRUPT),
        lambda: Case("random-bytes", random.Random(1).randbytes(4096), "noise.bin", CORRUPT),
        lambda: Case("text-file", b"hello, this is not an image\n" * 20, "notes.txt", CORRUPT),
        lambda: Case("html", b"<!doctype html><script>alert(1)</script>", "page.html", CORRUPT),
        lambda: Case("svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "a.svg", CORRUPT),
        lambda: Case("zip", b"PK\x03\x04" + b"\x00" * 200, "a.zip", CORRUPT),
        lambda: Case("png-magic-only", b"\x89PNG\r\n\x1a\n", "magic.png", CORRUPT),
        lambda: Case("png-truncated", _truncated(page(), 0.5), "half.png", CORRUPT, ok=True),
        lambda: Case("png-bitflips", _flipped(page(), 3), "flipped.png", CORRUPT, ok=True),
        lambda: Case("png-header-60000", lying_png(60000, 60000), "huge.png", TOO_LARGE),
        lambda: Case("png-header-1x400000", lying_png(400000, 1), "wide.png", TOO_LARGE | TINY | CORRUPT),
        lambda: Case("png-header-zero", lying_png(0, 0), "zero.png", CORRUPT | TINY),
        lambda: Case("jpeg-truncated", _truncated(_image(800, 400, "JPEG"), 0.3), "cut.jpg", CORRUPT, ok=True),
        lambda: Case("jpeg-bitflips", _flipped(_image(800, 400, "JPEG"), 5), "flip.jpg", CORRUPT, ok=True),
        lambda: Case("jpeg-cmyk", _image(300, 200, "JPEG", mode="CMYK"), "cmyk.jpg", frozenset(), ok=True),
        lambda: Case("png-16bit-gray", _image(300, 200, mode="I;16"), "g16.png", frozenset(), ok=True),
        lambda: Case("png-palette", _image(300, 200, mode="P"), "pal.png", frozenset(), ok=True),
        lambda: Case("png-la", _image(300, 200, mode="LA"), "la.png", frozenset(), ok=True),
        lambda: Case("image-1x1", _image(1, 1), "dot.png", TINY),
        lambda: Case("image-2x2", _image(2, 2), "tiny.png", TINY),
        lambda: Case("noise-4x20000", _image(20000, 4, noise=True), "strip.png", TOO_LARGE | TINY),
        lambda: Case("noise-2x100000", _image(100000, 2, noise=True), "strip2.png", TOO_LARGE | TINY),
        lambda: Case("noise-20000x4", _image(4, 20000, noise=True), "tall.png", TOO_LARGE | TINY),
        lambda: Case("gif-corrupt", _flipped(_gif_frames(3), 9, count=60, skip=6), "bad.gif", CORRUPT, ok=True),
        lambda: Case("gif-truncated", _truncated(_gif_frames(5), 0.4), "cut.gif", CORRUPT, ok=True),
        lambda: Case("gif-400-frames", _gif_frames(400), "many.gif", TOO_LARGE, ok=True),
        lambda: Case("tiff-300-pages", _tiff_frames(300), "many.tif", TOO_LARGE, ok=True),
        lambda: Case("tiff-truncated", _truncated(_tiff_frames(3, 200), 0.5), "cut.tif", CORRUPT, ok=True),
        lambda: Case("webp-bitflips", _flipped(_image(300, 200, "WEBP"), 11), "bad.webp", CORRUPT, ok=True),
        lambda: Case("bmp-bogus-header", b"BM" + struct.pack("<IHHI", 70, 0, 0, 54)
                     + struct.pack("<IiiHHIIiiII", 40, 50000, -50000, 1, 24, 0, 0, 0, 0, 0, 0), "x.bmp",
                     CORRUPT | TOO_LARGE),
        lambda: Case("pdf-needle-page", pdf_pages([(36_000_000, 0.001)]), "needle.pdf", TOO_LARGE | TINY),
        lambda: Case("pdf-wide-page", pdf_pages([(1.8e8, 100)]), "wide.pdf", TOO_LARGE | TINY),
        lambda: Case("pdf-huge-page", pdf_pages([(14400, 14400)]), "huge.pdf", TOO_LARGE, ok=True),  # rendered smaller
        lambda: Case("pdf-thin-page", pdf_pages([(0.5, 0.5)]), "thin.pdf", TINY),
        lambda: Case("pdf-thin-strip", pdf_pages([(600, 1)]), "strip.pdf", TINY),
        lambda: Case("pdf-500-pages", pdf_pages([(200, 200)] * 500), "long.pdf", TOO_LARGE),
        lambda: Case("pdf-encrypted", encrypted_pdf(), "locked.pdf", frozenset({"encrypted_pdf"})),
        lambda: Case("pdf-truncated", _truncated(pdf_pages([(300, 300)] * 3), 0.5), "cut.pdf", CORRUPT, ok=True),
        lambda: Case("pdf-header-only", b"%PDF-1.7\n%%EOF\n", "empty.pdf", CORRUPT),
        lambda: Case("pdf-bitflips", _flipped(pdf_pages([(300, 300)]), 13, count=30, skip=9), "flip.pdf", CORRUPT,
                     ok=True),
    ]


def long_lines() -> list[Case]:
    """Line images for ``/v1/recognition`` that are tall enough to read but absurdly long: the recognisers
    read a crop past their width cap (100 x its height for Tesseract, 3,200 px for the CTC models) in pieces
    cut at its gaps (plain cuts through noise), so the answer is a read (or a documented refusal), never a
    failure."""
    return [Case(f"noise-{h}x{w}", _image(w, h, noise=True), f"line-{w}.png", TOO_LARGE, ok=True)
            for w, h in ((20000, 8), (25000, 16), (30000, 40))]


MALFORMED: dict[str, tuple[dict[str, str], bytes]] = {  # malformed request bodies: name -> (headers, body)
    "no-boundary": ({"Content-Type": "multipart/form-data"}, b"--x\r\n\r\nabc\r\n--x--\r\n"),
    "huge-part-header": ({"Content-Type": "multipart/form-data; boundary=x"},
                         b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + b"a" * 1_000_000
                         + b"\"\r\n\r\nabc\r\n--x--\r\n"),
    "50000-fields": ({"Content-Type": "multipart/form-data; boundary=x"},
                     b"".join(b"--x\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\nv\r\n" % i
                              for i in range(50_000)) + b"--x--\r\n"),
    "not-multipart": ({"Content-Type": "application/json"}, b'{"file": "page.png"}'),
}


def corpus() -> list[Case]:
    """Every case, generated fresh."""
    return [make() for make in _cases()]


def main(out: str) -> None:
    """Write the corpus into ``out`` (one file per case, named after it) and list it."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for case in corpus():
        suffix = Path(case.filename).suffix
        (folder / f"{case.name}{suffix}").write_bytes(case.data)
        print(f"{case.name}{suffix}\t{len(case.data)} bytes\texpect {sorted(case.expect)} ok={case.ok}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "hostile-corpus")
