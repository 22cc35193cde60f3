"""Template jobs: printouts submitted over gRPC (``Submit``) or REST (``POST /v1/template-jobs``), read by
template mode and stored as field rows.

A template job decodes its one-page upload, matches a template from pixels and reads the fields
(:class:`~ocrpipe.templates.engine.TemplateEngine`); a page no template accepts is read by the general
pipeline instead and the result says so (``mode: pipeline`` with the reason). The field rows are inserted
in the transaction that marks the job succeeded, so a job is never finished without its rows (nor rows
written for a job another worker took over). Leases, retries and shutdown come from
:class:`~ocrpipe.server.scheduling.jobs.JobRunner`.
"""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ocrpipe.document import Document
from ocrpipe.errors import ErrorCode, InputError
from ocrpipe.server.metrics import Metrics
from ocrpipe.server.notifier import Notifier
from ocrpipe.server.scheduling.batcher import BatcherOverloaded
from ocrpipe.server.scheduling.engine import OcrEngine
from ocrpipe.server.scheduling.jobs import FinishedSignal, JobRunner, Outcome
from ocrpipe.server.settings import ServiceSettings
from ocrpipe.server.storage.fields import FieldRow
from ocrpipe.server.storage.jobs import Claimed, JobStore
from ocrpipe.server.storage.models import JobKind

if TYPE_CHECKING:
    from ocrpipe.templates.engine import TemplateEngine, TemplateResult
    from ocrpipe.templates.schema import Template

log = logging.getLogger("ocrpipe.server.templates")

WATCH_INTERVAL_S = 2.0
"""How often the user template folder is checked for changed, added or removed files."""


class TemplateLibrary:
    """The served template set: the built-ins plus a user folder, swapped whole on reload.

    :meth:`reload` reads the folder again; a set that does not load (a broken YAML, a duplicate name, a
    missing reference image) is refused with its message in :attr:`error` and the log, and the last good
    set stays. A job holds the engine it started with, so a reload never disturbs one in flight. The
    engine (and its models) is built on the first job; reloads reuse its readers.
    """

    def __init__(self, folder: Path | None) -> None:
        from ocrpipe.templates.schema import template_set

        self.folder = folder
        self._lock = threading.Lock()
        self._templates: list[Template] = template_set(self._paths())  # a broken set at start-up is fatal
        for t in self._templates:
            t.reference_image  # noqa: B018 - as a reload would refuse it
            _check_langs(t)
        self._engine: TemplateEngine | None = None
        self._signature = self._stat()
        self.error: str | None = None
        self.loaded_at = time.time()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def _paths(self) -> list[Path]:
        return [self.folder] if self.folder is not None else []

    def _stat(self) -> tuple[tuple[str, int, int], ...]:
        if self.folder is None or not self.folder.is_dir():
            return ()
        return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in self.folder.iterdir()
                            if p.is_file()))

    @property
    def templates(self) -> list[Template]:
        """The templates in service now."""
        return self._templates

    def engine(self) -> TemplateEngine:
        """The template engine of the current set (built on first use)."""
        with self._lock:
            if self._engine is None:
                from ocrpipe.templates.engine import TemplateEngine

                self._engine = TemplateEngine(self._templates)
            return self._engine

    def reload(self) -> bool:
        """Read the folder again; True when the new set is in service, False when it was refused."""
        from ocrpipe.errors import OcrError
        from ocrpipe.templates.engine import TemplateEngine
        from ocrpipe.templates.schema import template_set

        signature = self._stat()
        try:
            templates = template_set(self._paths())
            for t in templates:
                t.reference_image  # noqa: B018 - a missing reference image refuses the set now, not on a job
                _check_langs(t)
        except OcrError as exc:
            with self._lock:
                self._signature, self.error = signature, exc.message
            log.error("template reload refused; the last good set stays", extra={"reason": exc.message})
            return False
        with self._lock:
            old = self._engine
            self._engine = None if old is None else TemplateEngine(
                templates, recognizer=old.recognizer, reader=old.reader, arbiter=old.arbiter, threads=old.threads)
            self._templates, self._signature, self.error = templates, signature, None
            self.loaded_at = time.time()
        log.info("templates reloaded", extra={"templates": [t.name for t in templates]})
        return True

    def changed(self) -> bool:
        """Whether a file of the folder changed since the last (good or refused) load."""
        return self._stat() != self._signature

    def watch(self, interval_s: float = WATCH_INTERVAL_S) -> None:
        """Reload whenever the folder changes, from a daemon thread, until :meth:`close`."""
        if self.folder is None or self._watcher is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval_s):
                if self.changed():
                    self.reload()

        self._watcher = threading.Thread(target=loop, name="template-watch", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        """Stop watching the folder."""
        self._stop.set()

    def listing(self) -> dict[str, Any]:
        """What ``GET /v1/templates`` answers: every template's name, device, version, page and file."""
        return {"templates": [{"name": t.name, "device": t.device, "version": t.version, "page": t.page,
                               "source": t.source} for t in self._templates],
                "folder": None if self.folder is None else str(self.folder), "loaded_at": self.loaded_at,
                "reload_error": self.error}


def _check_langs(tpl: Template) -> None:
    """Refuse a template whose fields name a Tesseract language that is not installed (else every job
    with it would fail)."""
    from ocrpipe.engine.recognize.tesseract import find_tessdata
    from ocrpipe.errors import EngineError

    for f in tpl.fields:
        try:
            find_tessdata(f.lang)
        except EngineError as exc:
            raise InputError(ErrorCode.INVALID_ARGUMENT, f"template {tpl.source}: field {f.name}: {exc.message}",
                             stage=None) from exc


def value_text(value: Any) -> str | None:
    """The canonical text form of a field value: numbers without float noise (``-1.25``, ``15``), dates
    as ISO text, None for an unreadable field."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format(Decimal(repr(float(value))).normalize(), "f")
    return str(value)


def field_rows(job: Claimed, result: TemplateResult) -> list[FieldRow]:
    """One row per field; ``device`` is the device as the client named it, else the template's model."""
    return [FieldRow(job_id=job.id, template=result.template, device=job.device or result.device,
                     exam_id=job.exam_id, field=f.name, value=value_text(f.value), unit=f.unit, valid=f.valid,
                     confidence=float(f.confidence), raw=f.raw.replace("\x00", ""))
            for f in result.fields]


class TemplateJobRunner(JobRunner):
    """Runs ``template`` jobs on ``settings.template_workers`` threads (no housekeeping: the OCR runner of
    the same process recovers, sweeps and reports for every kind)."""

    kind = JobKind.TEMPLATE.value

    def __init__(self, settings: ServiceSettings, store: JobStore, engine: OcrEngine, metrics: Metrics,
                 notifier: Notifier, *, finished: FinishedSignal | None = None,
                 templates: TemplateEngine | None = None, library: TemplateLibrary | None = None) -> None:
        super().__init__(settings, store, engine, metrics, notifier, threads=settings.template_workers,
                         housekeeping=False, finished=finished)
        self._fixed = templates
        self.library = library if library is not None else TemplateLibrary(settings.templates)

    def template_engine(self) -> TemplateEngine:
        """The engine of the served template set, loaded on the first job (a server that never gets one
        never pays for it); a fixed engine given to the constructor (tests) wins."""
        return self._fixed if self._fixed is not None else self.library.engine()

    def produce(self, job: Claimed, data: bytes) -> Outcome:
        start = time.perf_counter()
        with self.engine.pipeline.open(data, filename=job.filename) as source:
            if len(source) != 1:  # refused before anything is rendered
                raise InputError(ErrorCode.TOO_MANY_PAGES,
                                 f"a printout upload must be one page; this one has {len(source)}")
            image = source.render(0)
        decode_ms = (time.perf_counter() - start) * 1000.0
        self.metrics.stage_latency.labels(stage="decode").observe(decode_ms / 1000.0)
        result, match = self.template_engine().run_image(image)
        candidates = [c.to_dict() for c in match.candidates]
        if result is None:  # the general page path on the page already decoded
            doc = self._page_document_with_retry(image, decode_ms, start)
            out = {"mode": "pipeline", "reason": match.reason, "candidates": candidates, "document": doc.to_dict()}
            return Outcome(out, 1, summary={"mode": "pipeline"})
        body = {**result.to_dict(), "candidates": candidates}
        rows = field_rows(job, result)
        return Outcome(body, 1, rows, summary={"mode": "template", "template": result.template,
                                                "field_count": len(rows), "invalid": sum(not r.valid for r in rows)})

    def _page_document_with_retry(self, image: np.ndarray, decode_ms: float, start: float) -> Document:
        """The pipeline's Document for one decoded page; when the batcher is full, wait and try again."""
        while True:
            try:
                pages, timings = self.engine.run_pages([image])
            except BatcherOverloaded as exc:
                if self._stop.wait(exc.retry_after):
                    raise
                continue
            return self.engine.pipeline.document(pages, {"decode": decode_ms, **timings}, started=start)
