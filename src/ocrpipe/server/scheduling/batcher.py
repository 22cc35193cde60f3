"""A dynamic batcher: pools items submitted by many threads into batches for one batch function.

Semantics (after Ray Serve's ``@serve.batch`` and BentoML's adaptive batching):

* every submitted item gets its own :class:`~concurrent.futures.Future`;
* a batch closes when it holds ``max_batch_size`` items or when its *first* item has waited
  ``max_wait_ms`` (so a lone request waits at most that long);
* optionally a batch also closes before it would exceed ``max_batch_cost`` as measured by
  ``batch_cost(items)`` (e.g. padded pixels: on a CPU, big batches of long crops fall out of cache and
  cost more per crop than small ones, so the budget keeps batches of long lines small);
* the queue is bounded (``max_queue`` items): :meth:`DynamicBatcher.submit` waits up to
  ``admission_timeout`` for room and then raises :class:`BatcherOverloaded`, which carries a
  ``retry_after`` hint, instead of letting memory grow without bound;
* items of a batch are ordered by ``sort_key`` (crop width) before the call, so the batch function pads
  similar widths together; results are mapped back to the original items;
* the batch function must return one result per item; a wrong length, or an exception, makes the batcher
  retry the items one by one, so a single bad item fails only its own future;
* the batch function runs on ``threads`` dedicated daemon threads (one by default; more lets batches run
  side by side, e.g. one per CPU core), never on the caller's (or an event loop's) thread.

Calling the batcher like a function (``batcher(items)``) submits the items and blocks until all their
results are in, which is exactly the ``recognize`` hook of :meth:`ocrpipe.Pipeline.process_image`.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


class BatcherOverloaded(RuntimeError):
    """The batcher's queue stayed full for longer than the admission timeout."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BatcherClosed(RuntimeError):
    """The batcher was stopped; no more items are accepted."""


@dataclass(slots=True)
class _Item(Generic[T, R]):
    value: T
    future: Future[R]
    enqueued: float = field(default_factory=time.monotonic)


@dataclass
class BatcherStats:
    """Counters a caller may read at any time (values are updated under the batcher's lock)."""

    batches: int = 0
    items: int = 0
    fallbacks: int = 0
    max_batch_seen: int = 0


class DynamicBatcher(Generic[T, R]):
    """Pool items from many threads into calls of ``fn(list[T]) -> list[R]``."""

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 10.0,
        max_queue: int = 4096,
        admission_timeout: float = 5.0,
        sort_key: Callable[[T], float] | None = None,
        batch_cost: Callable[[Sequence[T]], float] | None = None,
        max_batch_cost: float = float("inf"),
        on_batch: Callable[[int, float], None] | None = None,
        threads: int = 1,
        thread_init: Callable[[], None] | None = None,
        name: str = "batcher",
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        if max_wait_ms < 0:
            raise ValueError("max_wait_ms must be >= 0")
        if max_queue < max_batch_size:
            raise ValueError("max_queue must be >= max_batch_size")
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.admission_timeout = admission_timeout
        self.sort_key = sort_key
        self.batch_cost = batch_cost
        self.max_batch_cost = max_batch_cost
        self.on_batch = on_batch
        self.stats = BatcherStats()
        self._queue: collections.deque[_Item[T, R]] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._avg_item_s = 0.005
        self._stats_lock = threading.Lock()
        self.thread_init = thread_init
        self._threads = [threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True)
                         for i in range(threads)]
        for t in self._threads:
            t.start()

    # ---- public API --------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Items waiting for a batch right now."""
        return len(self._queue)

    def submit(self, items: Sequence[T], timeout: float | None = None) -> list[Future[R]]:
        """Queue ``items`` (all or none) and return one future per item, in order.

        Waits up to ``timeout`` (default: ``admission_timeout``) for room in the queue, then raises
        :class:`BatcherOverloaded`. A request larger than the whole queue is admitted once the queue is
        empty, so it is never starved.
        """
        n = len(items)
        if n == 0:
            return []
        wait = self.admission_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        with self._cond:
            while not self._closed and not self._has_room(n):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BatcherOverloaded(
                        f"recognition queue is full ({len(self._queue)}/{self.max_queue} items)",
                        retry_after=self._retry_after(),
                    )
                self._cond.wait(remaining)
            if self._closed:
                raise BatcherClosed("the batcher is stopped")
            now = time.monotonic()
            new: list[_Item[T, R]] = [_Item(value=v, future=Future(), enqueued=now) for v in items]
            self._queue.extend(new)
            self._cond.notify_all()
        return [item.future for item in new]

    def __call__(self, items: Sequence[T]) -> list[R]:
        """Submit ``items`` and block until every result is in; re-raises the first item's error."""
        futures = self.submit(items)
        return [f.result() for f in futures]

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting items, finish the queued ones, and join the worker threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    # ---- worker ------------------------------------------------------------------------------------

    def _has_room(self, n: int) -> bool:
        return len(self._queue) + n <= self.max_queue or not self._queue

    def _retry_after(self) -> float:
        return max(1.0, round(len(self._queue) * self._avg_item_s, 1))

    def _fitting(self) -> int:
        """How many queued items (from the front) fit one batch; less than the queue length means full."""
        limit = min(self.max_batch_size, len(self._queue))
        if self.batch_cost is None or limit <= 1:
            return limit
        for n in range(2, limit + 1):
            if self.batch_cost([self._queue[i].value for i in range(n)]) > self.max_batch_cost:
                return n - 1
        return limit

    def _full(self) -> bool:
        n = self._fitting()
        if n >= self.max_batch_size or n < len(self._queue):
            return True
        return self.batch_cost is not None and self.batch_cost(
            [self._queue[i].value for i in range(n)]) >= self.max_batch_cost

    def _next_batch(self) -> list[_Item[T, R]] | None:
        """Block until a batch is ready (full, or its first item waited max_wait); None when closed."""
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            first = self._queue[0]
            deadline = first.enqueued + self.max_wait
            while not self._full() and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            take = self._fitting()
            batch = [self._queue.popleft() for _ in range(take)]
            self._cond.notify_all()  # wake submitters waiting for room
            return batch

    def _loop(self) -> None:
        if self.thread_init is not None:
            self.thread_init()
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            live = [item for item in batch if item.future.set_running_or_notify_cancel()]
            if live:
                self._run(live)

    def _run(self, batch: list[_Item[T, R]]) -> None:
        if self.sort_key is not None:
            batch = sorted(batch, key=lambda item: self.sort_key(item.value))  # type: ignore[misc]
        start = time.perf_counter()
        try:
            results = list(self.fn([item.value for item in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(batch)} items")
        except Exception as exc:  # noqa: BLE001 - isolate the failing item(s) below
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
            else:
                log.warning("batch of %d failed (%s); retrying items one by one", len(batch),
                            type(exc).__name__)
                with self._stats_lock:
                    self.stats.fallbacks += 1
                for item in batch:
                    self._run_one(item)
            return
        elapsed = time.perf_counter() - start
        self._record(len(batch), elapsed)
        for item, result in zip(batch, results, strict=True):
            item.future.set_result(result)

    def _run_one(self, item: _Item[T, R]) -> None:
        try:
            results = list(self.fn([item.value]))
            if len(results) != 1:
                raise RuntimeError(f"batch function returned {len(results)} results for 1 item")
        except Exception as exc:  # noqa: BLE001 - delivered to the item's own future
            item.future.set_exception(exc)
            return
        item.future.set_result(results[0])

    def _record(self, size: int, elapsed: float) -> None:
        with self._stats_lock:
            self.stats.batches += 1
            self.stats.items += size
            self.stats.max_batch_seen = max(self.stats.max_batch_seen, size)
            self._avg_item_s = 0.8 * self._avg_item_s + 0.2 * (elapsed / size)
        if self.on_batch is not None:
            try:
                self.on_batch(size, elapsed)
            except Exception:  # noqa: BLE001 - metrics must never break inference
                log.exception("on_batch callback failed")
