"""Engines that ``ocrpipe eval`` / ``ocrpipe bench`` can compare, all behind one call shape.

An engine is a callable ``engine(path, dpi=None) -> Prediction`` with a ``name`` and a ``timed`` flag
(external result files are not timed). Models load once, when the engine is built, so per-image
seconds measure recognition only.

Engine names (``--engine``):

* ``ocrpipe``            -- ``Pipeline.default()`` (the shipped detector + recogniser)
* ``ocrpipe-tesseract``  -- ``Pipeline(PipelineConfig(recognizer="tesseract"))``
* ``ocrpipe:NAME``       -- ``Pipeline(PipelineConfig(recognizer=NAME))`` (a model from ``ocrpipe models``)
* ``ocrpipe:NAME@DET``   -- the same with another detector (``ocrpipe:auto@ppocrv4_det_int8``)
* ``tesseract``          -- Tesseract whole page: kor+eng, psm 3, image at source resolution, lines and
                            words from the result iterator
* ``rapidocr``           -- RapidOCR's own pipeline (``rapidocr_onnxruntime.RapidOCR``, PP-OCRv4 det+rec)
* ``external:PATH``      -- saved predictions (see :mod:`ocrpipe.evaluation.external`)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ocrpipe.document import Line, Page, build_document, quad_to_box
from ocrpipe.errors import EngineError, ErrorCode, InputError, OcrError, Stage
from ocrpipe.evaluation.metrics import Region
from ocrpipe.evaluation.scoring import Prediction

ENGINE_HELP = "ocrpipe, ocrpipe-tesseract, ocrpipe:RECOGNIZER[@DETECTOR], tesseract, rapidocr, or external:PATH"


class Engine:
    """Base: a named callable from an image path to a :class:`Prediction`."""

    name = "engine"
    timed = True

    def __call__(self, path: Path, dpi: float | None = None) -> Prediction:
        raise NotImplementedError

    def models(self) -> list[dict[str, Any]]:
        return []


class PipelineEngine(Engine):
    """ocrpipe's own pipeline (default or with the Tesseract line recogniser)."""

    def __init__(self, name: str = "ocrpipe", recognizer: str | None = None, detector: str | None = None) -> None:
        from ocrpipe.engine.pipeline import Pipeline, PipelineConfig

        self.name = name
        if recognizer is None and detector is None:
            self.pipeline = Pipeline.default()
        else:
            cfg = PipelineConfig(recognizer=recognizer or "auto")
            self.pipeline = Pipeline(cfg if detector is None else replace(cfg, detector=detector))

    def __call__(self, path: Path, dpi: float | None = None) -> Prediction:
        return Prediction(self.pipeline.run(path))

    def models(self) -> list[dict[str, Any]]:
        return [m.to_dict() for m in self.pipeline.models()]


class TesseractPageEngine(Engine):
    """Tesseract on the whole page: kor+eng, psm 3 (auto layout), no rescaling.

    ``dpi`` (from the dataset's ``render_dpi`` when known, else the image's own metadata) is passed to
    Tesseract as the source resolution.
    """

    def __init__(self, lang: str = "kor+eng", psm: int = 3) -> None:
        import tesserocr

        from ocrpipe.engine.recognize.tesseract import find_tessdata

        self._t = tesserocr
        self.lang, self.psm = lang, psm
        self.tessdata = find_tessdata(lang)
        self.name = "tesseract"
        self.api = tesserocr.PyTessBaseAPI(path=self.tessdata, lang=lang, psm=psm)

    def __call__(self, path: Path, dpi: float | None = None) -> Prediction:
        from PIL import Image

        t0 = time.perf_counter()
        try:
            with Image.open(path) as im:
                im.load()
                dpi = dpi or _image_dpi(im)
                image = im.convert("RGB") if im.mode not in ("L", "RGB") else im.copy()
        except (OSError, ValueError) as exc:
            raise InputError(ErrorCode.CORRUPT_IMAGE, f"cannot read {path.name}: {exc}") from exc
        t1 = time.perf_counter()
        api = self.api
        api.SetImage(image)
        if dpi:
            api.SetSourceResolution(int(round(dpi)))
        if not api.Recognize():
            raise EngineError(ErrorCode.ENGINE_FAILURE, "tesseract Recognize() failed", stage=Stage.RECOGNIZE)
        lines = self._collect(self._t.RIL.TEXTLINE)
        words = self._collect(self._t.RIL.WORD)
        t2 = time.perf_counter()
        page = Page(0, image.width, image.height, tuple(lines))  # Tesseract's own reading order
        timings = {"decode": (t1 - t0) * 1000, "recognize": (t2 - t1) * 1000}
        doc = build_document(f"tesseract-page/{self.lang}/psm{self.psm}", (page,), timings_ms=timings, started=t0)
        return Prediction(doc, tuple(Region.of(line.box, line.text) for line in words))

    def _collect(self, level: int) -> list[Line]:
        out: list[Line] = []
        it = self.api.GetIterator()
        if it is None:
            return out
        for r in self._t.iterate_level(it, level):
            try:
                text = " ".join((r.GetUTF8Text(level) or "").split())
                box = r.BoundingBox(level)
            except RuntimeError:
                continue
            if not text or box is None:
                continue
            x0, y0, x1, y1 = box
            quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
            out.append(Line(text, max(0.0, r.Confidence(level)) / 100.0, quad_to_box(quad)))
        return out

    def models(self) -> list[dict[str, Any]]:
        return [
            {
                "name": f"tesseract/{self.lang}",
                "version": self._t.tesseract_version().split()[1],
                "psm": self.psm,
            }
        ]


def _image_dpi(im: Any) -> float | None:
    dpi = im.info.get("dpi")
    if dpi and float(dpi[0]) >= 70:
        return float(dpi[0])
    return None


class RapidOcrEngine(Engine):
    """RapidOCR's own pipeline with its package defaults (PP-OCRv4 det + cls + rec, ONNX Runtime)."""

    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.name = "rapidocr"
        self.engine = RapidOCR()

    def __call__(self, path: Path, dpi: float | None = None) -> Prediction:
        from ocrpipe.engine.order import ordered_page

        t0 = time.perf_counter()
        result, elapse = self.engine(str(path))
        lines = [
            Line(" ".join(str(text).split()), float(score), quad_to_box(np.asarray(box, dtype=np.float64)))
            for box, text, score in (result or [])
            if str(text).strip()
        ]
        h, w = _image_size(path)
        det, cls, rec = (list(elapse or []) + [0.0, 0.0, 0.0])[:3]
        timings = {"detect": det * 1000, "classify": cls * 1000, "recognize": rec * 1000}
        page = ordered_page(0, w, h, lines)
        return Prediction(build_document("rapidocr/ppocrv4", (page,), timings_ms=timings, started=t0))

    def models(self) -> list[dict[str, Any]]:
        import importlib.metadata

        return [{"name": "rapidocr_onnxruntime", "version": importlib.metadata.version("rapidocr_onnxruntime")}]


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.height, im.width


def make_engine(spec: str) -> Engine:
    """Build an engine from its ``--engine`` name (see the module docstring)."""
    if spec.startswith("ocrpipe:"):
        recognizer, _, detector = spec.split(":", 1)[1].partition("@")
        return PipelineEngine(spec, recognizer=recognizer, detector=detector or None)
    if spec.startswith("external:"):
        from ocrpipe.evaluation.external import ExternalEngine

        return ExternalEngine(Path(spec.split(":", 1)[1]))
    factories: dict[str, Callable[[], Engine]] = {
        "ocrpipe": PipelineEngine,
        "ocrpipe-tesseract": lambda: PipelineEngine("ocrpipe-tesseract", recognizer="tesseract"),
        "tesseract": TesseractPageEngine,
        "rapidocr": RapidOcrEngine,
    }
    if spec not in factories:
        raise OcrError(ErrorCode.INVALID_ARGUMENT, f"unknown engine {spec!r}; choose from {ENGINE_HELP}")
    return factories[spec]()
