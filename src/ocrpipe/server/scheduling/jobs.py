"""Background threads: job runners (claim → OCR → store), lease keeper, retention sweeper, daily summary.

Each runner claims only jobs of its own kind (:class:`~ocrpipe.server.storage.models.JobKind`): this one runs
REST OCR jobs; :class:`ocrpipe.server.scheduling.template_jobs.TemplateJobRunner` runs printout ingestion jobs with
the same leases, retries and shutdown behaviour by overriding :meth:`JobRunner.produce`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ocrpipe.errors import ErrorCode, OcrError, Stage
from ocrpipe.server.logconfig import job_id_var
from ocrpipe.server.metrics import Metrics
from ocrpipe.server.notifier import Notifier
from ocrpipe.server.scheduling.batcher import BatcherOverloaded
from ocrpipe.server.scheduling.engine import OcrEngine, lower_thread_priority
from ocrpipe.server.settings import ServiceSettings
from ocrpipe.server.storage.db import Base
from ocrpipe.server.storage.jobs import Claimed, JobStore, utcnow, worker_identity
from ocrpipe.server.storage.models import JobKind

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""A job that crashed its worker this many times is failed instead of being run again."""


@dataclass(frozen=True)
class Outcome:
    """What running a job produced: the result document and rows stored with it in one transaction."""

    result: dict[str, Any]
    pages: int
    rows: Sequence[Base] = field(default_factory=tuple)
    summary: dict[str, Any] = field(default_factory=dict)
    """Log fields (ids and counts only, never document content)."""


class FinishedSignal:
    """Wakes threads waiting for jobs to finish (result streams) as soon as a runner records one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._count = 0

    def notify(self) -> None:
        with self._cond:
            self._count += 1
            self._cond.notify_all()

    @property
    def count(self) -> int:
        return self._count

    def wait(self, seen: int, timeout: float) -> int:
        """Wait until something finished after ``seen`` (a previous :attr:`count`) or ``timeout``."""
        with self._cond:
            self._cond.wait_for(lambda: self._count != seen, timeout)
            return self._count


class JobRunner:
    """Runs queued jobs of :attr:`kind` on ``threads`` threads (default ``settings.job_workers``) until
    :meth:`stop`. With ``housekeeping`` it also recovers jobs of dead local processes at start (every
    kind), sweeps expired jobs and sends the summary: exactly one runner per process must do that."""

    kind: str = JobKind.OCR.value

    def __init__(self, settings: ServiceSettings, store: JobStore, engine: OcrEngine, metrics: Metrics,
                 notifier: Notifier, *, threads: int | None = None, housekeeping: bool = True,
                 finished: FinishedSignal | None = None) -> None:
        self.settings = settings
        self.store = store
        self.engine = engine
        self.metrics = metrics
        self.notifier = notifier
        self.threads = settings.job_workers if threads is None else threads
        self.housekeeping = housekeeping
        self.finished = finished or FinishedSignal()
        self.identity = worker_identity()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._active: set[str] = set()
        self._active_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self.housekeeping:
            recovered = self.store.requeue_dead_local()
            if recovered:
                log.info("re-queued unfinished jobs of a stopped process", extra={"count": recovered})
        for i in range(self.threads):
            self._spawn(self._run_loop, f"{self.kind}-worker-{i}")
        if self.threads:
            self._spawn(self._lease_loop, f"{self.kind}-lease")
        if not self.housekeeping:
            return
        self._spawn(self._every(self.settings.sweep_interval_s, self.sweep), "job-sweeper")
        if self.notifier.enabled:
            self._spawn(self._every(self.settings.summary_interval_s, self.send_summary, initial_wait=True),
                        "job-summary")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def wake(self) -> None:
        """A job was just queued: poll now instead of at the next interval."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; give running jobs ``timeout`` seconds. Jobs still running then are re-queued by
        their own threads once the engine shuts down under them."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def join(self, timeout: float) -> None:
        """Wait for the threads to end (after :meth:`stop` and the engine's shutdown)."""
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    # ---- loops -------------------------------------------------------------------------------------

    def _run_loop(self) -> None:
        lower_thread_priority(self.settings.worker_nice)
        while not self._stop.is_set():
            try:
                claimed = self.store.claim(self.identity, self.settings.lease_s, kinds=(self.kind,))
            except Exception:  # noqa: BLE001 - database down: keep the thread alive and retry
                log.exception("claiming a job failed")
                claimed = None
            if claimed is None:
                self._wake.wait(self.settings.poll_interval_s)
                self._wake.clear()
                continue
            self._run_job(claimed)

    def _lease_loop(self) -> None:
        interval = self.settings.lease_s / 3
        while not self._stop.wait(interval):
            with self._active_lock:
                active = list(self._active)
            for job_id in active:
                try:
                    self.store.renew(job_id, self.identity, self.settings.lease_s)
                except Exception:  # noqa: BLE001
                    log.exception("renewing a lease failed", extra={"job_id": job_id})
            with contextlib.suppress(Exception):
                self.metrics.jobs_queued.set(self.store.count_queued())

    def _every(self, interval: float, fn: Callable[[], object],
               initial_wait: bool = False) -> Callable[[], None]:
        def loop() -> None:
            if not initial_wait:
                self._safe(fn)
            while not self._stop.wait(interval):
                self._safe(fn)
        return loop

    @staticmethod
    def _safe(fn: Callable[[], object]) -> None:
        try:
            fn()
        except Exception:  # noqa: BLE001
            log.exception("background task failed", extra={"task": getattr(fn, "__name__", "?")})

    # ---- one job -----------------------------------------------------------------------------------

    def _run_job(self, job: Claimed) -> None:
        token = job_id_var.set(job.id)
        with self._active_lock:
            self._active.add(job.id)
        start = time.perf_counter()
        try:
            if job.attempts > MAX_ATTEMPTS:
                self._fail(job, start, Stage.DECODE.value, ErrorCode.ENGINE_FAILURE.value,
                           f"gave up after {job.attempts - 1} attempts that did not finish")
                return
            log.info("job started", extra={"attempt": job.attempts, "kind": self.kind})
            self._execute(job, start)
        finally:
            self.finished.notify()
            with self._active_lock:
                self._active.discard(job.id)
            job_id_var.reset(token)

    def _execute(self, job: Claimed, start: float) -> None:
        stage = Stage.DECODE.value
        try:
            path = Path(job.upload_path)
            if not path.is_file():
                raise OcrError(ErrorCode.FILE_NOT_FOUND, "the stored upload is missing", stage=Stage.DECODE)
            out = self.produce(job, path.read_bytes())
            stage = Stage.STORE.value
            elapsed = (time.perf_counter() - start) * 1000.0
            if self.store.succeed(job.id, self.identity, out.result, elapsed, rows=out.rows, pages=out.pages):
                self.metrics.jobs.labels(outcome="succeeded").inc()
                self.metrics.job_latency.observe(elapsed / 1000.0)
                log.info("job succeeded", extra={"pages": out.pages, "duration_ms": round(elapsed, 1),
                                                 **out.summary})
            else:
                log.warning("job was taken over by another worker; result dropped")
        except Exception as exc:  # noqa: BLE001 - recorded on the job, never crashes the thread
            if self._stop.is_set():
                self._release(job)
            elif isinstance(exc, OcrError):
                self._fail(job, start, (exc.stage.value if exc.stage else stage), exc.code.value, exc.message)
            else:
                log.exception("job failed unexpectedly")
                self._fail(job, start, stage, ErrorCode.ENGINE_FAILURE.value, f"{type(exc).__name__}")

    def produce(self, job: Claimed, data: bytes) -> Outcome:
        """Run one job on its stored upload (override for other kinds); errors fail or retry the job."""
        doc = self._document_with_retry(data, job.filename)
        return Outcome(doc.to_dict(), len(doc.pages))

    def _release(self, job: Claimed) -> None:
        """Shutting down mid-job: put the job back so the next start runs it (not a failure)."""
        try:
            if self.store.release(job.id, self.identity):
                log.info("job interrupted by shutdown; re-queued")
        except Exception:  # noqa: BLE001 - the lease lapses and start-up recovery re-queues it anyway
            log.exception("re-queueing an interrupted job failed")

    def _document_with_retry(self, data: bytes, filename: str | None):  # type: ignore[no-untyped-def]
        """Jobs are not in a hurry: when the batcher is full, wait and try again instead of failing."""
        while True:
            try:
                return self.engine.run_document(data, filename)
            except BatcherOverloaded as exc:
                if self._stop.wait(exc.retry_after):
                    raise

    def _fail(self, job: Claimed, start: float, stage: str, code: str, message: str) -> None:
        elapsed = (time.perf_counter() - start) * 1000.0
        try:
            recorded = self.store.fail(job.id, self.identity, stage=stage, code=code, message=message,
                                       duration_ms=elapsed)
        except Exception:  # noqa: BLE001 - the lease will lapse and the job will run again
            log.exception("recording a job failure failed")
            return
        if recorded:
            self.metrics.jobs.labels(outcome="failed").inc()
            self.metrics.errors.labels(stage=stage, code=code).inc()
            log.warning("job failed", extra={"stage": stage, "code": code})
            self.notifier.alert(f"{stage}/{code}", f"job {job.id} failed at stage {stage} ({code})")

    # ---- periodic ----------------------------------------------------------------------------------

    def sweep(self) -> int:
        removed = self.store.sweep(timedelta(hours=self.settings.retention_hours))
        if removed:
            log.info("retention sweep removed jobs", extra={"count": removed})
        return removed

    def send_summary(self) -> bool:
        period = timedelta(seconds=self.settings.summary_interval_s)
        stats = self.store.summary(utcnow() - period)
        label = "24h" if period == timedelta(days=1) else f"{period.total_seconds():.0f}s"
        return self.notifier.summary(stats, period=label)
