"""An OCRmyPDF plugin: ``ocrmypdf --plugin ocrpipe.ocrmypdf_plugin in.pdf out.pdf`` reads each page with
ocrpipe's detection and recognition while OCRmyPDF does the rest (rasterising, skipping pages that already
have text, the text layer, PDF/A, optimisation).

It implements OCRmyPDF 17's ``OcrEngine`` interface: ``generate_pdf`` writes ocrpipe's own text layer for the
page (the default here: see :func:`check_options`); ``generate_ocr`` returns the page as an ``OcrElement``
tree (paragraph per block, line, word with its box) for OCRmyPDF's fpdf2 renderer (``--pdf-renderer fpdf2``)
and ``generate_hocr`` serves the hOCR path. The engine is chosen for ``--ocr-engine auto``
(the default) once this plugin is loaded. The models are loaded once per OCRmyPDF worker process.
"""

from __future__ import annotations

import threading
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from ocrmypdf import hookimpl
from ocrmypdf.hocrtransform import BoundingBox, OcrClass, OcrElement
from ocrmypdf.pluginspec import OcrEngine, OrientationConfidence
from PIL import Image

from ocrpipe.document import Box, Document, Page

if TYPE_CHECKING:
    from ocrmypdf._options import OcrOptions

    from ocrpipe.engine.pipeline import Pipeline

_lock = threading.Lock()
_pipeline: Pipeline | None = None


def _shared_pipeline() -> Pipeline:
    global _pipeline
    with _lock:
        if _pipeline is None:
            from ocrpipe.engine.pipeline import Pipeline
            from ocrpipe.settings import EngineSettings, pipeline_config

            _pipeline = Pipeline(pipeline_config(EngineSettings()))  # OCRPIPE_* engine variables apply
        return _pipeline


def _read(input_file: Path) -> tuple[Document, float]:
    """The OCR of one page image OCRmyPDF hands over, and the image's resolution."""
    with Image.open(input_file) as img:
        dpi = float((img.info.get("dpi") or (300.0,))[0]) or 300.0
        rgb = np.asarray(img.convert("RGB"))
    return _shared_pipeline().run_image(rgb), dpi


def _bbox(box: Box) -> BoundingBox:
    xs, ys = [p[0] for p in box], [p[1] for p in box]
    return BoundingBox(left=min(xs), top=min(ys), right=max(xs), bottom=max(ys))


def page_element(page: Page, dpi: float, page_number: int = 0) -> OcrElement:
    """An ocrpipe page as OCRmyPDF's OCR tree: page > paragraph (block) > line > word."""
    blocks = [b for b in (page.blocks or (tuple(range(len(page.lines))),)) if b]
    paragraphs = []
    for block in blocks:
        lines = []
        for i in block:
            line = page.lines[i]
            words = [OcrElement(ocr_class=OcrClass.WORD, bbox=_bbox(w.box), text=w.text, confidence=w.confidence)
                     for w in line.words]
            lines.append(OcrElement(ocr_class=OcrClass.LINE, bbox=_bbox(line.box), children=words,
                                    confidence=line.confidence))
        paragraphs.append(OcrElement(ocr_class=OcrClass.PARAGRAPH,
                                     bbox=_union([el.bbox for el in lines if el.bbox is not None]), children=lines))
    return OcrElement(ocr_class=OcrClass.PAGE, bbox=BoundingBox(left=0, top=0, right=page.width, bottom=page.height),
                      dpi=dpi, page_number=page_number, children=paragraphs)


def _union(boxes: list[BoundingBox]) -> BoundingBox:
    return BoundingBox(left=min(b.left for b in boxes), top=min(b.top for b in boxes),
                       right=max(b.right for b in boxes), bottom=max(b.bottom for b in boxes))


class OcrpipeEngine(OcrEngine):
    """ocrpipe's pipeline, built from its engine settings as for ``ocrpipe ocr`` (``OCRPIPE_*`` variables;
    by default the ``hybrid_latin`` recogniser), as an OCRmyPDF engine."""

    @staticmethod
    def version() -> str:
        return metadata.version("ocrpipe")

    @staticmethod
    def creator_tag(options: OcrOptions) -> str:
        return f"ocrpipe {OcrpipeEngine.version()}"

    def __str__(self) -> str:
        return f"ocrpipe {self.version()}"

    @staticmethod
    def languages(options: OcrOptions) -> set[str]:
        return {"kor", "eng"}

    @staticmethod
    def get_orientation(input_file: Path, options: OcrOptions) -> OrientationConfidence:
        return OrientationConfidence(angle=0, confidence=0.0)

    @staticmethod
    def get_deskew(input_file: Path, options: OcrOptions) -> float:
        return 0.0

    @staticmethod
    def supports_generate_ocr() -> bool:
        return True

    @staticmethod
    def generate_ocr(input_file: Path, options: OcrOptions, page_number: int = 0) -> tuple[OcrElement, str]:
        doc, dpi = _read(input_file)
        return page_element(doc.pages[0], dpi, page_number), doc.text

    @staticmethod
    def generate_hocr(input_file: Path, output_hocr: Path, output_text: Path, options: OcrOptions) -> None:
        from ocrpipe.export.render import to_hocr

        doc, _ = _read(input_file)
        Path(output_hocr).write_text(to_hocr(doc), encoding="utf-8")
        Path(output_text).write_text(doc.text, encoding="utf-8")

    @staticmethod
    def generate_pdf(input_file: Path, output_pdf: Path, output_text: Path, options: OcrOptions) -> None:
        from ocrpipe.export.pdf import PageGeometry, text_layer_pdf

        doc, dpi = _read(input_file)
        page = doc.pages[0]
        scale = 72.0 / dpi
        geometry = PageGeometry(page.width * scale, page.height * scale, scale)
        Path(output_pdf).write_bytes(text_layer_pdf(doc, [geometry]))
        Path(output_text).write_text(doc.text, encoding="utf-8")


def _selected(options: OcrOptions | None) -> bool:
    return options is None or getattr(options, "ocr_engine", "auto") in ("auto", "ocrpipe")


@hookimpl
def check_options(options: OcrOptions) -> None:
    """With ocrpipe selected, ``--pdf-renderer auto`` means ``sandwich``: the text layer is ocrpipe's own
    (:meth:`OcrpipeEngine.generate_pdf`). OCRmyPDF's fpdf2 renderer draws Hangul words in a CJK CID font
    that pdftotext runs together and pypdf spaces out syllable by syllable; ``--pdf-renderer fpdf2`` still
    selects it (fed by :meth:`OcrpipeEngine.generate_ocr`)."""
    if _selected(options) and getattr(options, "pdf_renderer", None) == "auto":
        options.pdf_renderer = "sandwich"


@hookimpl
def get_ocr_engine(options: OcrOptions | None) -> OcrEngine | None:
    """ocrpipe, unless another engine was asked for by name (``--ocr-engine tesseract`` or ``none``)."""
    return OcrpipeEngine() if _selected(options) else None
