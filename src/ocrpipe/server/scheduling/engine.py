"""The service's view of the engine: one shared :class:`~ocrpipe.Pipeline`, a page-worker thread pool and
(optionally) the dynamic batcher between detection and recognition.

Every CPU-heavy call runs on the page workers (or the batcher's own thread), never on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from ocrpipe.document import Document, Page, RecResult
from ocrpipe.engine.pipeline import Pipeline
from ocrpipe.errors import EngineError, ErrorCode, OcrError, Stage
from ocrpipe.server.metrics import Metrics
from ocrpipe.server.scheduling.batcher import BatcherClosed, BatcherOverloaded, DynamicBatcher
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


def padded_width(crops: Sequence[np.ndarray], height: float) -> float:
    """Cost of a batch: crops x widest crop, in pixels at the recogniser's input ``height`` (every crop is
    scaled to it and padded to the widest)."""
    return len(crops) * height * max(crop_aspect(c) for c in crops)


class OcrEngine:
    """Loads the models once and runs documents, pages, detections and line recognitions."""

    def __init__(self, settings: ServiceSettings, metrics: Metrics, pipeline: Pipeline | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.pipeline = pipeline or Pipeline(pipeline_config(settings))
        self.models = [m.to_dict() for m in self.pipeline.models()]
        nice = lambda: lower_thread_priority(settings.worker_nice)  # noqa: E731
        self.executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="ocr-page", initializer=nice)
        self.batcher: DynamicBatcher[np.ndarray, RecResult] | None = None
        if settings.batching:
            self.batcher = DynamicBatcher(
                self.pipeline.recognize, max_batch_size=settings.max_batch_size,
                max_wait_ms=settings.max_wait_ms, max_queue=settings.max_queue,
                admission_timeout=settings.admission_timeout_s, sort_key=crop_aspect,
                batch_cost=functools.partial(padded_width, height=self.pipeline.recognizer.input_height)
                if settings.max_batch_width else None,
                max_batch_cost=float(settings.max_batch_width or "inf"),
                on_batch=metrics.on_batch, threads=settings.batch_threads, thread_init=nice, name="ocr-batcher",
            )

    # ---- recognition hook --------------------------------------------------------------------------

    def recognize(self, crops: Sequence[np.ndarray]) -> list[RecResult]:
        """The ``recognize`` hook: the dynamic batcher, or the sequential path (per page or per crop)."""
        if self.batcher is not None:
            self.metrics.queue_depth.set(self.batcher.depth + len(crops))
            try:
                return self.batcher(list(crops))
            finally:
                self.metrics.queue_depth.set(self.batcher.depth)
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

    def decode(self, data: bytes, filename: str | None) -> list[np.ndarray]:
        start = time.perf_counter()
        try:
            return self.pipeline.decode(data, filename=filename)
        finally:
            self.metrics.stage_latency.labels(stage="decode").observe(time.perf_counter() - start)

    def process_page(self, image: np.ndarray, index: int) -> tuple[Page, dict[str, float]]:
        """All stages after decoding, with the failing stage attached to any error."""
        timings: dict[str, float] = {}
        try:
            page = self.pipeline.process_image(image, index, recognize=self.recognize, timings=timings)
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
        return page, timings

    def run_pages(self, images: Sequence[np.ndarray]) -> tuple[list[Page], dict[str, float]]:
        """Process pages concurrently on the page workers (their crops meet in the batcher)."""
        futures = [self.executor.submit(self.process_page, img, i) for i, img in enumerate(images)]
        return _collect(futures)

    def run_document(self, data: bytes, filename: str | None) -> Document:
        """Decode and OCR one file (blocking; for job workers)."""
        start = time.perf_counter()
        images = self.decode(data, filename)
        decode_ms = (time.perf_counter() - start) * 1000.0
        pages, timings = self.run_pages(images)
        return self._document(pages, {"decode": decode_ms, **timings}, start)

    def _document(self, pages: list[Page], timings: dict[str, float], start: float) -> Document:
        return self.pipeline.document(pages, timings, started=start)

    # ---- async API (call from the event loop) ------------------------------------------------------

    async def _offload(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def ocr(self, data: bytes, filename: str | None) -> Document:
        start = time.perf_counter()
        images = await self._offload(self.decode, data, filename)
        decode_ms = (time.perf_counter() - start) * 1000.0
        pages, timings = await self._pages(images)
        return self._document(pages, {"decode": decode_ms, **timings}, start)

    async def ocr_many(self, files: Sequence[tuple[bytes, str | None]]) -> list[Document | OcrError]:
        """Several files: every page of every file goes to the page workers at once.

        A file that cannot be read or processed gets its own :class:`OcrError` in the list; overload and
        unexpected errors fail the whole request.
        """
        start = time.perf_counter()
        decoded = await asyncio.gather(*(self._offload(self.decode, d, n) for d, n in files),
                                       return_exceptions=True)
        _raise_unexpected(decoded)
        flat = [(f, i, img) for f, images in enumerate(decoded) if not isinstance(images, BaseException)
                for i, img in enumerate(images)]
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.run_in_executor(self.executor, self.process_page, img, i) for _, i, img in flat),
            return_exceptions=True)
        _raise_unexpected(results)
        out: list[Document | OcrError] = []
        for f, images in enumerate(decoded):
            mine = [res for (ff, _, _), res in zip(flat, results, strict=True) if ff == f]
            failed = [r for r in mine if isinstance(r, OcrError)]
            if isinstance(images, OcrError):
                out.append(images)
            elif failed:
                out.append(failed[0])
            else:
                ok = [r for r in mine if not isinstance(r, BaseException)]
                out.append(self._document([p for p, _ in ok], _sum_timings(t for _, t in ok), start))
        return out

    async def _pages(self, images: Sequence[np.ndarray]) -> tuple[list[Page], dict[str, float]]:
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.run_in_executor(self.executor, self.process_page, img, i) for i, img in enumerate(images)))
        return [p for p, _ in results], _sum_timings(t for _, t in results)

    async def detect(self, data: bytes, filename: str | None) -> list[dict[str, Any]]:
        images = await self._offload(self.decode, data, filename)
        pages = (self._offload(self._detect_page, img, i) for i, img in enumerate(images))
        return list(await asyncio.gather(*pages))

    def _detect_page(self, image: np.ndarray, index: int) -> dict[str, Any]:
        start = time.perf_counter()
        prepared = self.pipeline.preprocess(image)
        det = self.pipeline.detect(prepared.image)
        quads = prepared.to_original(det.quads)
        self.metrics.stage_latency.labels(stage="detect").observe(time.perf_counter() - start)
        boxes = [[[round(float(x), 1), round(float(y), 1)] for x, y in q] for q in quads]
        scored = [{"box": b, "score": round(float(s), 4)} for b, s in zip(boxes, det.scores, strict=True)]
        return {"index": index, "width": int(image.shape[1]), "height": int(image.shape[0]), "boxes": scored}

    async def recognize_lines(self, files: Sequence[tuple[bytes, str | None]]) -> list[RecResult]:
        """Each file is one line image (all frames/pages of a file count as separate lines)."""
        decoded = await asyncio.gather(*(self._offload(self.decode, d, n) for d, n in files))
        crops = [img for images in decoded for img in images]
        return await self._offload(self.recognize, crops)

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()
        self.executor.shutdown(wait=True, cancel_futures=True)


def _raise_unexpected(results: Sequence[object]) -> None:
    """Re-raise the first error that is not a per-file :class:`OcrError` (overload, bugs, cancellation)."""
    for res in results:
        if isinstance(res, BaseException) and not isinstance(res, OcrError):
            raise res


def _collect(futures: list[Future[tuple[Page, dict[str, float]]]]) -> tuple[list[Page], dict[str, float]]:
    results = []
    try:
        for f in futures:
            results.append(f.result())
    finally:
        for f in futures:
            f.cancel()
    return [p for p, _ in results], _sum_timings(t for _, t in results)


def _sum_timings(parts: Any) -> dict[str, float]:
    total: dict[str, float] = {}
    for t in parts:
        for k, v in t.items():
            total[k] = total.get(k, 0.0) + v
    return total
