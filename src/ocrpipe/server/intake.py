"""What both transports check before accepting work, written once: the upload (media type sniffed from
the bytes, byte limit, the image header's pixel count — never a full decode), the queued-jobs limit, and
the per-tenant scoping of idempotency keys.

REST (``/v1/jobs`` and the synchronous routes) and gRPC ``Submit`` call these functions, so the same upload
gets the same verdict (and code) on either transport.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
import warnings
from collections.abc import Callable
from typing import Literal

from ocrpipe.engine import decode as imageio
from ocrpipe.errors import ErrorCode, InputError
from ocrpipe.server.errors import ServiceError
from ocrpipe.server.storage.jobs import JobStore

Transport = Literal["rest", "grpc"]
QUEUE_RECHECK_S = 1.0
"""The queued-jobs count is read from the database at most this often (keeps acknowledgements fast)."""
QUEUE_RETRY_AFTER_S = 30.0


def check_upload(data: bytes, name: str | None, *, max_bytes: int, max_pixels: int) -> str:
    """The upload's media type, after the checks that need no decoding; raises :class:`InputError`."""
    label = name or "the upload"
    if not data:
        raise InputError(ErrorCode.EMPTY_INPUT, f"{label} is empty (0 bytes)")
    if len(data) > max_bytes:
        raise InputError(ErrorCode.FILE_TOO_LARGE, f"{label} is {len(data)} bytes; the limit is {max_bytes}")
    media = imageio.sniff(data)
    if media is None or media not in imageio.SUPPORTED:
        raise InputError(ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                         f"{label} is not a supported image or PDF (PNG, JPEG, TIFF, BMP, WebP, GIF, AVIF, PDF)")
    if media != imageio.PDF:
        check_pixels(data, label, max_pixels)
    return media


def check_pixels(data: bytes, label: str, max_pixels: int) -> None:
    """The pixel limit from the image header alone (Pillow parses the header, decodes nothing)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            width, height = Image.open(io.BytesIO(data)).size
    except Image.DecompressionBombError as exc:
        raise InputError(ErrorCode.IMAGE_TOO_LARGE, f"{label}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - any header Pillow cannot parse is a corrupt image
        raise InputError(ErrorCode.CORRUPT_IMAGE,
                         f"{label}: the image header cannot be read (truncated or corrupt image)") from exc
    if width * height > max_pixels:
        raise InputError(ErrorCode.IMAGE_TOO_LARGE,
                         f"{label} is {width}x{height} pixels; the limit is {max_pixels} pixels per page")


class QueueGate:
    """Refuses new jobs while ``limit`` or more wait; shared by both transports (one count, one verdict).

    The count is read from the database at most once per :data:`QUEUE_RECHECK_S` and advanced locally for
    each job created in between.
    """

    def __init__(self, store: JobStore, limit: int, *, on_refuse: Callable[[], None] | None = None,
                 drain_s: Callable[[int], float | None] | None = None) -> None:
        self.store = store
        self.limit = limit
        self.on_refuse = on_refuse
        self.drain_s = drain_s
        """Seconds the workers need to run ``n`` queued jobs at the measured rate (None: nothing measured)."""
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._count = 0

    def check(self) -> None:
        """Raise ``too_many_requests`` when the queue is full, with ``Retry-After`` the time the workers need
        to bring the queue under the limit at their measured rate (30 s before any job was measured).
        Blocking: call it off the event loop."""
        with self._lock:
            if time.monotonic() - self._checked > QUEUE_RECHECK_S:
                self._count = self.store.count_queued()
                self._checked = time.monotonic()
            count = self._count
        if count >= self.limit:
            if self.on_refuse is not None:
                self.on_refuse()
            drain = self.drain_s(count - self.limit + 1) if self.drain_s is not None else None
            raise ServiceError(ErrorCode.TOO_MANY_REQUESTS, f"{count} jobs are waiting; retry later",
                               retry_after=max(1.0, drain) if drain is not None else QUEUE_RETRY_AFTER_S)

    def created(self) -> None:
        """Count a job queued since the last database read."""
        with self._lock:
            self._count += 1


def scoped_idempotency_key(tenant: str | None, key: str | None, transport: Transport) -> str | None:
    """The stored form of a client's idempotency key: per tenant (two clinics using the same key never see
    each other's job) and per transport (a REST job never answers a gRPC retry)."""
    if not key:
        return None
    prefix = "t" if transport == "rest" else "g"
    return f"{prefix}:" + hashlib.sha256(f"{tenant or ''}\0{key}".encode()).hexdigest()
