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
  side by side, e.g. one per CPU core), never on the caller's (or an event loop's) thread;
* the threads are supervised: one that dies (any exception escaping its loop, ``BaseException`` included,
  unless the interpreter is exiting) is logged as one JSON line (``event: inference_thread_died``),
  counted (``stats.restarts``, ``on_restart``) and replaced; the items it held fail with
  :attr:`~ocrpipe.errors.ErrorCode.INFERENCE_THREAD_DIED`, so no caller waits forever. :attr:`healthy`
  turns false when a thread cannot be kept alive (a slot without a live thread, or more than
  ``max_restarts`` deaths within ``restart_window_s``).

Calling the batcher like a function (``batcher(items)``) submits the items and blocks until all their
results are in, which is exactly the ``recognize`` hook of :meth:`ocrpipe.Pipeline.process_image`.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ocrpipe.errors import EngineError, ErrorCode, OcrError, Stage
from ocrpipe.server.retry import queue_wait

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


class BatcherOverloaded(OcrError):
    """The batcher's queue stayed full for longer than the admission timeout (code ``overloaded``)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(ErrorCode.OVERLOADED, message, retry_after=retry_after)


class BatcherClosed(RuntimeError):
    """The batcher was stopped; no more items are accepted."""


@dataclass(slots=True)
class _Item(Generic[T, R]):
    value: T
    future: Future[R]
    enqueued: float = field(default_factory=time.monotonic)
    caller: int = 0
    """Which :meth:`DynamicBatcher.submit` call queued the item (batches mixing callers are counted)."""


@dataclass
class BatcherStats:
    """Counters a caller may read at any time (values are updated under the batcher's lock)."""

    batches: int = 0
    items: int = 0
    fallbacks: int = 0
    max_batch_seen: int = 0
    restarts: int = 0
    mixed_batches: int = 0
    """Batches holding items of more than one submit call (cross-request batching)."""


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
        on_batch: Callable[[int, float, int], None] | None = None,
        threads: int = 1,
        thread_init: Callable[[], None] | None = None,
        on_restart: Callable[[], None] | None = None,
        max_restarts: int = 5,
        restart_window_s: float = 60.0,
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
        self.on_restart = on_restart
        self.max_restarts = max_restarts
        self.restart_window_s = restart_window_s
        self.name = name
        self._deaths: collections.deque[float] = collections.deque(maxlen=max(1, max_restarts + 1))
        self._held: dict[int, list[_Item[T, R]]] = {}
        self._generation = 0
        self._submits = 0
        self._threads: list[threading.Thread] = [threading.Thread() for _ in range(threads)]
        for slot in range(threads):
            self._start(slot)

    # ---- public API --------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Items waiting for a batch right now."""
        return len(self._queue)

    @property
    def alive_threads(self) -> int:
        """Inference threads running right now."""
        return sum(t.is_alive() for t in self._threads)

    @property
    def busy_threads(self) -> list[threading.Thread]:
        """The inference threads holding a batch right now."""
        return [self._threads[slot] for slot in list(self._held)]

    @property
    def healthy(self) -> bool:
        """Every thread slot has a live thread and threads are not dying faster than the restart budget."""
        if self._closed or self.alive_threads < len(self._threads):
            return False
        recent = [t for t in self._deaths if time.monotonic() - t < self.restart_window_s]
        return len(recent) <= self.max_restarts

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
            if not self.alive_threads:
                raise EngineError(ErrorCode.INFERENCE_THREAD_DIED, "no inference thread is running",
                                  stage=Stage.RECOGNIZE)
            now = time.monotonic()
            self._submits += 1
            new: list[_Item[T, R]] = [_Item(value=v, future=Future(), enqueued=now, caller=self._submits)
                                      for v in items]
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
        return queue_wait(len(self._queue), self._avg_item_s)

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
        if n == 0:
            return False
        if n >= self.max_batch_size or n < len(self._queue):
            return True
        return self.batch_cost is not None and self.batch_cost(
            [self._queue[i].value for i in range(n)]) >= self.max_batch_cost

    def _next_batch(self, slot: int) -> list[_Item[T, R]] | None:
        """Block until a batch is ready (full, or its first item waited max_wait); None when closed.

        Several inference threads wait on the same queue: after any wait another one may have taken
        every item, so the queue is checked again before a batch is formed (an empty one never is).
        """
        with self._cond:
            while True:
                while not self._queue:
                    if self._closed:
                        return None
                    self._cond.wait()
                while self._queue and not self._closed and not self._full():
                    remaining = self._queue[0].enqueued + self.max_wait - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if self._queue:
                    break
            batch = [self._queue.popleft() for _ in range(self._fitting())]
            self._held[slot] = batch
            self._cond.notify_all()  # wake submitters waiting for room
            return batch

    def _loop(self, slot: int) -> None:
        """One inference thread: serve batches; on any escaping exception, hand over to a new thread."""
        try:
            if self.thread_init is not None:
                self.thread_init()
            while True:
                batch = self._next_batch(slot)
                if batch is None:
                    return
                live = [item for item in batch if item.future.set_running_or_notify_cancel()]
                if live:
                    self._run(live)
                self._held.pop(slot, None)
        except BaseException as exc:  # noqa: BLE001 - supervision: every death is reported and replaced
            if sys.is_finalizing():
                raise
            self._on_death(slot, exc)

    def _on_death(self, slot: int, exc: BaseException) -> None:
        """Report the death (count, JSON log line, ``on_restart``), fail the held items, start a new thread."""
        held = self._held.pop(slot, [])
        with self._stats_lock:
            self.stats.restarts += 1
            self._deaths.append(time.monotonic())
        try:
            log.error("inference thread died", exc_info=exc, extra={
                "event": "inference_thread_died", "thread_name": threading.current_thread().name,
                "error": type(exc).__name__, "failed_items": len(held), "restarts": self.stats.restarts})
            if self.on_restart is not None:
                self.on_restart()
        except Exception:  # noqa: BLE001 - reporting must never stop the replacement
            log.exception("reporting a dead inference thread failed")
        finally:
            err = EngineError(ErrorCode.INFERENCE_THREAD_DIED, "the inference thread running this item died "
                              f"({type(exc).__name__}); it was replaced: retry the request", stage=Stage.RECOGNIZE)
            for item in held:
                if not item.future.done():
                    item.future.set_exception(err)
            with self._cond:
                if not self._closed:
                    self._start(slot)

    def _start(self, slot: int) -> None:
        """Start (or replace) the thread of ``slot``; a thread that cannot start leaves the slot empty."""
        self._generation += 1
        t = threading.Thread(target=self._loop, args=(slot,), name=f"{self.name}-{slot}.{self._generation}",
                             daemon=True)
        self._threads[slot] = t
        try:
            t.start()
        except RuntimeError:
            log.error("cannot start an inference thread", extra={"event": "inference_thread_start_failed"})
            self._fail_queue_if_no_thread()

    def _fail_queue_if_no_thread(self) -> None:
        if self.alive_threads:
            return
        err = EngineError(ErrorCode.INFERENCE_THREAD_DIED, "no inference thread is running", stage=Stage.RECOGNIZE)
        while self._queue:
            item = self._queue.popleft()
            if item.future.set_running_or_notify_cancel():
                item.future.set_exception(err)

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
        self._record(len(batch), elapsed, len({item.caller for item in batch}))
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

    def _record(self, size: int, elapsed: float, callers: int) -> None:
        with self._stats_lock:
            self.stats.batches += 1
            self.stats.mixed_batches += callers > 1
            self.stats.items += size
            self.stats.max_batch_seen = max(self.stats.max_batch_seen, size)
            self._avg_item_s = 0.8 * self._avg_item_s + 0.2 * (elapsed / size)
        if self.on_batch is not None:
            try:
                self.on_batch(size, elapsed, callers)
            except Exception:  # noqa: BLE001 - metrics must never break inference
                log.exception("on_batch callback failed")
