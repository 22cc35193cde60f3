"""Giving memory back: glibc malloc arenas and trimming after idle.

Page images and model buffers are allocated from many threads; glibc gives each contending thread its own
arena (up to 8 x cores) and keeps freed memory in them, so RSS after a burst stays near its peak.
:func:`limit_arenas` caps the arena count (``mallopt(M_ARENA_MAX)``, the runtime form of
``MALLOC_ARENA_MAX``), :func:`fix_mmap_threshold` keeps large buffers (page images, model activations) out
of the arenas, and :class:`IdleTrimmer` calls ``malloc_trim(0)`` once the service has been idle
for a while. Both do nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name or "libc.so.6")
    except OSError:
        return None
    return lib if hasattr(lib, "malloc_trim") and hasattr(lib, "mallopt") else None


def limit_arenas(count: int) -> bool:
    """Cap glibc's malloc arenas at ``count`` (0: leave the default); True when applied."""
    lib = _libc()
    if count <= 0 or lib is None:
        return False
    return bool(lib.mallopt(_M_ARENA_MAX, count))


def fix_mmap_threshold(mb: float) -> bool:
    """Serve allocations of at least ``mb`` MB with their own mapping, returned to the system when freed
    (``mallopt(M_MMAP_THRESHOLD)``; glibc otherwise raises the threshold after the first large free, up to
    32 MB, and then keeps page-sized buffers in its arenas). 0 leaves glibc's dynamic threshold."""
    lib = _libc()
    if mb <= 0 or lib is None:
        return False
    return bool(lib.mallopt(_M_MMAP_THRESHOLD, int(mb * 1024 * 1024)))


def trim() -> bool:
    """Return free heap memory to the system (``malloc_trim(0)``); True when some was released."""
    lib = _libc()
    return bool(lib.malloc_trim(0)) if lib is not None else False


class IdleTrimmer:
    """Trims the heap once after ``idle_s`` seconds without activity (``activity()`` did not change)."""

    def __init__(self, activity: Callable[[], int], idle_s: float, check_s: float = 1.0,
                 release: Callable[[], object] | None = None) -> None:
        self.activity = activity
        self.release = release
        """Called just before the trim, to free what caches (e.g. ONNX Runtime's arenas) hold."""
        self.idle_s = idle_s
        self.check_s = check_s
        self.trims = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ocr-idle-trim", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        seen, since, trimmed = self.activity(), time.monotonic(), True
        while not self._stop.wait(self.check_s):
            now_seen = self.activity()
            if now_seen != seen:
                seen, since, trimmed = now_seen, time.monotonic(), False
            elif not trimmed and time.monotonic() - since >= self.idle_s:
                trimmed = True
                start = time.perf_counter()
                if self.release is not None:
                    self.release()
                released = trim()
                self.trims += 1
                log.info("heap trimmed after idle", extra={"event": "malloc_trim", "released": released,
                                                           "ms": round((time.perf_counter() - start) * 1000, 1)})

    def close(self) -> None:
        """Stop the trimming thread."""
        self._stop.set()
        self._thread.join(2.0)
