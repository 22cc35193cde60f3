"""What both transports check before accepting work, written once: the upload (media type sniffed from
the bytes, byte limit, the image header's pixel count — never a full decode), the queued-jobs limit, and
the per-tenant scoping of idempotency keys.

REST (``/v1/jobs`` and the synchronous routes) and gRPC ``Submit`` call these functions, so the same upload
gets the same verdict (and code) on either transport.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Literal

from ocrpipe.engine import decode as imageio
from ocrpipe.errors import ErrorCode, InputError
from ocrpipe.server.errors import ServiceError
from ocrpipe.server.retry import jobs_wait
from ocrpipe.server.storage.jobs import JobStore

Transport = Literal["rest", "grpc", "rest-template"]
QUEUE_RECHECK_S = 1.0
"""The queued-jobs count is read from the database at most this often (keeps acknowledgements fast)."""
QUEUE_RETRY_AFTER_S = 30.0


def check_upload(data: bytes, name: str | None, *, limits: imageio.Limits, dpi: int = 200) -> str:
    """The upload's media type, after every check that needs no decoding; raises :class:`InputError`.

    The engine's own page source does the checks (one definition of what can be read): byte limit, media
    type, page count, and each page's size from its image header or PDF page box (pixels, pixels per side,
    a page too small to hold a glyph), so a file that can never be read is refused before it is stored.
    """
    label = name or "the upload"
    if not data:
        raise InputError(ErrorCode.EMPTY_INPUT, f"{label} is empty (0 bytes)")
    with imageio.open_pages(data, filename=label, limits=limits, dpi=dpi) as pages:
        for index in range(len(pages)):
            pages.page_size(index)
        return pages.media_type


class QueueGate:
    """Refuses new jobs while ``limit`` or more wait; shared by both transports (one count, one verdict).

    The count is read from the database at most once per :data:`QUEUE_RECHECK_S` and advanced locally for
    each job created in between.
    """

    def __init__(self, store: JobStore, limit: int, *, on_refuse: Callable[[], None] | None = None,
                 mean_job_s: Callable[[], float] | None = None, workers: int = 1) -> None:
        self.store = store
        self.limit = limit
        self.on_refuse = on_refuse
        self.mean_job_s = mean_job_s
        """The measured mean time of a job (0: nothing measured yet)."""
        self.workers = workers
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._count = 0

    def check(self) -> None:
        """Raise ``too_many_requests`` when the queue is full, with ``Retry-After`` the time the workers need
        to bring the queue under the limit at their measured rate (:func:`~ocrpipe.server.retry.jobs_wait`;
        30 s before any job was measured).
        Blocking: call it off the event loop."""
        with self._lock:
            if time.monotonic() - self._checked > QUEUE_RECHECK_S:
                self._count = self.store.count_queued()
                self._checked = time.monotonic()
            count = self._count
        if count >= self.limit:
            if self.on_refuse is not None:
                self.on_refuse()
            mean = self.mean_job_s() if self.mean_job_s is not None else 0.0
            drain = jobs_wait(count, self.limit, mean, self.workers)
            raise ServiceError(ErrorCode.TOO_MANY_REQUESTS, f"{count} jobs are waiting; retry later",
                               retry_after=drain if drain is not None else QUEUE_RETRY_AFTER_S)

    def created(self) -> None:
        """Count a job queued since the last database read."""
        with self._lock:
            self._count += 1


def scoped_idempotency_key(tenant: str | None, key: str | None, transport: Transport) -> str | None:
    """The stored form of a client's idempotency key: per tenant (two clinics using the same key never see
    each other's job) and per transport (a REST job never answers a gRPC retry, nor an OCR job a REST
    template job's)."""
    if not key:
        return None
    prefix = {"rest": "t", "grpc": "g", "rest-template": "p"}[transport]
    return f"{prefix}:" + hashlib.sha256(f"{tenant or ''}\0{key}".encode()).hexdigest()
