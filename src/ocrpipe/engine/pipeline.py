"""The public entry point: the one page path, decode → preprocess → detect → crop → orient → recognise → order.

``Pipeline`` loads its models once and is safe to share between threads: every stage is a pure function
of its inputs plus read-only model sessions. The CLI, the service, the evaluator and the template engine
all call :meth:`Pipeline.trace_page` (or :meth:`Pipeline.run`, which calls it per page), so a page
processed anywhere gives the same result.

Each stage returns a frozen dataclass carrying its elapsed time (``elapsed_ms``); :class:`PageTrace` is the
record of one page through every stage. ``Document.timings_ms`` has one meaning everywhere: per-stage sums
over the pages (``decode`` included when the pipeline decoded) and ``total``, the wall time of the call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from ocrpipe.document import Document, Line, ModelInfo, Page, RecResult, build_document, quad_to_box
from ocrpipe.engine import decode as imageio
from ocrpipe.engine import order, preprocess, runtime
from ocrpipe.engine.crop import crop_lines, is_vertical
from ocrpipe.engine.detect import Detection, TextDetector
from ocrpipe.engine.orient import LineOrientation
from ocrpipe.engine.preprocess import Prepared
from ocrpipe.engine.recognize.base import Recognizer
from ocrpipe.engine.vertical import stack_column
from ocrpipe.engine.words import line_words
from ocrpipe.errors import EngineError, ErrorCode, OcrError, Stage

T = TypeVar("T")
RecognizeFn = Callable[[Sequence[np.ndarray]], list[RecResult]]
"""Anything that maps a batch of crops to results: a recogniser's ``recognize``, or the service's batcher."""

_DETECTOR_FIELDS = ("detector", "det_limit_side", "det_thresh", "det_box_thresh", "det_unclip_ratio",
                    "det_min_size", "threads", "ort_spin", "device")
_RECOGNIZER_FIELDS = ("recognizer", "threads", "ort_spin", "device", "tesseract_threads")


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
    stack_vertical: bool = True
    """Also read each vertical line turned the other way and with its upright characters set side by side
    (:mod:`~ocrpipe.engine.vertical`), keeping the most confident reading."""
    drop_empty: bool = True
    min_confidence: float = 0.0
    threads: int = 0
    """ONNX Runtime intra-op threads per model session; 0 means the number of usable CPUs."""
    ort_spin: bool = False
    """Let ONNX Runtime's worker threads busy-wait between runs (see :class:`runtime.SessionSettings`)."""
    tesseract_threads: int = 0
    """Tesseract API instances reading in parallel; 0 means ``threads`` (all usable CPUs when that is 0)."""
    device: str = "cpu"
    """``cpu`` or ``cuda`` (when the CUDA execution provider is installed)."""

    def __post_init__(self) -> None:
        if not 36 <= self.pdf_dpi <= 600:
            raise OcrError(ErrorCode.INVALID_ARGUMENT, f"pdf_dpi must be between 36 and 600, got {self.pdf_dpi}")
        if not 0.0 < self.det_thresh < 1.0 or not 0.0 < self.det_box_thresh < 1.0:
            raise OcrError(ErrorCode.INVALID_ARGUMENT, "detection thresholds must lie in (0, 1)")
        if self.det_limit_side < 320:
            raise OcrError(ErrorCode.INVALID_ARGUMENT, "det_limit_side must be at least 320")
        if self.threads < 0 or self.tesseract_threads < 0:
            raise OcrError(ErrorCode.INVALID_ARGUMENT, "thread counts must be 0 (all CPUs) or positive")
        if self.device not in ("cpu", "cuda"):
            raise OcrError(ErrorCode.INVALID_ARGUMENT, f"device must be cpu or cuda, got {self.device!r}")

    @property
    def session(self) -> runtime.SessionSettings:
        """The ONNX Runtime settings every model session of this pipeline gets."""
        return runtime.SessionSettings(threads=self.threads, spin=self.ort_spin, device=self.device)


@dataclass(frozen=True)
class Crops:
    """Rectified horizontal line crops cut from the prepared page, one per detected quad."""

    images: tuple[np.ndarray, ...]
    elapsed_ms: float = 0.0
    vertical: tuple[int, ...] = ()
    """Indices of the vertical quads (their crops turned by 90°): each is also read turned the other way
    (a line printed bottom to top), the more confident reading kept."""
    stacked: tuple[tuple[int, np.ndarray], ...] = ()
    """For each vertical quad, its index and its upright characters set side by side
    (:func:`~ocrpipe.engine.vertical.stack_column`): both are read, the more confident kept."""


@dataclass(frozen=True)
class Readings:
    """One recognition result per crop; ``doubtful`` crops (maybe upside down) were also read rotated by 180°
    and the more confident reading kept."""

    results: tuple[RecResult, ...]
    doubtful: tuple[int, ...] = ()
    orientation_ms: float = 0.0
    elapsed_ms: float = 0.0
    """Recognition time (the orientation classifier's time is ``orientation_ms``)."""


@dataclass(frozen=True)
class Ordered:
    """The kept lines in reading order and their blocks (indices into ``lines``)."""

    lines: tuple[Line, ...]
    blocks: tuple[tuple[int, ...], ...]
    elapsed_ms: float = 0.0


@dataclass(frozen=True)
class PageTrace:
    """One page through every stage: what benchmarks, studies and fallbacks read instead of internals."""

    index: int
    image: np.ndarray
    """The decoded RGB page (original pixels)."""
    prepared: preprocess.Prepared
    detection: Detection
    """Quads in original pixels, in crop order."""
    crops: Crops
    readings: Readings
    ordered: Ordered
    page: Page
    timings_ms: dict[str, float]
    """This page's stage times (``decode`` when the pipeline rendered it; no ``total``)."""


@dataclass(frozen=True)
class LocatedPage:
    """One page up to recognition (:meth:`Pipeline.locate_lines`): its line crops, not yet read."""

    index: int
    image: np.ndarray
    """The decoded RGB page (original pixels)."""
    prepared: preprocess.Prepared
    detection: Detection
    """Quads in original pixels, in crop order."""
    crops: Crops
    timings_ms: dict[str, float]
    """``decode`` (when given), ``preprocess``, ``detect`` and ``crop``."""


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
        orientation: LineOrientation | None = None,
    ) -> None:
        from ocrpipe.engine.recognize import load_recognizer

        self.config = config or PipelineConfig()
        cfg = self.config
        self.detector = detector or TextDetector.from_name(
            cfg.detector, limit_side=cfg.det_limit_side, thresh=cfg.det_thresh, box_thresh=cfg.det_box_thresh,
            unclip_ratio=cfg.det_unclip_ratio, min_size=cfg.det_min_size, session=cfg.session,
        )
        self.recognizer = recognizer or load_recognizer(cfg.recognizer, cfg.session,
                                                        tesseract_threads=cfg.tesseract_threads or cfg.threads)
        self.orientation: LineOrientation | None = None
        if cfg.use_orientation:
            self.orientation = orientation or LineOrientation.default(cfg.session)

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
        same_det = all(getattr(config, k) == getattr(self.config, k) for k in _DETECTOR_FIELDS)
        same_rec = all(getattr(config, k) == getattr(self.config, k) for k in _RECOGNIZER_FIELDS)
        return Pipeline(
            config,
            detector=self.detector if same_det else None,
            recognizer=self.recognizer if same_rec else None,
        )

    def with_recognizer(self, recognizer: Recognizer) -> Pipeline:
        """The same detector and settings with another recogniser (e.g. one that feeds a batcher)."""
        return Pipeline(self.config, detector=self.detector, recognizer=recognizer, orientation=self.orientation)

    @property
    def engine_name(self) -> str:
        """``ocrpipe/<detector>+<recogniser>``, as reported in every Document."""
        return f"ocrpipe/{self.detector.name}+{self.recognizer.name}"

    def models(self) -> list[ModelInfo]:
        """The models this pipeline runs, with sha256 and source."""
        out = [self.detector.info()]
        if self.orientation is not None:
            out.append(self.orientation.info())
        out.extend(self.recognizer.models())
        return out

    # ---- stages ---------------------------------------------------------------------------------

    def open(self, source: str | Path | bytes, *, filename: str | None = None) -> imageio.PageSource:
        """Open a path or raw bytes lazily; pages render at ``pdf_dpi`` under this pipeline's limits."""
        return imageio.open_pages(source, filename=filename, limits=self.config.limits, dpi=self.config.pdf_dpi)

    def decode(self, source: str | Path | bytes, *, filename: str | None = None) -> list[np.ndarray]:
        """Decode every page of a path or raw bytes into RGB page images."""
        with self.open(source, filename=filename) as src:
            return [src.render(i) for i in range(len(src))]

    def preprocess(self, image: np.ndarray) -> preprocess.Prepared:
        """The prepared page and the transform back to original pixels."""
        return preprocess.apply(image, self.config.preprocess)

    def detect(self, image: np.ndarray) -> Detection:
        """Text quads (``image``'s pixels, clockwise from top-left) and their scores."""
        return self.detector(image)

    def detection_memory(self, width: int, height: int) -> int:
        """Bytes the detection of a ``width`` x ``height`` page needs while it runs (from its size alone)."""
        return self.detector.working_memory(width, height)

    def crop(self, image: np.ndarray, detection: Detection) -> Crops:
        """Rectified horizontal line crops, one per quad."""
        start = time.perf_counter()
        images = tuple(crop_lines(image, detection.quads))
        vertical = tuple(i for i, q in enumerate(detection.quads) if self.config.stack_vertical and is_vertical(q))
        stacked = tuple((i, st) for i in vertical
                        if (st := stack_column(np.ascontiguousarray(np.rot90(images[i], -1)))) is not None)
        return Crops(images, _since(start), vertical, stacked)

    def recognize(self, crops: Sequence[np.ndarray]) -> list[RecResult]:
        """This pipeline's recogniser on a batch of crops."""
        return self.recognizer.recognize(crops)

    def read(self, crops: Crops, *, recognize: RecognizeFn | None = None) -> Readings:
        """Orientation (when enabled) and recognition of every crop; ``recognize`` replaces the recogniser."""
        images = list(crops.images)
        start = time.perf_counter()
        doubtful = self.orientation.candidates(images) if self.orientation is not None and images else []
        doubtful = sorted({*doubtful, *crops.vertical})
        orientation_ms = _since(start) if self.orientation is not None else 0.0
        start = time.perf_counter()
        results = _recognize_oriented(images, doubtful, recognize or self.recognize, crops.stacked)
        return Readings(tuple(results), tuple(doubtful), orientation_ms, _since(start))

    def order(self, detection: Detection, readings: Readings) -> Ordered:
        """Drop empty/unconfident readings, make lines (original pixels) and put them in reading order."""
        start = time.perf_counter()
        lines, blocks = order.reading_order(self._assemble(detection, readings.results))
        return Ordered(tuple(lines), blocks, _since(start))

    # ---- the page path --------------------------------------------------------------------------

    def find_text(self, image: np.ndarray, *,
                  detected: Callable[[], None] | None = None) -> tuple[Prepared, Detection]:
        """The first steps of the page path on an RGB page: preprocessing and detection (quads in the
        prepared image's pixels; ``prepared.to_original`` maps them back). ``detected`` is called once
        detection has finished, whatever its outcome."""
        prepared = _staged(Stage.PREPROCESS, self.preprocess, image)
        try:
            det = _staged(Stage.DETECT, self.detect, prepared.image)
        finally:
            if detected is not None:
                detected()
        return prepared, det

    def locate_lines(self, image: np.ndarray, index: int = 0, *, decode_ms: float | None = None,
                     detected: Callable[[], None] | None = None) -> LocatedPage:
        """The page path up to recognition on one page image: preprocess, detect, crop (quads mapped back
        to original pixels). ``decode_ms`` and ``detected`` as in :meth:`trace_page`."""
        image = imageio.as_rgb(image)
        prepared, det = self.find_text(image, detected=detected)
        crops = _staged(Stage.DETECT, self.crop, prepared.image, det)
        det = replace(det, quads=prepared.to_original(det.quads))
        timings = {} if decode_ms is None else {str(Stage.DECODE): decode_ms}
        timings.update({str(Stage.PREPROCESS): prepared.elapsed_ms, str(Stage.DETECT): det.elapsed_ms,
                        "crop": crops.elapsed_ms})
        return LocatedPage(index, image, prepared, det, crops, timings)

    def read_pages(self, pages: Sequence[Crops]) -> list[Readings]:
        """:meth:`read` of several pages' crops in one recogniser call (crops batched across pages and
        files); each page's share of the time by its crop count. A page's crops are then batched (and
        padded) with other pages' crops, so its confidences, and rarely a character, may differ from
        :meth:`trace_page`'s (the service's batcher does the same); one page alone reads as there."""
        offsets = np.cumsum([0, *(len(crops.images) for crops in pages)]).tolist()
        every = Crops(tuple(c for crops in pages for c in crops.images),
                      vertical=tuple(offsets[k] + i for k, crops in enumerate(pages) for i in crops.vertical),
                      stacked=tuple((offsets[k] + i, st) for k, crops in enumerate(pages) for i, st in crops.stacked))
        together = _staged(Stage.RECOGNIZE, self.read, every)
        doubtful = sorted(together.doubtful)
        out, start, total = [], 0, max(1, len(every.images))
        for crops in pages:
            n = len(crops.images)
            share = n / total
            out.append(Readings(together.results[start:start + n],
                                tuple(i - start for i in doubtful if start <= i < start + n),
                                together.orientation_ms * share, together.elapsed_ms * share))
            start += n
        return out

    def finish_page(self, index: int, width: int, height: int, detection: Detection,
                    readings: Readings) -> tuple[Ordered, Page]:
        """The last step of the page path: the readings of a page's crops (``detection`` in original
        pixels) kept, made lines and put in reading order; the :class:`Page` of a ``width`` x ``height``
        image."""
        ordered = _staged(Stage.POSTPROCESS, self.order, detection, readings)
        page = Page(index=index, width=width, height=height, lines=ordered.lines, blocks=ordered.blocks)
        return ordered, page

    def page_timings(self, located: dict[str, float], readings: Readings, ordered: Ordered) -> dict[str, float]:
        """One page's stage times: those of :meth:`locate_lines`, then recognition and ordering."""
        timings = {**located, str(Stage.RECOGNIZE): readings.elapsed_ms, str(Stage.POSTPROCESS): ordered.elapsed_ms}
        if self.orientation is not None:
            timings["orientation"] = readings.orientation_ms
        return timings

    def trace_page(self, image: np.ndarray, index: int = 0, *, recognize: RecognizeFn | None = None,
                   decode_ms: float | None = None, detected: Callable[[], None] | None = None) -> PageTrace:
        """Run every stage after decoding on one page image and return the full step record.

        ``recognize`` replaces the recogniser call (the service passes its batcher); ``decode_ms`` is how
        long the caller took to decode the page, recorded as the ``decode`` timing; ``detected`` is called
        once detection has finished (the service's scheduler then frees the detection memory it reserved).
        The steps are :meth:`locate_lines`, :meth:`read` and :meth:`finish_page`.
        """
        located = self.locate_lines(image, index, decode_ms=decode_ms, detected=detected)
        if recognize is None:
            readings = _staged(Stage.RECOGNIZE, self.read, located.crops)
        else:  # the caller's hook raises its own errors (e.g. the service's overload signal)
            readings = self.read(located.crops, recognize=recognize)
        height, width = located.image.shape[:2]
        ordered, page = self.finish_page(index, width, height, located.detection, readings)
        return PageTrace(index, located.image, located.prepared, located.detection, located.crops, readings,
                         ordered, page, self.page_timings(located.timings_ms, readings, ordered))

    def process_page(self, image: np.ndarray, index: int = 0, *, recognize: RecognizeFn | None = None) -> Page:
        """One already-decoded page through the page path; the :class:`Page` only."""
        return self.trace_page(image, index, recognize=recognize).page

    def process_image(self, image: np.ndarray, index: int = 0, *, recognize: RecognizeFn | None = None,
                      timings: dict[str, float] | None = None, detected: Callable[[], None] | None = None) -> Page:
        """Like :meth:`process_page`; ``timings`` (if given) is incremented with the page's stage times,
        ``detected`` is passed to :meth:`trace_page`."""
        trace = self.trace_page(image, index, recognize=recognize, detected=detected)
        if timings is not None:
            add_timings(timings, trace.timings_ms)
        return trace.page

    def traces(self, source: imageio.PageSource, *, recognize: RecognizeFn | None = None) -> Iterator[PageTrace]:
        """Render and process the pages of an open source one at a time (one page image in memory)."""
        for index in range(len(source)):
            start = time.perf_counter()
            image = source.render(index)
            yield self.trace_page(image, index, recognize=recognize, decode_ms=_since(start))

    def run(self, source: str | Path | bytes, *, filename: str | None = None,
            recognize: RecognizeFn | None = None) -> Document:
        """Decode ``source`` (path or bytes) page by page and OCR every page."""
        return self.run_traced(source, filename=filename, recognize=recognize, keep=False)[0]

    def run_traced(self, source: str | Path | bytes, *, filename: str | None = None,
                   recognize: RecognizeFn | None = None, keep: bool = True) -> tuple[Document, list[PageTrace]]:
        """:meth:`run`, also returning each page's :class:`PageTrace` (none when ``keep`` is false)."""
        started = time.perf_counter()
        pages, kept = [], []
        with self.open(source, filename=filename) as src:
            timings = {str(Stage.DECODE): _since(started)}  # reading and sniffing; pages add their render
            for trace in self.traces(src, recognize=recognize):
                add_timings(timings, trace.timings_ms)
                pages.append(trace.page)
                if keep:
                    kept.append(trace)
        return self.document(pages, timings, started=started), kept

    def run_pages(self, images: Sequence[np.ndarray], *, recognize: RecognizeFn | None = None) -> Document:
        """OCR already-decoded pages (gray or RGBA arrays are converted); no ``decode`` timing."""
        started = time.perf_counter()
        timings: dict[str, float] = {}
        pages = []
        for i, img in enumerate(images):
            trace = self.trace_page(img, i, recognize=recognize)
            add_timings(timings, trace.timings_ms)
            pages.append(trace.page)
        return self.document(pages, timings, started=started)

    def run_image(self, image: np.ndarray) -> Document:
        """OCR one already-decoded image."""
        return self.run_pages([image])

    def document(self, pages: Sequence[Page], timings_ms: dict[str, float], *, started: float) -> Document:
        """The Document this pipeline reports: its engine name and models, ``total`` = wall time since
        ``started`` (a :func:`time.perf_counter` value)."""
        return build_document(self.engine_name, pages, timings_ms=timings_ms, models=self.models(),
                              started=started)

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


STACKED_MARGIN = 0.05
"""Confidence by which a vertical line's stacked reading must beat its turned one to be kept."""


def _recognize_oriented(crops: list[np.ndarray], doubtful: list[int], rec_fn: RecognizeFn,
                        stacked: Sequence[tuple[int, np.ndarray]] = ()) -> list[RecResult]:
    """Recognise crops; the ``doubtful`` ones are also read rotated by 180° and the more confident
    reading is kept; a vertical line's ``stacked`` image (index, image) is read too and kept when it is
    :data:`STACKED_MARGIN` more confident (its words are then spaced by characters along the column)."""
    batch = crops + [np.ascontiguousarray(np.rot90(crops[i], 2)) for i in doubtful] + [st for _, st in stacked]
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
    for k, (i, _) in enumerate(stacked):
        upright = results[len(crops) + len(doubtful) + k]
        if upright.confidence > chosen[i].confidence + STACKED_MARGIN:
            chosen[i] = replace(upright, words=())  # its spans lie on the stacked image, not the column
    return chosen


def _staged(stage: Stage, fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)``; an unexpected exception becomes an ``engine_failure`` naming the stage."""
    try:
        return fn(*args)
    except OcrError:
        raise
    except Exception as exc:
        raise EngineError(ErrorCode.ENGINE_FAILURE, f"{stage.value} failed: {type(exc).__name__}: {exc}",
                          stage=stage) from exc


def add_timings(into: dict[str, float], more: dict[str, float]) -> None:
    """Add per-stage milliseconds of ``more`` into ``into`` (``total`` is never summed)."""
    for key, value in more.items():
        if key != "total":
            into[key] = into.get(key, 0.0) + value


def _since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
