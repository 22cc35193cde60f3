"""The local bulk runner: the files of a plan in ``jobs`` processes (or this one, for ``--jobs 1``).

Each process loads the pipeline once; a file is read with :meth:`Pipeline.run` (the same page path and
Document as ``ocrpipe ocr``) and written atomically; a file that fails gets its error record and the run
goes on.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocrpipe.bulk.files import Item, error_record, is_done, write_document, write_error
from ocrpipe.errors import OcrError

if TYPE_CHECKING:
    from ocrpipe.engine.pipeline import Pipeline, PipelineConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one attempt at one input came to (``code`` is None on success, ``skipped`` when another attempt
    had already written it)."""

    key: str
    code: str | None = None
    pages: int = 0
    seconds: float = 0.0
    skipped: bool = False


def ocr_item(pipeline: Pipeline, item: Item, out: Path, data: bytes | None = None) -> Outcome:
    """OCR one input (``data``: its bytes when the caller already read them) and write its Document or its
    error record. Idempotent: an input already done (by an attempt that died after writing) is skipped."""
    if is_done(item, out):
        return Outcome(item.key, skipped=True)
    start = time.perf_counter()
    try:
        doc = pipeline.run(item.path if data is None else data, filename=item.path.name)
    except Exception as exc:  # noqa: BLE001 - recorded per file; the run goes on
        if not isinstance(exc, OcrError):
            log.exception("unexpected failure on %s", item.key)
        record = error_record(item, exc)
        write_error(item, out, record)
        return Outcome(item.key, code=record["code"], seconds=time.perf_counter() - start)
    write_document(item, out, doc)
    return Outcome(item.key, pages=len(doc.pages), seconds=time.perf_counter() - start)


_PIPELINE: Pipeline | None = None


def _init_process(config: PipelineConfig) -> None:
    global _PIPELINE
    from ocrpipe.engine.pipeline import Pipeline

    _PIPELINE = Pipeline(config)


def _run_in_process(item: Item, out: Path) -> Outcome:
    assert _PIPELINE is not None, "the process initializer loads the pipeline"
    return ocr_item(_PIPELINE, item, out)


def run_local(config: PipelineConfig, items: list[Item], out: Path, *, jobs: int,
              on_outcome: Callable[[Outcome], None]) -> None:
    """Run ``items`` in ``jobs`` processes (1: in this process), calling ``on_outcome`` as each finishes."""
    if jobs <= 1 or len(items) <= 1:
        from ocrpipe.engine.pipeline import Pipeline

        pipeline = Pipeline(config)
        for item in items:
            on_outcome(ocr_item(pipeline, item, out))
        return
    # spawn: the children load their own models and never inherit this process's threads
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(jobs, len(items)), mp_context=ctx, initializer=_init_process,
                             initargs=(config,)) as pool:
        futures = {pool.submit(_run_in_process, item, out): item for item in items}
        for future in as_completed(futures):
            item = futures[future]
            try:
                on_outcome(future.result())
            except Exception as exc:  # noqa: BLE001 - a worker process died: record it, go on
                record = error_record(item, exc)
                write_error(item, out, record)
                on_outcome(Outcome(item.key, code=record["code"]))


def threads_per_process(threads: int, jobs: int) -> int:
    """ONNX Runtime threads of each of ``jobs`` processes: ``threads`` when set, else the usable CPUs
    shared out (at least one each)."""
    if threads:
        return threads
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // max(1, jobs))


def progress(total: int, *, initial: int = 0) -> Any:
    """The run's progress bar on stderr (files done, failures in the postfix)."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="file", file=sys.stderr, dynamic_ncols=True,
                disable=None if total > 1 else True)


def count_failures(outcomes: Iterable[Outcome]) -> int:
    return sum(1 for o in outcomes if o.code is not None)
