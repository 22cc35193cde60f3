"""The three ``Retry-After`` formulas (:mod:`ocrpipe.server.retry`) follow the depth of what waits and the
measured throughput, and the refusals that use them (the synchronous slot, the recognition queue) answer them."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest

from ocrpipe.errors import ErrorCode
from ocrpipe.server.errors import ServiceError
from ocrpipe.server.http.deps import inflight_slot
from ocrpipe.server.metrics import Metrics
from ocrpipe.server.retry import SYNC_MAX_S, jobs_wait, queue_wait, sync_wait
from ocrpipe.server.scheduling.batcher import BatcherOverloaded, DynamicBatcher


def test_sync_wait_is_the_next_slot_to_free() -> None:
    # 4 slots, requests 1, 2, 3 and 9 s into a 10 s mean: the first frees in 1 s (the one 9 s in)
    assert sync_wait([1, 2, 3, 9], 10, 0) == pytest.approx(1.0)
    assert sync_wait([1, 2, 3, 9], 10, 1) == pytest.approx(7.0)  # one retrier ahead takes that slot
    assert sync_wait([1, 2, 3, 9], 10, 3) == pytest.approx(9.0)
    assert sync_wait([1, 2, 3, 9], 10, 4) == pytest.approx(11.0)  # second round: the first slot again + mean


def test_sync_wait_scales_with_throughput_and_depth() -> None:
    fresh = [0.0, 0.0]
    assert sync_wait(fresh, 4, 0) == 4
    assert sync_wait(fresh, 8, 0) == 8  # twice the measured duration: twice the wait
    assert sync_wait(fresh, 4, 2) == 8  # two retriers ahead on two slots: one more round
    assert sync_wait(fresh, 4, 4) == 12


def test_sync_wait_is_bounded() -> None:
    assert sync_wait([0.0], 0.01, 0) == 1.0
    assert sync_wait([9.9], 10, 0) == 1.0  # a request past its mean ends soon (a tenth of it), not never
    assert sync_wait([0.0], 10, 10_000) == SYNC_MAX_S
    assert sync_wait([], 5, 0) == 5  # nothing measured in flight: the mean


def test_jobs_wait_scales_with_depth_time_and_workers() -> None:
    assert jobs_wait(10, 10, 6, 2) == 3  # one job must finish: 6 s on 2 workers
    assert jobs_wait(13, 10, 6, 2) == 12  # four must
    assert jobs_wait(13, 10, 12, 2) == 24
    assert jobs_wait(13, 10, 12, 4) == 12
    assert jobs_wait(10, 10, 0.1, 1) == 1.0
    assert jobs_wait(10, 10, 0.0, 1) is None  # nothing measured


def test_queue_wait_scales_with_depth_and_time_per_crop() -> None:
    assert queue_wait(100, 0.05) == 5.0
    assert queue_wait(200, 0.05) == 10.0
    assert queue_wait(100, 0.1) == 10.0
    assert queue_wait(3, 0.01) == 1.0


def _state(max_inflight: int, sync_s: float) -> SimpleNamespace:
    """The fields of :class:`~ocrpipe.server.http.deps.ServiceState` the slot uses (a real one needs a
    store, an engine and runners)."""
    import collections

    return SimpleNamespace(settings=SimpleNamespace(max_inflight=max_inflight), metrics=Metrics(), inflight=0,
                           sync_s=sync_s, running={}, promised=collections.deque())


def test_refused_sync_requests_queue_up_behind_each_other() -> None:
    svc = _state(2, sync_s=6.0)

    def request() -> SimpleNamespace:
        return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(svc=svc)))

    async def refused() -> float:
        with pytest.raises(ServiceError) as info:
            await inflight_slot(request()).__anext__()  # type: ignore[arg-type]
        assert info.value.code == ErrorCode.TOO_MANY_REQUESTS and info.value.retry_after is not None
        return info.value.retry_after

    async def run() -> tuple[list[float], float]:
        held = [inflight_slot(request()) for _ in range(2)]  # type: ignore[arg-type]
        for slot in held:
            await slot.__anext__()
        waits = [await refused() for _ in range(3)]
        svc.sync_s = 12.0
        svc.promised.clear()
        return waits, await refused()

    waits, slower = asyncio.run(run())
    # two fresh requests of a 6 s mean: the first refused gets the first slot (~6 s), the second the other
    # slot (~6 s), the third the first slot's second round (~12 s)
    assert waits[0] == pytest.approx(6.0, abs=0.2) and waits[1] == pytest.approx(6.0, abs=0.2)
    assert waits[2] == pytest.approx(12.0, abs=0.2)
    assert slower == pytest.approx(12.0, abs=0.3)  # slower requests (nobody waiting): a longer wait


def test_full_recognition_queue_answers_depth_times_time_per_crop() -> None:
    release = threading.Event()

    def slow(items: list[int]) -> list[int]:
        release.wait(10)
        return items

    batcher = DynamicBatcher(slow, max_batch_size=1, max_wait_ms=0, max_queue=4, admission_timeout=0)
    try:
        first = batcher.submit([0])
        deadline = time.monotonic() + 5
        while batcher.depth and time.monotonic() < deadline:  # the worker holds item 0
            time.sleep(0.01)
        batcher.submit([1, 2, 3, 4])
        batcher._avg_item_s = 2.0  # as if measured: 2 s a crop
        with pytest.raises(BatcherOverloaded) as info:
            batcher.submit([5])
        assert info.value.retry_after == 8.0  # 4 crops queued x 2 s
        batcher._avg_item_s = 4.0
        with pytest.raises(BatcherOverloaded) as info:
            batcher.submit([5])
        assert info.value.retry_after == 16.0
    finally:
        release.set()
        first[0].result(10)
        batcher.close()
