"""The public entry point: composes decode → preprocess → detect → crop → orient → recognise → order.

``Pipeline`` loads its models once and is safe to share between threads: every stage is a pure function
of its inputs plus read-only model sessions. The service, CLI, evaluator and template engine all call the
same stage methods, so a page processed anywhere gives the same result.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ocrpipe.document import Document, Line, ModelInfo, Page, RecResult, quad_to_box
from ocrpipe.engine import decode as imageio
from ocrpipe.engine import order, preprocess
from ocrpipe.engine.crop import crop_lines
from ocrpipe.engine.detect import Detection, TextDetector
from ocrpipe.engine.recognize.base import Recognizer
from ocrpipe.engine.words import line_words
from ocrpipe.errors import EngineError, ErrorCode, OcrError, Stage

RecognizeFn = Callable[[Sequence[np.ndarray]], list[RecResult]]
"""Anything that maps a batch of crops to results: a recogniser, or the service's dynamic batcher."""


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that shapes one pipeline; immutable, validated on construction."""

    recognizer: str = "auto"
    """``auto`` (the shipped neural model when present, else Tesseract), ``tesseract`` or a model name."""
    limits: imageio.Limits = field(default_factory=imageio.Limits)
    pdf_dpi: int = 200
    preprocess: preprocess.PreprocessConfig = field(default_factory=preprocess.PreprocessConfig)
    detector: str = "ppocrv4_det"
    det_limit_side: int = 2400
    det_thresh: float = 0.3
    det_box_thresh: float = 0.5
    det_unclip_ratio: float = 1.6
    det_min_size: float = 3.0
    use_orientation: bool = False
    drop_empty: bool = True
    min_confidence: float = 0.0

    def __post_init__(self) -> None:
        if not 36 <= self.pdf_dpi <= 600:
            raise OcrError(ErrorCode.INVALID_ARGUMENT, f"pdf_dpi must be between 36 and 600, got {self.pdf_dpi}")
        if not 0.0 < self.det_thresh < 1.0 or not 0.0 < self.det_box_thresh < 1.0:
            raise OcrError(ErrorCode.INVALID_ARGUMENT, "detection thresholds must lie in (0, 1)")
        if self.det_limit_side < 320:
            raise OcrError(ErrorCode.INVALID_ARGUMENT, "det_limit_side must be at least 320")


class Pipeline:
    """Image or PDF in, :class:`Document` out.

    >>> from ocrpipe import Pipeline
    >>> doc = Pipeline.default().run("page.png")   # doctest: +SKIP
    >>> print(doc.text)                             # doctest: +SKIP
    """

    _default: Pipeline | None = None
    _default_lock = threading.Lock()

    def __init__(
        self,
        config: PipelineConfig | None = None,
        *,
        detector: TextDetector | None = None,
        recognizer: Recognizer | None = None,
    ) -> None:
        from ocrpipe.engine.orient import LineOrientation
        from ocrpipe.engine.recognize import load_recognizer

        self.config = config or PipelineConfig()
        self.detector = detector or TextDetector.from_name(
            self.config.detector,
            limit_side=self.config.det_limit_side,
            thresh=self.config.det_thresh,
            box_thresh=self.config.det_box_thresh,
            unclip_ratio=self.config.det_unclip_ratio,
            min_size=self.config.det_min_size,
        )
        self.recognizer = recognizer or load_recognizer(self.config.recognizer)
        self.orientation = LineOrientation.default() if self.config.use_orientation else None

    @classmethod
    def default(cls) -> Pipeline:
        """The shared default pipeline (models loaded once per process)."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    def with_config(self, **changes: object) -> Pipeline:
        """A pipeline with some settings changed, sharing the already-loaded models where possible."""
        config = replace(self.config, **changes)  # type: ignore[arg-type]
        same_det = all(
            getattr(config, k) == getattr(self.config, k)
            for k in ("detector", "det_limit_side", "det_thresh", "det_box_thresh", "det_unclip_ratio",
                      "det_min_size")
        )
        same_rec = config.recognizer == self.config.recognizer
        return Pipeline(
            config,
            detector=self.detector if same_det else None,
            recognizer=self.recognizer if same_rec else None,
        )

    @property
    def engine_name(self) -> str:
        return f"ocrpipe/{self.detector.name}+{self.recognizer.name}"

    def models(self) -> list[ModelInfo]:
        """The models this pipeline runs, with sha256 and source."""
        out = [self.detector.info()]
        if self.orientation is not None:
            out.append(self.orientation.info())
        out.extend(self.recognizer.models())
        return out

    # ---- stages ---------------------------------------------------------------------------------

    def decode(self, source: str | Path | bytes, *, filename: str | None = None) -> list[np.ndarray]:
        """Decode a path or raw bytes into RGB page images (PDF pages rendered at ``pdf_dpi``)."""
        return imageio.load_pages(source, filename=filename, limits=self.config.limits, dpi=self.config.pdf_dpi)

    def preprocess(self, image: np.ndarray) -> preprocess.Prepared:
        """The prepared page and the transform back to original pixels."""
        return preprocess.apply(image, self.config.preprocess)

    def detect(self, image: np.ndarray) -> Detection:
        """Text quads (original pixels, clockwise from top-left) and their scores."""
        return self.detector(image)

    def crop(self, image: np.ndarray, detection: Detection) -> list[np.ndarray]:
        """Rectified horizontal line crops, one per quad."""
        return crop_lines(image, detection.quads)

    def recognize(self, crops: Sequence[np.ndarray]) -> list[RecResult]:
        return self.recognizer.recognize(crops)

    @staticmethod
    def _recognize_oriented(crops: list[np.ndarray], doubtful: list[int], rec_fn: RecognizeFn) -> list[RecResult]:
        """Recognise crops; the ``doubtful`` ones (maybe upside down) are also read rotated by 180°, and
        the more confident reading is kept."""
        batch = crops + [np.ascontiguousarray(np.rot90(crops[i], 2)) for i in doubtful]
        results = rec_fn(batch) if batch else []
        if len(results) != len(batch):
            raise EngineError(
                ErrorCode.ENGINE_FAILURE,
                f"recogniser returned {len(results)} results for {len(batch)} crops",
                stage=Stage.RECOGNIZE,
            )
        chosen = list(results[: len(crops)])
        for k, i in enumerate(doubtful):
            flipped = results[len(crops) + k]
            if flipped.confidence > chosen[i].confidence:
                chosen[i] = flipped.mirrored()
        return chosen

    def process_image(
        self, image: np.ndarray, index: int = 0, *, recognize: RecognizeFn | None = None,
        timings: dict[str, float] | None = None,
    ) -> Page:
        """Run every stage after decoding on one page image.

        ``recognize`` replaces the recogniser call (the service passes its dynamic batcher here).
        ``timings`` (if given) is incremented with per-stage milliseconds.
        """
        t = timings if timings is not None else {}
        rec_fn = recognize or self.recognize
        height, width = image.shape[:2]
        with _timed(t, Stage.PREPROCESS):
            prepared = self.preprocess(image)
        with _timed(t, Stage.DETECT):
            det = self.detect(prepared.image)
        with _timed(t, "crop"):
            crops = self.crop(prepared.image, det)
            det = Detection(prepared.to_original(det.quads), det.scores)
        doubtful: list[int] = []
        if self.orientation is not None:
            with _timed(t, "orientation"):
                doubtful = self.orientation.candidates(crops)
        with _timed(t, Stage.RECOGNIZE):
            results = self._recognize_oriented(crops, doubtful, rec_fn)
        with _timed(t, Stage.POSTPROCESS):
            lines = self._assemble(det, results)
            ordered, blocks = order.reading_order(lines)
        return Page(index=index, width=width, height=height, lines=tuple(ordered), blocks=blocks)

    def run(self, source: str | Path | bytes, *, filename: str | None = None,
            recognize: RecognizeFn | None = None) -> Document:
        """Decode ``source`` (path or bytes) and OCR every page."""
        timings: dict[str, float] = {}
        with _timed(timings, Stage.DECODE):
            images = self.decode(source, filename=filename)
        return self.run_pages(images, recognize=recognize, timings=timings)

    def run_pages(self, images: Sequence[np.ndarray], *, recognize: RecognizeFn | None = None,
                  timings: dict[str, float] | None = None) -> Document:
        """OCR already-decoded RGB pages (gray or RGBA arrays are converted)."""
        timings = timings if timings is not None else {}
        pages = [self.process_image(imageio.as_rgb(img), i, recognize=recognize, timings=timings)
                 for i, img in enumerate(images)]
        timings["total"] = sum(v for k, v in timings.items() if k != "total")
        return Document(engine=self.engine_name, pages=tuple(pages), timings_ms=timings,
                        models=tuple(self.models()))

    def run_image(self, image: np.ndarray) -> Document:
        """OCR one already-decoded image."""
        return self.run_pages([image])

    def _assemble(self, det: Detection, results: Sequence[RecResult]) -> list[Line]:
        lines = []
        for quad, score, res in zip(det.quads, det.scores, results, strict=True):
            text = res.text.strip()
            if self.config.drop_empty and not text:
                continue
            if res.confidence < self.config.min_confidence:
                continue
            lines.append(Line(text=text, confidence=float(res.confidence), box=quad_to_box(quad),
                              det_score=float(score), words=line_words(quad, res, text)))
        return lines


class _timed:
    """Context manager adding elapsed milliseconds to ``timings[key]``."""

    __slots__ = ("timings", "key", "start")

    def __init__(self, timings: dict[str, float], key: str) -> None:
        self.timings = timings
        self.key = str(key)

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        elapsed = (time.perf_counter() - self.start) * 1000.0
        self.timings[self.key] = self.timings.get(self.key, 0.0) + elapsed
