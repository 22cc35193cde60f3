"""``ocrpipe batch --ray ADDRESS``: bulk OCR on a Ray cluster with Ray Data, in stages.

``read_binary_files`` (one block per file, so a lost block is one file to redo) → **decode** (Ray tasks:
the file's pages rendered under the pipeline's limits) → **detect** (an actor pool of ``--det-actors``, each
holding one pipeline: :meth:`Pipeline.locate_lines`, i.e. preprocess, detect and cut the line crops) →
**recognise** (an actor pool of ``--rec-actors``, ``--rec-batch-files`` files per call: each page's crops
read by :meth:`Pipeline.read_pages`, with ``--rec-pool-pages`` all those files' crops in one call, then
:meth:`Pipeline.finish_page` and the Document) → **write** (in the
recogniser actor, with the same atomic functions as the local runner). Between the stages travel a file's
page images, then its crops, quads and stage times (:class:`FileWork`); a file that fails at any stage
carries its error record to the write. Each Document equals ``ocrpipe ocr --format json``'s but for its
timings: ``total`` is the sum of the file's stage times (time queued between stages is not counted).

Fault tolerance: Ray Data's actors restart and their tasks are retried (``max_restarts``/``max_task_retries``
-1) when a worker node or actor dies; a file whose attempt died is read again, and one whose output an
earlier attempt already wrote is skipped (at decode and again at the write), so every input ends with
exactly one output. Inputs and ``--out`` must be on a file system every node sees (one machine, or a shared
mount).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocrpipe.bulk.cli import BatchSettings, drive
from ocrpipe.bulk.files import Item, error_record, is_done, write_document, write_error
from ocrpipe.bulk.local import Outcome
from ocrpipe.cluster.settings import RayBulkSettings
from ocrpipe.errors import ErrorCode, InputError, OcrError

if TYPE_CHECKING:
    import numpy as np

    from ocrpipe.document import Page
    from ocrpipe.engine.detect import Detection
    from ocrpipe.engine.pipeline import Crops, PipelineConfig

log = logging.getLogger(__name__)


@dataclass
class PageWork:
    """One page between the stages: its image until detection, then its crops and quads."""

    index: int
    width: int
    height: int
    timings_ms: dict[str, float]
    image: np.ndarray | None = None
    detection: Detection | None = None
    crops: Crops | None = None
    page: Page | None = None
    """The finished page (after recognition)."""


@dataclass
class FileWork:
    """One input file between the stages."""

    key: str
    path: str
    pages: list[PageWork] = field(default_factory=list)
    error: dict[str, Any] | None = None
    """Its error record once a stage failed on it (written by the last stage)."""
    skipped: bool = False
    """An earlier attempt already wrote its output."""
    seconds: float = 0.0
    """Time the stages spent on it."""


def _fail(work: FileWork, item: Item, exc: Exception) -> None:
    if not isinstance(exc, OcrError):
        log.exception("unexpected failure on %s", item.key)
    work.error, work.pages = error_record(item, exc), []


def _item(work: FileWork) -> Item:
    return Item(Path(work.path), work.key)


def decode_files(batch: dict[str, Any], *, config: PipelineConfig, out: str,
                 keys: dict[str, str]) -> dict[str, list[Any]]:
    """The decode stage (a Ray task per block): each file's pages rendered (``decode`` timing per page;
    the file's reading and sniffing counted on its first page, as :meth:`Pipeline.run` counts them)."""
    from ocrpipe.engine import decode as imageio

    works = []
    for data, path in zip(batch["bytes"], batch["path"], strict=True):
        item = Item(Path(_norm(str(path))), keys[_norm(str(path))])
        work = FileWork(item.key, str(item.path))
        if is_done(item, Path(out)):
            work.skipped = True
            works.append(work)
            continue
        start = time.perf_counter()
        try:
            with imageio.open_pages(bytes(data), filename=item.path.name, limits=config.limits,
                                    dpi=config.pdf_dpi) as src:
                opened = (time.perf_counter() - start) * 1000.0
                for index in range(len(src)):
                    t = time.perf_counter()
                    image = imageio.as_rgb(src.render(index))
                    ms = (time.perf_counter() - t) * 1000.0 + (opened if index == 0 else 0.0)
                    height, width = image.shape[:2]
                    work.pages.append(PageWork(index, width, height, {"decode": ms}, image=image))
        except Exception as exc:  # noqa: BLE001 - recorded per file; the run goes on
            _fail(work, item, exc)
        work.seconds += time.perf_counter() - start
        works.append(work)
    return {"work": works}


class DetectorActor:
    """The detect stage: one pipeline per actor; each page's line crops and quads (original pixels)."""

    def __init__(self, config: PipelineConfig) -> None:
        from ocrpipe.engine.pipeline import Pipeline

        self.pipeline = Pipeline(config)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        works: list[FileWork] = list(batch["work"])
        for work in works:
            if work.skipped or work.error is not None:
                continue
            start = time.perf_counter()
            try:
                for page in work.pages:
                    assert page.image is not None
                    located = self.pipeline.locate_lines(page.image, page.index,
                                                         decode_ms=page.timings_ms["decode"])
                    page.detection, page.crops, page.timings_ms = located.detection, located.crops, \
                        located.timings_ms
                    page.image = None  # the crops travel on, not the page
            except Exception as exc:  # noqa: BLE001 - recorded per file; the run goes on
                _fail(work, _item(work), exc)
            work.seconds += time.perf_counter() - start
        return {"work": works}


class RecognizerActor:
    """The recognise and write stages: the crops of a batch of files read together, then each file's pages
    finished, its Document (or error record) written atomically, and its outcome reported."""

    def __init__(self, config: PipelineConfig, out: str, pool_pages: bool) -> None:
        from ocrpipe.engine.pipeline import Pipeline

        self.pipeline = Pipeline(config)
        self.out = Path(out)
        self.pool_pages = pool_pages

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        works: list[FileWork] = list(batch["work"])
        todo = [w for w in works if not w.skipped and w.error is None and not is_done(_item(w), self.out)]
        start = time.perf_counter()
        try:
            self._read(todo)
        except Exception:  # noqa: BLE001 - one file spoilt the batch: read each alone to find which
            for work in todo:
                self._read([work])
        share = (time.perf_counter() - start) / max(1, len(todo))
        rows: dict[str, list[Any]] = {"key": [], "code": [], "pages": [], "seconds": [], "skipped": []}
        for work in works:
            outcome = self._write(work, share if work in todo else 0.0)
            rows["key"].append(outcome.key)
            rows["code"].append(outcome.code or "")
            rows["pages"].append(outcome.pages)
            rows["seconds"].append(outcome.seconds)
            rows["skipped"].append(outcome.skipped)
        return rows

    def _read(self, works: list[FileWork]) -> None:
        """Every page of ``works`` read (in one recogniser call with ``--rec-pool-pages``, else one call per
        page), each page finished (``page.page``)."""
        pages = [p for w in works for p in w.pages]
        crops = [p.crops for p in pages if p.crops is not None]
        try:
            if self.pool_pages:
                readings = self.pipeline.read_pages(crops)
            else:
                readings = [r for c in crops for r in self.pipeline.read_pages([c])]
        except Exception as exc:
            if len(works) != 1:
                raise
            _fail(works[0], _item(works[0]), exc)
            return
        for page, reading in zip(pages, readings, strict=True):
            assert page.detection is not None
            ordered, finished = self.pipeline.finish_page(page.index, page.width, page.height, page.detection,
                                                          reading)
            page.timings_ms = self.pipeline.page_timings(page.timings_ms, reading, ordered)
            page.page, page.crops = finished, None

    def _write(self, work: FileWork, seconds: float) -> Outcome:
        from ocrpipe.engine.pipeline import add_timings

        item = _item(work)
        if work.skipped or (work.error is None and is_done(item, self.out)):
            return Outcome(work.key, skipped=True)
        if work.error is not None:
            write_error(item, self.out, work.error)
            return Outcome(work.key, code=work.error["code"], seconds=work.seconds)
        timings: dict[str, float] = {}
        for page in work.pages:
            add_timings(timings, page.timings_ms)
        started = time.perf_counter() - sum(timings.values()) / 1000.0
        doc = self.pipeline.document([p.page for p in work.pages if p.page is not None], timings,
                                     started=started)
        write_document(item, self.out, doc)
        return Outcome(work.key, pages=len(work.pages), seconds=work.seconds + seconds)


def _norm(path: str) -> str:
    """Ray Data gives local paths without a scheme; compare absolute, normalised paths."""
    return os.path.normpath("/" + path.lstrip("/"))


def run_on_ray(config: PipelineConfig, items: list[Item], out: Path, *, jobs: int, cluster: RayBulkSettings,
               on_outcome: Callable[[Outcome], None]) -> None:
    """Run ``items`` on the cluster at ``cluster.ray``; ``on_outcome`` as each file's outcome arrives."""
    import ray

    readable = []
    for item in items:
        if item.path.is_file():
            readable.append(item)
        else:  # read_binary_files would fail the whole run on it
            record = error_record(item, InputError(ErrorCode.FILE_NOT_FOUND, f"no such file: {item.path}"))
            write_error(item, out, record)
            on_outcome(Outcome(item.key, code=record["code"]))
    if not readable:
        return
    ray.init(address=cluster.ray, namespace=cluster.ray_namespace, log_to_driver=False,
             logging_level=logging.WARNING)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # ours counts files
        ctx.print_on_execution_start = False
        seen: set[str] = set()
        for row in _dataset(config, readable, out, jobs=jobs, cluster=cluster).iter_rows():
            if row["key"] in seen:  # a retried block may report a file twice; its output is written once
                continue
            seen.add(row["key"])
            on_outcome(Outcome(row["key"], code=row["code"] or None, pages=int(row["pages"]),
                               seconds=float(row["seconds"]), skipped=bool(row["skipped"])))
    finally:
        ray.shutdown()


def _dataset(config: PipelineConfig, items: list[Item], out: Path, *, jobs: int, cluster: RayBulkSettings) -> Any:
    """read → decode → detect (actor pool) → recognise and write (actor pool)."""
    import ray

    det_actors, rec_actors = cluster.pools(jobs)
    keys = {_norm(str(i.path)): i.key for i in items}
    # reading and decoding are light: their tasks take little of a CPU, which stays with the actors
    ds = ray.data.read_binary_files([str(i.path) for i in items], include_paths=True,
                                    override_num_blocks=len(items), num_cpus=0.1)
    decode = functools.partial(decode_files, config=config, out=str(out.resolve()), keys=keys)
    ds = ds.map_batches(decode, batch_size=1, batch_format="numpy", num_cpus=0.1)
    ds = ds.map_batches(DetectorActor, batch_size=1, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(size=det_actors), num_cpus=cluster.ray_detector_cpus,
                        fn_constructor_kwargs={"config": _threads(config, cluster.ray_detector_cpus)})
    return ds.map_batches(RecognizerActor, batch_size=cluster.rec_batch_files, batch_format="numpy",
                          compute=ray.data.ActorPoolStrategy(size=rec_actors),
                          num_cpus=cluster.ray_recognizer_cpus,
                          fn_constructor_kwargs={"config": _threads(config, cluster.ray_recognizer_cpus),
                                                 "out": str(out.resolve()),
                                                 "pool_pages": cluster.rec_pool_pages})


def _threads(config: PipelineConfig, cpus: float) -> PipelineConfig:
    """Each actor's models use the CPUs reserved for it (unless --threads says otherwise)."""
    from dataclasses import replace

    return config if config.threads else replace(config, threads=max(1, round(cpus)))


def run(args: argparse.Namespace) -> int:
    """``ocrpipe batch --ray ADDRESS ...``: returns the exit code."""
    from ocrpipe.settings import from_args, pipeline_config

    settings = from_args(BatchSettings, args)
    cluster = from_args(RayBulkSettings, args)
    config = pipeline_config(settings)

    def execute(todo: list[Item], record: Callable[[Outcome], None]) -> None:
        run_on_ray(config, todo, settings.out, jobs=settings.jobs, cluster=cluster, on_outcome=record)

    return drive(args.source, settings, execute, runner="ray")
