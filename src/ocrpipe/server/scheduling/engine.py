"""The service's view of the engine: one shared :class:`~ocrpipe.Pipeline`, a page-worker thread pool and
(optionally) the dynamic batcher between detection and recognition.

Every CPU-heavy call runs on the page workers (or the batcher's own thread), never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from ocrpipe.document import Document, Page, RecResult
from ocrpipe.engine import decode as imageio
from ocrpipe.engine import runtime
from ocrpipe.engine.pipeline import Pipeline, add_timings
from ocrpipe.engine.recognize.base import Recognizer
from ocrpipe.errors import EngineError, ErrorCode, InputError, OcrError, Stage
from ocrpipe.server import memory
from ocrpipe.server.metrics import Metrics
from ocrpipe.server.scheduling.batcher import BatcherClosed, BatcherOverloaded, DynamicBatcher
from ocrpipe.server.scheduling.pages import Pages, PageScheduler, Ticket
from ocrpipe.server.scheduling.recognizers import batch_neural, input_height
from ocrpipe.server.settings import ServiceSettings
from ocrpipe.settings import pipeline_config

log = logging.getLogger(__name__)
T = TypeVar("T")

_STAGE_OF_TIMING = {"preprocess": Stage.PREPROCESS, "detect": Stage.DETECT, "crop": Stage.DETECT,
                    "recognize": Stage.RECOGNIZE, "postprocess": Stage.POSTPROCESS}


def lower_thread_priority(nice: int) -> None:
    """Raise the calling thread's niceness by ``nice`` (Linux schedules threads individually)."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:  # not permitted or not supported: keep the default priority
        log.debug("cannot lower thread priority")


def crop_aspect(crop: np.ndarray) -> float:
    """Sort key of the batcher: width after the recogniser rescales the crop to its fixed height."""
    return crop.shape[1] / max(1, crop.shape[0])


def padded_cost(height: int) -> Callable[[Sequence[np.ndarray]], float]:
    """Cost of a batch for a model of input ``height``: crops x widest crop, in pixels at that height
    (what the recogniser pads every crop of the batch to)."""

    def cost(crops: Sequence[np.ndarray]) -> float:
        return len(crops) * float(height) * max(crop_aspect(c) for c in crops)

    return cost


class OcrEngine:
    """Loads the models once and runs documents, pages, detections and line recognitions."""

    def __init__(self, settings: ServiceSettings, metrics: Metrics, pipeline: Pipeline | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        nice = lambda: lower_thread_priority(settings.worker_nice)  # noqa: E731
        self._nice = nice
        self.batcher: DynamicBatcher[np.ndarray, RecResult] | None = None
        pipeline = pipeline or Pipeline(pipeline_config(settings))
        if settings.batching:
            recognizer, self.batcher = batch_neural(pipeline.recognizer, self._make_batcher)
            pipeline = pipeline.with_recognizer(recognizer)
        self.pipeline = pipeline
        self.models = [m.to_dict() for m in self.pipeline.models()]
        self.executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="ocr-aux", initializer=nice)
        memory.limit_arenas(settings.malloc_arena_max)
        memory.fix_mmap_threshold(settings.malloc_mmap_threshold_mb)
        self.scheduler = PageScheduler(self._page_fn, self._document, workers=settings.workers,
                                       memory_budget=int(settings.page_memory_mb * 1024 * 1024),
                                       lane_threads=settings.request_threads,
                                       work_memory=self.pipeline.detection_memory, thread_init=nice)
        self.trimmer = (memory.IdleTrimmer(self._activity, settings.idle_trim_s, release=runtime.release_arenas)
                        if settings.idle_trim_s else None)

    def _activity(self) -> int:
        """Pages and files done plus crops recognised: changes whenever the service works."""
        return self.scheduler.tasks_done + (self.batcher.stats.items if self.batcher is not None else 0)

    def _make_batcher(self, neural: Recognizer) -> DynamicBatcher[np.ndarray, RecResult]:
        """The dynamic batcher around the neural model, its cost model at the model's own input height."""
        s = self.settings
        return DynamicBatcher(
            neural.recognize, max_batch_size=s.max_batch_size, max_wait_ms=s.max_wait_ms,
            max_queue=s.max_queue, admission_timeout=s.admission_timeout_s, sort_key=crop_aspect,
            batch_cost=padded_cost(input_height(neural)) if s.max_batch_width else None,
            max_batch_cost=float(s.max_batch_width or "inf"), on_batch=self._on_batch,
            on_restart=self.metrics.inference_restarts.inc, threads=s.batch_threads, thread_init=self._nice,
            name="ocr-batcher")

    def _on_batch(self, size: int, seconds: float, callers: int) -> None:
        self.metrics.on_batch(size, seconds, callers)
        if self.batcher is not None:
            self.metrics.queue_depth.set(self.batcher.depth)

    @property
    def healthy(self) -> bool:
        """False when the batcher cannot keep its inference threads alive (``/readyz`` turns 503)."""
        if self.batcher is None:
            return True
        self.metrics.inference_threads.set(self.batcher.alive_threads)
        return self.batcher.healthy

    # ---- recognition hook --------------------------------------------------------------------------

    def recognize(self, crops: Sequence[np.ndarray]) -> list[RecResult]:
        """The ``recognize`` hook: the recogniser (whose neural model is batched when batching is on), or
        the sequential path (per page or per crop)."""
        if self.batcher is not None:
            return self.pipeline.recognize(crops)
        if self.settings.sequential_unit == "crop":
            out: list[RecResult] = []
            for crop in crops:
                start = time.perf_counter()
                out.extend(self.pipeline.recognize([crop]))
                self.metrics.on_batch(1, time.perf_counter() - start)
            return out
        start = time.perf_counter()
        res = self.pipeline.recognize(crops)
        self.metrics.on_batch(len(crops), time.perf_counter() - start)
        return res

    # ---- blocking API (call from worker threads) ---------------------------------------------------

    def process_page(self, image: np.ndarray, index: int,
                     detected: Callable[[], None] | None = None) -> tuple[Page, dict[str, float]]:
        """All stages after decoding, with the failing stage attached to any error."""
        return self._staged(lambda timings: self.pipeline.process_image(
            image, index, recognize=self.recognize, timings=timings, detected=detected))

    def detect_page(self, image: np.ndarray, index: int,
                    detected: Callable[[], None] | None = None) -> tuple[dict[str, Any], dict[str, float]]:
        """The detection steps of the page path on one page: its text boxes (the page's pixels) and scores."""

        def run(timings: dict[str, float]) -> dict[str, Any]:
            prepared, det = self.pipeline.find_text(image, detected=detected)
            timings["preprocess"] = prepared.elapsed_ms
            timings["detect"] = det.elapsed_ms
            return detection_json(image, index, prepared.to_original(det.quads), det.scores)

        return self._staged(run)

    def _staged(self, run: Callable[[dict[str, float]], T]) -> tuple[T, dict[str, float]]:
        """``run(timings)`` with the failing stage attached to any error; the stage times go to the metrics."""
        timings: dict[str, float] = {}
        try:
            result = run(timings)
        except (OcrError, BatcherOverloaded):
            raise
        except BatcherClosed as exc:  # shutting down
            raise EngineError(ErrorCode.ENGINE_FAILURE, "the service is shutting down",
                              stage=Stage.RECOGNIZE) from exc
        except Exception as exc:
            # The pipeline names the stage of its own failures; what is left came from the recognize hook.
            stage = _STAGE_OF_TIMING.get(next(reversed(timings), "recognize"), Stage.POSTPROCESS)
            log.error("page failed", extra={"stage": stage.value, "error": type(exc).__name__}, exc_info=exc)
            raise EngineError(ErrorCode.ENGINE_FAILURE, f"{stage.value} failed: {type(exc).__name__}",
                              stage=stage) from exc
        self.metrics.observe_timings(timings)
        return result, timings

    def _page_fn(self, image: np.ndarray, index: int, timings: dict[str, float],
                 detected: Callable[[], None]) -> Page:
        page, page_timings = self.process_page(imageio.as_rgb(image), index, detected)
        add_timings(timings, page_timings)
        return page

    def _detect_fn(self, image: np.ndarray, index: int, timings: dict[str, float],
                   detected: Callable[[], None]) -> dict[str, Any]:
        page, page_timings = self.detect_page(imageio.as_rgb(image), index, detected)
        add_timings(timings, page_timings)
        return page

    def _ticket(self, data: bytes, filename: str | None, *, sync: bool, **kinds: Any) -> Ticket:
        s = self.settings
        budget = s.sync_timeout_s if sync else s.job_timeout_s
        return Ticket(open=lambda: self.open_pages(data, filename), deadline=time.monotonic() + budget,
                      max_pages=s.max_sync_pages if sync else None, **kinds)

    def open_pages(self, data: bytes, filename: str | None) -> Pages:
        """The file opened for the scheduler (its pages are rendered when a page thread takes them)."""
        start = time.perf_counter()
        try:
            return self.pipeline.open(data, filename=filename)
        finally:
            self.metrics.stage_latency.labels(stage="decode").observe(time.perf_counter() - start)

    def run_document(self, data: bytes, filename: str | None) -> Document:
        """OCR one file as a job (blocking; for job workers): its pages share the page threads fairly."""
        return self.scheduler.submit([self._ticket(data, filename, sync=False)])[0].result()

    def run_pages(self, images: Sequence[np.ndarray]) -> tuple[list[Page], dict[str, float]]:
        """Already-decoded pages through the scheduler (blocking; for job workers): pages and stage times."""
        ticket = Ticket(open=lambda: _InMemory(list(images)), deadline=time.monotonic() + self.settings.job_timeout_s)
        doc = self.scheduler.submit([ticket])[0].result()
        return list(doc.pages), {k: v for k, v in doc.timings_ms.items() if k != "total"}

    def _document(self, pages: list[Page], timings: dict[str, float], start: float) -> Document:
        return self.pipeline.document(pages, timings, started=start)

    # ---- async API (call from the event loop) ------------------------------------------------------

    async def _offload(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def ocr(self, data: bytes, filename: str | None) -> Document:
        """One file, synchronously: its pages are interleaved with those of other requests and jobs."""
        future = self.scheduler.submit([self._ticket(data, filename, sync=True)])[0]
        return await asyncio.wrap_future(future)

    async def ocr_many(self, files: Sequence[tuple[bytes, str | None]]) -> list[Document | OcrError]:
        """Several files as one lane: opened one after the other, their pages interleaved with others'.

        A file that cannot be read or processed gets its own :class:`OcrError` in the list; overload and
        unexpected errors fail the whole request.
        """
        futures = self.scheduler.submit([self._ticket(d, n, sync=True) for d, n in files])
        results = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures), return_exceptions=True)
        _raise_unexpected(results)
        return [r for r in results if isinstance(r, Document | OcrError)]

    async def detect(self, data: bytes, filename: str | None) -> list[dict[str, Any]]:
        """The text boxes of every page of one file, synchronously: its pages go through the scheduler like
        those of :meth:`ocr` (rendered one at a time, interleaved, budgeted, capped, timed)."""
        ticket = self._ticket(data, filename, sync=True, page_fn=self._detect_fn,
                              document_fn=lambda pages, _timings, _start: pages)
        pages: list[dict[str, Any]] = await asyncio.wrap_future(self.scheduler.submit([ticket])[0])
        return pages

    async def recognize_lines(self, files: Sequence[tuple[bytes, str | None]]) -> list[RecResult]:
        """Each file is one line image (all frames/pages of a file count as separate lines, at most
        ``max_sync_pages`` a file); all lines go to the recogniser in one call (the batcher's, when on), within
        the synchronous time budget."""
        try:
            return await asyncio.wait_for(self._recognize_lines(files), self.settings.sync_timeout_s)
        except TimeoutError as exc:
            raise EngineError(ErrorCode.DEADLINE_EXCEEDED, "the request's time budget ran out before its "
                              "lines were recognised; send fewer lines per request", stage=Stage.RECOGNIZE) from exc

    async def _recognize_lines(self, files: Sequence[tuple[bytes, str | None]]) -> list[RecResult]:
        decoded = await asyncio.gather(*(self._offload(self._line_images, d, n) for d, n in files))
        crops = [img for images in decoded for img in images]
        return await self._offload(self.recognize, crops)

    def _line_images(self, data: bytes, filename: str | None) -> list[np.ndarray]:
        """The pages of one line-image file, under the synchronous page cap (checked before rendering)."""
        start = time.perf_counter()
        try:
            with self.pipeline.open(data, filename=filename) as pages:
                if len(pages) > self.settings.max_sync_pages:
                    raise InputError(ErrorCode.TOO_MANY_PAGES_FOR_SYNC,
                                     f"{filename or 'the file'} has {len(pages)} pages; synchronous requests "
                                     f"take at most {self.settings.max_sync_pages} a file: send the lines as "
                                     "separate files, or the document to POST /v1/jobs")
                return [pages.render(i) for i in range(len(pages))]
        finally:
            self.metrics.stage_latency.labels(stage="decode").observe(time.perf_counter() - start)

    def close(self) -> None:
        """Stop the page threads, the batcher and the helper threads."""
        if self.trimmer is not None:
            self.trimmer.close()
        self.scheduler.close()
        if self.batcher is not None:
            self.batcher.close()
        self.executor.shutdown(wait=True, cancel_futures=True)


def detection_json(image: np.ndarray, index: int, quads: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """One page of ``/v1/detection``: its size and its boxes (clockwise from top-left, 0.1 px) with scores."""
    boxes = [[[round(float(x), 1), round(float(y), 1)] for x, y in q] for q in quads]
    scored = [{"box": b, "score": round(float(s), 4)} for b, s in zip(boxes, scores, strict=True)]
    return {"index": index, "width": int(image.shape[1]), "height": int(image.shape[0]), "boxes": scored}


def _raise_unexpected(results: Sequence[object]) -> None:
    """Re-raise the first error that is not a per-file :class:`OcrError` (overload, bugs, cancellation)."""
    for res in results:
        if isinstance(res, BaseException) and (not isinstance(res, OcrError) or isinstance(res, BatcherOverloaded)):
            raise res


class _InMemory:
    """Pages already decoded, in the scheduler's :class:`Pages` shape."""

    def __init__(self, images: list[np.ndarray]) -> None:
        self._images = images

    def __len__(self) -> int:
        return len(self._images)

    def page_size(self, index: int) -> tuple[int, int]:
        h, w = self._images[index].shape[:2]
        return int(w), int(h)

    def render(self, index: int) -> np.ndarray:
        return self._images[index]

    def close(self) -> None:
        self._images = []
