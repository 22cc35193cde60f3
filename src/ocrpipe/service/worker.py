"""Background threads: job runners (claim → OCR → store), lease keeper, retention sweeper, daily summary."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from ocrpipe.batching import BatcherOverloaded
from ocrpipe.service.logconfig import job_id_var
from ocrpipe.service.metrics import Metrics
from ocrpipe.service.notifier import Notifier
from ocrpipe.service.ocr import OcrEngine, lower_thread_priority
from ocrpipe.service.settings import ServiceSettings
from ocrpipe.service.store import Claimed, JobStore, utcnow, worker_identity
from ocrpipe.types import ErrorCode, OcrError, Stage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""A job that crashed its worker this many times is failed instead of being run again."""


class JobRunner:
    """Runs queued jobs on ``settings.job_workers`` threads until :meth:`stop`."""

    def __init__(self, settings: ServiceSettings, store: JobStore, engine: OcrEngine, metrics: Metrics,
                 notifier: Notifier) -> None:
        self.settings = settings
        self.store = store
        self.engine = engine
        self.metrics = metrics
        self.notifier = notifier
        self.identity = worker_identity()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._active: set[str] = set()
        self._active_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        recovered = self.store.requeue_dead_local()
        if recovered:
            log.info("re-queued unfinished jobs of a stopped process", extra={"count": recovered})
        for i in range(self.settings.job_workers):
            self._spawn(self._run_loop, f"job-worker-{i}")
        if self.settings.job_workers:
            self._spawn(self._lease_loop, "job-lease")
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
                claimed = self.store.claim(self.identity, self.settings.lease_s)
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
            log.info("job started", extra={"attempt": job.attempts})
            self._execute(job, start)
        finally:
            with self._active_lock:
                self._active.discard(job.id)
            job_id_var.reset(token)

    def _execute(self, job: Claimed, start: float) -> None:
        stage = Stage.DECODE.value
        try:
            path = Path(job.upload_path)
            if not path.is_file():
                raise OcrError(ErrorCode.FILE_NOT_FOUND, "the stored upload is missing", stage=Stage.DECODE)
            doc = self._document_with_retry(path.read_bytes(), job.filename)
            stage = Stage.STORE.value
            elapsed = (time.perf_counter() - start) * 1000.0
            if self.store.succeed(job.id, self.identity, doc.to_dict(), elapsed):
                self.metrics.jobs.labels(outcome="succeeded").inc()
                self.metrics.job_latency.observe(elapsed / 1000.0)
                log.info("job succeeded", extra={"pages": len(doc.pages), "duration_ms": round(elapsed, 1)})
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
