"""Searchable PDFs: an invisible text layer (render mode 3) with each word at its box, in a font that covers
Hangul, laid over the original pages.

* PDF input keeps its page objects untouched: the text layer is built as its own PDF with fpdf2 and each
  layer page is stamped onto the matching original page as a Form XObject with pikepdf (no re-rendering,
  no recompression of the page's images).
* Image input becomes one PDF page per image with img2pdf (JPEG bytes as they are, other images
  losslessly), then gets the same text layer.
* PDF/A: :func:`to_pdfa` converts through OCRmyPDF (its internal PDF/A backend) when it is installed;
  without it PDF/A is not offered and a clear error says so.

The fonts are embedded and subset by fpdf2. Needs the ``ocrpipe[pdf]`` extra (fpdf2, pikepdf, img2pdf).
"""

from __future__ import annotations

import io
import math
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np

from ocrpipe.document import Box, Document, Page, Word
from ocrpipe.errors import ErrorCode, OcrError

DEFAULT_IMAGE_DPI = 300
"""Resolution assumed for an image without one when its page size is chosen."""


@dataclass(frozen=True)
class PageGeometry:
    """A PDF page's size in points and how many points one pixel of the OCR'd page image is."""

    width_pt: float
    height_pt: float
    pt_per_px: float


def _need(module: str) -> None:
    raise OcrError(ErrorCode.INVALID_ARGUMENT,
                   f"searchable PDF output needs {module}: pip install 'ocrpipe[pdf]'")


@cache
def text_font_path() -> str:
    """A TrueType/OpenType font with Hangul (fontconfig's best match for Korean; collections skipped)."""
    try:
        listed = subprocess.run(["fc-match", "-s", "-f", "%{file}\n", ":lang=ko"], capture_output=True, text=True,
                                timeout=10, check=False).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        listed = []
    from ocrpipe.export.render import FONT_CANDIDATES

    for path in [*listed, *FONT_CANDIDATES]:
        if path.lower().endswith((".ttf", ".otf")) and Path(path).is_file():
            return path
    raise OcrError(ErrorCode.ENGINE_FAILURE, "no font with Hangul found (install fonts-nanum or fonts-noto-cjk)")


@cache
def _font_metrics(path: str) -> tuple[float, float]:
    """Ascent and descent (descent negative) of a font, in ems."""
    from fontTools.ttLib import TTFont

    font = TTFont(path, lazy=True)
    units = font["head"].unitsPerEm
    return font["hhea"].ascent / units, font["hhea"].descent / units


def _new_pdf():  # type: ignore[no-untyped-def]
    try:
        from fpdf import FPDF
    except ImportError:
        _need("fpdf2")
    pdf = FPDF(unit="pt")
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.set_creator("ocrpipe")
    pdf.add_font("ocrpipe-text", fname=text_font_path())
    return pdf


def _word_geometry(word: Word, scale: float) -> tuple[float, float, float, float, float]:
    """Left, top, width, height (points) of a word box measured along its top edge, and the edge's angle
    in degrees (counter-clockwise, as PDF rotates)."""
    q = np.asarray(word.box, dtype=np.float64) * scale
    top = q[1] - q[0]
    width = float(np.hypot(*top))
    height = float(max(np.hypot(*(q[3] - q[0])), np.hypot(*(q[2] - q[1]))))
    angle = -math.degrees(math.atan2(top[1], top[0]))
    return float(q[0][0]), float(q[0][1]), width, height, angle


def _draw_words(pdf, page: Page, scale: float) -> None:  # type: ignore[no-untyped-def]
    """Invisible words, each sized and stretched to fill its box, its baseline where the font puts it."""
    ascent, descent = _font_metrics(text_font_path())
    for line in page.lines:
        words = line.words or (Word(line.text, line.confidence, line.box),)
        for k, word in enumerate(words):
            x, y, width, height, angle = _word_geometry(word, scale)
            if width < 0.5 or height < 0.5 or not word.text.strip():
                continue
            size = height / (ascent - descent)
            pdf.set_font("ocrpipe-text", size=size)
            pdf.set_stretching(100.0)
            natural = pdf.get_string_width(word.text)
            pdf.set_stretching(100.0 * width / natural if natural > 0 else 100.0)
            # A real space after each word but the last: word boxes touch, so extractors that split words
            # by gaps (pdftotext) would otherwise run the words together.
            text = word.text + (" " if k < len(words) - 1 else "")
            with pdf.rotation(angle, x, y):
                pdf.text(x, y + ascent * size, text)


def _text_layer(pdf, page: Page, geometry: PageGeometry) -> None:  # type: ignore[no-untyped-def]
    from fpdf.enums import TextMode

    pdf.add_page(format=(geometry.width_pt, geometry.height_pt))
    pdf.text_mode = TextMode.INVISIBLE
    _draw_words(pdf, page, geometry.pt_per_px)


def text_layer_pdf(doc: Document, geometries: Sequence[PageGeometry]) -> bytes:
    """A PDF with only the invisible text of each page, sized like the pages it will be laid over."""
    pdf = _new_pdf()
    for page, geometry in zip(doc.pages, geometries, strict=True):
        _text_layer(pdf, page, geometry)
    return _output(pdf)


def _output(pdf) -> bytes:  # type: ignore[no-untyped-def]
    """The PDF's bytes; fontTools' notes about font tables it drops while subsetting stay quiet."""
    import logging

    subset_log = logging.getLogger("fontTools.subset")
    level = subset_log.level
    subset_log.setLevel(logging.ERROR)
    try:
        return bytes(pdf.output())
    finally:
        subset_log.setLevel(level)


def _text_ordered(page: Page) -> Page:
    """Word boxes whose first corner is the text's own top-left and whose first edge runs along the text.

    A vertical line's crop was turned 90 degrees counter-clockwise before it was read (see
    :func:`ocrpipe.engine.crop.crop_quad`), so its text runs down the page with its top towards the right:
    its box, clockwise from the page's top-left, starts one corner later.
    """
    from ocrpipe.engine.crop import is_vertical

    def roll(box: Box) -> Box:
        return (box[1], box[2], box[3], box[0])

    lines = []
    for line in page.lines:
        words = line.words or (Word(line.text, line.confidence, line.box),)
        if is_vertical(np.asarray(line.box)):
            words = tuple(replace(w, box=roll(w.box)) for w in words)
        lines.append(replace(line, words=words))
    return replace(page, lines=tuple(lines))


def _unrotated(page: Page, rotation: int) -> Page:
    """The page as laid out before the PDF's ``/Rotate`` (clockwise, in degrees) is applied for display:
    ocrpipe saw the displayed page, the text layer is drawn in the page's own coordinates."""
    if rotation == 0:
        return page
    width, height = (page.height, page.width) if rotation in (90, 270) else (page.width, page.height)

    def back(box: Box) -> Box:
        if rotation == 90:
            return tuple((y, height - x) for x, y in box)  # type: ignore[return-value]
        if rotation == 180:
            return tuple((width - x, height - y) for x, y in box)  # type: ignore[return-value]
        return tuple((width - y, x) for x, y in box)  # type: ignore[return-value]

    lines = tuple(replace(line, box=back(line.box), words=tuple(replace(w, box=back(w.box)) for w in line.words))
                  for line in page.lines)
    return replace(page, width=width, height=height, lines=lines)


def overlay_pdf(original: bytes, doc: Document) -> bytes:
    """The original PDF with the Document's text laid over each page; page contents stay as they were.

    ``doc`` must come from this PDF's pages as displayed (rendered by ocrpipe: each page image is the page's
    crop box turned by its ``/Rotate``).
    """
    try:
        import pikepdf
    except ImportError:
        _need("pikepdf")
    with pikepdf.open(io.BytesIO(original)) as pdf:
        if len(pdf.pages) != len(doc.pages):
            raise OcrError(ErrorCode.INVALID_ARGUMENT,
                           f"the PDF has {len(pdf.pages)} pages but the result has {len(doc.pages)}")
        pages, geometries, boxes = [], [], []
        for pdf_page, page in zip(pdf.pages, doc.pages, strict=True):
            box = pikepdf.Rectangle(pdf_page.cropbox)
            flat = _unrotated(_text_ordered(page), int(pdf_page.obj.get("/Rotate", 0)) % 360)
            pages.append(flat)
            geometries.append(PageGeometry(box.width, box.height, box.width / flat.width))
            boxes.append(box)
        layer = pikepdf.open(io.BytesIO(text_layer_pdf(replace(doc, pages=tuple(pages)), geometries)))
        for pdf_page, layer_page, box in zip(pdf.pages, layer.pages, boxes, strict=True):
            pdf_page.add_overlay(layer_page, box)
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()


def images_pdf(images: Sequence[np.ndarray | bytes], doc: Document, *, dpi: float = DEFAULT_IMAGE_DPI) -> bytes:
    """One PDF page per image (img2pdf: JPEG bytes go in as they are, arrays as lossless PNG) with the
    Document's text layer laid over it as for PDF input."""
    try:
        import img2pdf
    except ImportError:
        _need("img2pdf")
    files = [image if isinstance(image, bytes) else _png(image) for image in images]
    layout = img2pdf.get_fixed_dpi_layout_fun((dpi, dpi))
    return overlay_pdf(img2pdf.convert(files, layout_fun=layout, rotation=img2pdf.Rotation.ifvalid), doc)


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


def to_pdfa(pdf: bytes) -> bytes:
    """PDF/A-2b of a searchable PDF through OCRmyPDF (its pages already have text, so none is OCR'd again)."""
    try:
        import ocrmypdf
    except ImportError as exc:
        raise OcrError(ErrorCode.INVALID_ARGUMENT,
                       "PDF/A output needs OCRmyPDF (pip install ocrmypdf, apt-get install ghostscript)") from exc
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ocrpipe-pdfa-") as tmp:
        src, dst = Path(tmp) / "in.pdf", Path(tmp) / "out.pdf"
        src.write_bytes(pdf)
        try:
            # The internal PDF/A backend: Ghostscript 10.0-10.02 (Debian 12's) damages PDFs that have text.
            code = ocrmypdf.ocr(src, dst, output_type="pdfa", skip_text=True, progress_bar=False,
                                ocr_engine="none", pdfa_backend="internal")
        except ocrmypdf.exceptions.ExitCodeException as exc:
            raise OcrError(ErrorCode.ENGINE_FAILURE, f"OCRmyPDF could not write PDF/A: {exc}") from exc
        if code != ocrmypdf.ExitCode.ok or not dst.is_file():
            raise OcrError(ErrorCode.ENGINE_FAILURE, f"OCRmyPDF could not write PDF/A (exit {int(code)})")
        return dst.read_bytes()


def _embeddable(source: bytes, image: np.ndarray) -> tuple[bytes | None, float]:
    """The image file's bytes when they can go into the PDF as they are (one frame, no EXIF turn, same
    size as the decoded page), and its resolution."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(source)) as img:
            dpi = float((img.info.get("dpi") or (DEFAULT_IMAGE_DPI,))[0]) or DEFAULT_IMAGE_DPI
            same = (img.format in ("JPEG", "PNG") and getattr(img, "n_frames", 1) == 1
                    and img.getexif().get(0x0112, 1) == 1 and img.size == (image.shape[1], image.shape[0]))
    except (UnidentifiedImageError, OSError, ValueError):
        return None, DEFAULT_IMAGE_DPI
    return (source if same else None), (dpi if 36 <= dpi <= 2400 else DEFAULT_IMAGE_DPI)


def searchable_pdf(source: bytes, images: Sequence[np.ndarray] | None, doc: Document, *,
                   pdfa: bool = False) -> bytes:
    """The searchable PDF of one input: ``source`` is the file's bytes, ``images`` its decoded pages (decoded
    here when ``None`` and needed) and ``doc`` their OCR. A PDF keeps its pages and gets the text layer;
    images become pages."""
    if b"%PDF-" in source[:1024]:
        out = overlay_pdf(source, doc)
    else:
        if images is None:
            from ocrpipe.engine.decode import load_pages

            images = load_pages(source)
        raw, dpi = _embeddable(source, images[0])  # a multi-frame file is never embedded as it is
        out = images_pdf([raw] if raw is not None and len(images) == 1 else list(images), doc, dpi=dpi)
    return to_pdfa(out) if pdfa else out
