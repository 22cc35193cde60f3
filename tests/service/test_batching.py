"""The dynamic batcher's own semantics, with a simple real batch function (no model needed)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from ocrpipe.errors import EngineError, ErrorCode
from ocrpipe.server.scheduling.batcher import BatcherOverloaded, DynamicBatcher


class Recorder:
    """A real batch function: squares numbers, records every batch it was given."""

    def __init__(self, delay: float = 0.0, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def __call__(self, items: list[int]) -> list[int]:
        with self.lock:
            self.batches.append(list(items))
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"cannot process {self.fail_on}")
        return [x * x for x in items]


def test_results_map_back_to_items_in_order() -> None:
    fn = Recorder()
    b = DynamicBatcher(fn, max_batch_size=8, max_wait_ms=50, sort_key=lambda x: -x)
    try:
        assert b([3, 1, 2]) == [9, 1, 4]
        assert fn.batches == [[3, 2, 1]]  # sorted by the key before the call
    finally:
        b.close()


def test_batch_closes_when_full_without_waiting() -> None:
    fn = Recorder()
    b = DynamicBatcher(fn, max_batch_size=4, max_wait_ms=60_000)  # huge wait: only "full" can close it
    try:
        futures = b.submit([1, 2, 3, 4, 5, 6, 7, 8])
        assert [f.result(timeout=10) for f in futures] == [1, 4, 9, 16, 25, 36, 49, 64]
        assert [len(x) for x in fn.batches] == [4, 4]
    finally:
        b.close()


def test_partial_batch_waits_for_max_wait_from_first_item() -> None:
    fn = Recorder()
    b = DynamicBatcher(fn, max_batch_size=100, max_wait_ms=300)
    try:
        start = time.monotonic()
        first = b.submit([1])
        time.sleep(0.1)
        second = b.submit([2])
        first[0].result(timeout=10)
        waited = time.monotonic() - start
        assert second[0].result(timeout=10) == 4
        assert fn.batches == [[1, 2]]  # both items pooled into one batch
        assert waited >= 0.29  # closed by the first item's deadline, not earlier
    finally:
        b.close()


def test_items_from_many_threads_are_pooled() -> None:
    fn = Recorder(delay=0.05)
    b = DynamicBatcher(fn, max_batch_size=64, max_wait_ms=200)
    out: dict[int, list[int]] = {}

    def client(k: int) -> None:
        out[k] = b([k * 10 + i for i in range(3)])

    try:
        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert out == {k: [(k * 10 + i) ** 2 for i in range(3)] for k in range(8)}
        assert len(fn.batches) < 8  # fewer calls than clients
        assert b.stats.items == 24
        assert b.stats.mixed_batches >= 1
    finally:
        b.close()


def test_one_bad_item_fails_only_its_own_future() -> None:
    fn = Recorder(fail_on=13)
    b = DynamicBatcher(fn, max_batch_size=8, max_wait_ms=60_000)
    try:
        futures = b.submit([1, 13, 2, 3, 4, 5, 6, 7])
        with pytest.raises(ValueError, match="13"):
            futures[1].result(timeout=10)
        assert [f.result(timeout=10) for i, f in enumerate(futures) if i != 1] == [1, 4, 9, 16, 25, 36, 49]
        assert b.stats.fallbacks == 1
    finally:
        b.close()


def test_wrong_output_length_is_an_error_per_item() -> None:
    b = DynamicBatcher(lambda items: [0], max_batch_size=4, max_wait_ms=60_000)
    try:
        futures = b.submit([1, 2, 3, 4])
        assert futures[0].result(timeout=10) == 0  # alone, each item gets its own (1-long) answer
        b2 = DynamicBatcher(lambda items: [], max_batch_size=2, max_wait_ms=0)
        try:
            with pytest.raises(RuntimeError, match="0 results for 1 item"):
                b2([1])
        finally:
            b2.close()
    finally:
        b.close()


def test_full_queue_refuses_with_retry_after() -> None:
    gate = threading.Event()

    def slow(items: list[int]) -> list[int]:
        gate.wait(10)
        return items

    b = DynamicBatcher(slow, max_batch_size=2, max_wait_ms=0, max_queue=4, admission_timeout=0.2)
    try:
        first = b.submit([1, 2])          # taken by the worker, which blocks on the gate
        time.sleep(0.1)
        queued = b.submit([3, 4, 5, 6])   # fills the queue
        with pytest.raises(BatcherOverloaded) as info:
            b.submit([7])
        assert info.value.retry_after >= 1
        gate.set()
        assert [f.result(timeout=10) for f in first + queued] == [1, 2, 3, 4, 5, 6]
        assert b([7]) == [7]               # room again once the queue drained
    finally:
        gate.set()
        b.close()


def test_oversized_request_is_admitted_when_queue_is_empty() -> None:
    b = DynamicBatcher(lambda items: items, max_batch_size=2, max_wait_ms=0, max_queue=4)
    try:
        assert b(list(range(10))) == list(range(10))
    finally:
        b.close()


def test_close_finishes_queued_items_and_refuses_new_ones() -> None:
    fn = Recorder(delay=0.02)
    b = DynamicBatcher(fn, max_batch_size=2, max_wait_ms=1000)
    futures = b.submit([1, 2, 3])
    b.close()
    assert [f.result(timeout=5) for f in futures] == [1, 4, 9]
    with pytest.raises(RuntimeError):
        b.submit([4])


def test_several_inference_threads_run_batches_side_by_side() -> None:
    barrier = threading.Barrier(2, timeout=10)

    def meet(items: list[int]) -> list[int]:
        barrier.wait()  # passes only when two batches are in flight at once
        return items

    b = DynamicBatcher(meet, max_batch_size=1, max_wait_ms=0, threads=2)
    try:
        futures = b.submit([1, 2])
        assert [f.result(timeout=10) for f in futures] == [1, 2]
    finally:
        b.close()


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        DynamicBatcher(lambda x: x, max_batch_size=0)
    with pytest.raises(ValueError):
        DynamicBatcher(lambda x: x, max_batch_size=8, max_queue=4)
    with pytest.raises(ValueError):
        DynamicBatcher(lambda x: x, threads=0)


def test_cost_budget_closes_a_batch_early() -> None:
    fn = Recorder()
    # cost = padded area: items x widest item; budget 100 -> e.g. [10..50] fits 2 of width 50, 10 of width 10
    b = DynamicBatcher(fn, max_batch_size=32, max_wait_ms=60_000,
                       batch_cost=lambda items: len(items) * max(items), max_batch_cost=100)
    try:
        futures = b.submit([10] * 10 + [50, 50, 50] + [200])
        # every batch closes at once (budget reached), none waits for the 60 s max_wait
        assert [f.result(timeout=10) for f in futures] == [100] * 10 + [2500] * 3 + [40_000]
        assert fn.batches == [[10] * 10, [50, 50], [50], [200]]
    finally:
        b.close()


def test_a_thread_woken_after_another_emptied_the_queue_keeps_serving() -> None:
    """Regression: with two threads and a cost budget, the thread that lost the race for the batch found
    an empty queue after its wait and died (``max() arg is an empty sequence`` in ``_next_batch``)."""
    fn = Recorder()
    b = DynamicBatcher(fn, max_batch_size=2, max_wait_ms=60_000, threads=2,
                       batch_cost=lambda items: len(items) * max(items), max_batch_cost=1e9)
    try:
        first = b.submit([1])
        time.sleep(0.2)  # both threads now wait for the batch to fill
        second = b.submit([2])  # full: one thread takes both, the other wakes to an empty queue
        assert [first[0].result(timeout=10), second[0].result(timeout=10)] == [1, 4]
        time.sleep(0.2)
        assert b.alive_threads == 2
        assert b.stats.restarts == 0
        assert b.healthy
        assert b([3, 4]) == [9, 16]
    finally:
        b.close()


class Die(BaseException):
    """Not an ``Exception``: escapes the batcher's per-item isolation, as a killed thread would."""


@pytest.mark.parametrize("death", [Die, SystemExit, KeyboardInterrupt])
def test_a_dead_inference_thread_is_logged_counted_replaced_and_its_items_fail_with_the_code(
        death: type[BaseException], caplog: pytest.LogCaptureFixture) -> None:
    def fn(items: list[int]) -> list[int]:
        if 13 in items:
            raise death("killed")
        return [x * x for x in items]

    restarts: list[int] = []
    b = DynamicBatcher(fn, max_batch_size=4, max_wait_ms=0, threads=2, on_restart=lambda: restarts.append(1))
    try:
        with caplog.at_level(logging.ERROR, logger="ocrpipe.server.scheduling.batcher"):
            doomed = b.submit([13])
            with pytest.raises(EngineError) as info:
                doomed[0].result(timeout=10)
        assert info.value.code == ErrorCode.INFERENCE_THREAD_DIED
        assert restarts == [1] and b.stats.restarts == 1
        deaths = [r for r in caplog.records if getattr(r, "event", None) == "inference_thread_died"]
        assert len(deaths) == 1 and deaths[0].error == death.__name__  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while b.alive_threads < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert b.alive_threads == 2  # replaced
        assert b.healthy
        assert b([2, 3]) == [4, 9]
    finally:
        b.close()


def test_threads_dying_faster_than_the_restart_budget_make_the_batcher_unhealthy() -> None:
    def fn(items: list[int]) -> list[int]:
        raise Die("killed")

    b = DynamicBatcher(fn, max_batch_size=1, max_wait_ms=0, threads=1, max_restarts=2, restart_window_s=60)
    try:
        for _ in range(3):
            with pytest.raises(EngineError):
                b([1])
        assert b.stats.restarts == 3
        assert not b.healthy
    finally:
        b.close()
