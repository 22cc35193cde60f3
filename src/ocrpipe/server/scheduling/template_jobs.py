"""Template jobs: printouts submitted over gRPC, read by template mode and stored as field rows.

A template job decodes its one-page upload, matches a template from pixels and reads the fields
(:class:`~ocrpipe.templates.engine.TemplateEngine`); a page no template accepts is read by the general
pipeline instead and the result says so (``mode: pipeline`` with the reason). The field rows are inserted
in the transaction that marks the job succeeded, so a job is never finished without its rows (nor rows
written for a job another worker took over). Leases, retries and shutdown come from
:class:`~ocrpipe.server.scheduling.jobs.JobRunner`.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
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
                 templates: TemplateEngine | None = None) -> None:
        super().__init__(settings, store, engine, metrics, notifier, threads=settings.template_workers,
                         housekeeping=False, finished=finished)
        self._templates = templates
        self._load_lock = threading.Lock()

    def template_engine(self) -> TemplateEngine:
        """The template engine, loaded on the first job (a server that never gets one never pays for it)."""
        with self._load_lock:
            if self._templates is None:
                from ocrpipe.templates.engine import TemplateEngine

                self._templates = TemplateEngine.default()
            return self._templates

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
