"""The service's settings: one pydantic-settings class, read from ``OCRPIPE_*`` env vars and CLI flags.

Validated once at start-up; an invalid value stops ``ocrpipe serve`` with a clear message instead of
failing on the first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from ocrpipe.settings import EngineSettings

if TYPE_CHECKING:
    from ocrpipe.engine.decode import Limits


class ServiceSettings(EngineSettings):
    """Everything ``ocrpipe serve`` can be told; env vars use the ``OCRPIPE_`` prefix. The engine options
    (recognizer, pdf_dpi, preprocessing, threads, ...) come from :class:`~ocrpipe.settings.EngineSettings`."""

    model_config = SettingsConfigDict(env_prefix="OCRPIPE_", extra="ignore", frozen=True,
                                      use_attribute_docstrings=True)

    host: str = "127.0.0.1"
    """bind address"""
    port: int = Field(default=8000, ge=0, le=65535)
    """port (0 picks a free one)"""
    data_dir: Path = Path("./ocrpipe-data")
    """uploads and the SQLite database"""
    database_url: str | None = None
    """SQLAlchemy URL; default ``sqlite:///<data_dir>/ocrpipe.db``. ``postgresql+psycopg://...`` works."""

    # engine (the rest is inherited)
    workers: int = Field(default=2, ge=1, le=64)
    """Threads that decode/detect pages concurrently (shared by synchronous requests and jobs)."""
    threads: int = Field(default=1, ge=1, le=64)
    """ONNX Runtime intra-op threads per model (``OCRPIPE_THREADS``). The service gets its parallelism
    from page workers, so one thread per call avoids oversubscribing the cores (and keeps acks fast)."""
    worker_nice: int = Field(default=5, ge=0, le=19)
    """Niceness added to OCR threads (page workers, batcher, jobs) so that the event loop — acknowledging
    jobs, answering health checks — gets the CPU first on a busy machine. 0 = same priority."""
    job_workers: int = Field(default=1, ge=0, le=32)
    """Background threads that claim and run queued jobs (0: this process only accepts jobs)."""

    template_workers: int = Field(default=1, ge=0, le=32)
    """Background threads that run template (printout ingestion) jobs, apart from the OCR job threads so a
    long OCR queue never delays printouts (0: this process only accepts them)."""

    templates: Path | None = None
    """A folder of user templates (``*.yaml`` + reference images) served beside the built-ins
    (``OCRPIPE_TEMPLATES``); reloaded on SIGHUP or when a file in it changes. The web page's template
    editor saves into it."""
    template_watch_s: float = Field(default=2.0, ge=0, le=3600)
    """How often the template folder is checked for changed files (0: only SIGHUP or a save from the
    web page reloads it, e.g. on a network file system)."""

    # gRPC ingestion
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    """Port of the gRPC ingestion service on ``host`` (0: no gRPC). When left at the default and the port
    is taken, the service runs without gRPC and says so; a port given explicitly must be free."""
    grpc_workers: int = Field(default=16, ge=4, le=256)
    """Threads of the gRPC server; each open ``WatchResults`` stream holds one (at most ``grpc_workers - 2``
    streams, so submissions always find a thread)."""

    # dynamic batching
    batching: bool = True
    """pool recognition crops across requests in the dynamic batcher"""
    max_batch_size: int = Field(default=32, ge=1, le=1024)
    """crops per recognition batch"""
    batch_threads: int = Field(default=2, ge=1, le=64)
    """Inference threads of the batcher: batches run side by side (one per CPU core; 1 on a GPU)."""
    tesseract_threads: int = Field(default=2, ge=1, le=64)
    """Tesseract's own pool (the hybrid's re-reads of doubtful lines run there, beside the batcher)."""
    max_batch_width: int = Field(default=1024, ge=0)
    """Budget of one batch in padded width (crops x widest crop, at the recogniser's input height:
    32 px for ko_rec, 48 for Tesseract and the PP-OCR readers); 0 = no budget.
    On a CPU, big batches of long lines leave the cache and cost more per crop than small ones."""
    max_wait_ms: float = Field(default=10.0, ge=0, le=10_000)
    """longest wait of a batch's first crop, in milliseconds"""
    max_queue: int = Field(default=4096, ge=1)
    """Most crops waiting for recognition; beyond it requests get 503 + Retry-After."""
    admission_timeout_s: float = Field(default=2.0, ge=0)
    """how long a request waits for room in a full batch queue before 503"""
    sequential_unit: str = "page"
    """With batching off: ``page`` (the recogniser gets one page's crops) or ``crop`` (one crop per call)."""

    # limits and back-pressure
    max_upload_mb: float = Field(default=50.0, gt=0)
    """largest upload (one file), in MiB"""
    max_files: int = Field(default=32, ge=1)
    """files per batch request"""
    max_pages: int = Field(default=50, ge=1)
    """pages per file"""
    max_pixels: int = Field(default=40_000_000, ge=1)
    """Per page. A request's decoded pages are held in memory (worst case max_pages x max_pixels x 3 bytes),
    so raise these two with care."""
    request_threads: int = Field(default=0, ge=0, le=64)
    """Page threads one request or job may hold at once; 0 = all but one of ``workers``, so a request
    arriving while a long document is worked on starts at once."""
    max_sync_pages: int = Field(default=20, ge=1)
    """Pages one file of a synchronous request (``/v1/ocr``, ``/v1/batch_ocr``) may have; beyond it the
    answer is 413 ``too_many_pages_for_sync`` (send it to ``/v1/jobs``, which takes up to ``max_pages``)."""
    sync_timeout_s: float = Field(default=120.0, gt=0)
    """Time budget of a synchronous request: pages not started by then fail it (504 ``deadline_exceeded``)."""
    job_timeout_s: float = Field(default=3600.0, gt=0)
    """Time budget of one job run (its pages not started by then fail it with ``deadline_exceeded``)."""
    page_memory_mb: float = Field(default=1024.0, gt=0)
    """Budget of the pages in flight, from their size before rendering: each holds its pixels (width x
    height x 3 bytes) and, while it is detected, the detector's working memory (220 bytes per pixel of the
    network input: about 830 MiB for an A4 page at 200 dpi). The default fits one such detection and the
    pages being read beside it, so two A4 pages are never detected at once; a page larger than the budget
    runs alone."""
    malloc_arena_max: int = Field(default=2, ge=0, le=64)
    """glibc malloc arenas (``mallopt(M_ARENA_MAX)``, like ``MALLOC_ARENA_MAX``); 0 = glibc's default
    (8 per core): more arenas keep more freed memory resident after a burst."""
    malloc_mmap_threshold_mb: float = Field(default=0.0, ge=0, le=1024)
    """Allocations of at least this many MB get their own mapping, returned to the system when freed
    (``mallopt(M_MMAP_THRESHOLD)``); 0 = glibc's dynamic threshold, which keeps page-sized buffers resident."""
    idle_trim_s: float = Field(default=10.0, ge=0)
    """After this many seconds without work the heap is trimmed once (``malloc_trim``); 0 = never."""
    max_inflight: int = Field(default=16, ge=1)
    """Concurrent synchronous OCR requests; more get 429 + Retry-After."""
    max_queued_jobs: int = Field(default=10_000, ge=1)
    """queued jobs; more submissions get 503"""
    header_timeout_s: float = Field(default=10.0, gt=0)
    """seconds a client has to send a request's line and headers; slower connections are closed"""
    body_timeout_s: float = Field(default=120.0, gt=0)
    """seconds a client has to send a request's body after its headers; slower connections are closed"""
    max_connections: int = Field(default=1000, ge=1)
    """open HTTP connections at most; one more is closed at once"""
    min_free_mb: float = Field(default=200.0, ge=0)
    """MiB of free space the data directory needs: under it /readyz answers 507 storage_full (0: no check)"""

    # jobs
    retention_hours: float = Field(default=168.0, gt=0)
    """uploads and results are deleted this long after a job finished"""
    sweep_interval_s: float = Field(default=600.0, gt=0)
    """how often expired jobs are deleted"""
    lease_s: float = Field(default=60.0, ge=2)
    """A running job whose worker stopped renewing its lease for this long is run again."""
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    """On SIGTERM, how long running jobs may finish; the rest go back to the queue for the next start."""
    poll_interval_s: float = Field(default=1.0, gt=0)
    """how often idle job workers look for queued jobs"""

    # monitoring
    log_level: str = "INFO"
    """DEBUG, INFO, WARNING or ERROR"""
    log_json: bool = True
    """log one JSON object per line (else plain text)"""
    webhook_url: str | None = None
    """Slack-compatible webhook for alerts and the daily summary"""
    alert_interval_s: float = Field(default=300.0, ge=0)
    """At most one alert per failure class per interval; the next one reports how many were suppressed."""
    summary_interval_s: float = Field(default=86_400.0, gt=0)
    """how often the summary goes to the webhook"""

    @field_validator("sequential_unit")
    @classmethod
    def _unit(cls, v: str) -> str:
        if v not in ("page", "crop"):
            raise ValueError("sequential_unit must be 'page' or 'crop'")
        return v

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.upper()
        if v not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("log_level must be DEBUG, INFO, WARNING or ERROR")
        return v

    @field_validator("database_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql+psycopg:// URL")
        return v

    @model_validator(mode="after")
    def _queue_fits_batch(self) -> ServiceSettings:
        if self.max_queue < self.max_batch_size:
            raise ValueError("max_queue must be at least max_batch_size")
        return self

    @property
    def db_url(self) -> str:
        """The effective database URL."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ocrpipe.db').resolve()}"

    @property
    def upload_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def limits(self) -> Limits:
        """The service's input limits (upload size, pages per file, pixels per page)."""
        from ocrpipe.engine.decode import Limits

        return Limits(max_bytes=self.max_upload_bytes, max_pixels=self.max_pixels, max_pages=self.max_pages)
