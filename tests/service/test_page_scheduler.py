"""The page scheduler's own semantics with real page functions (no model needed): round-robin across
requests, the memory budget, the page cap, the time budget, and one bad page failing only its file."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from ocrpipe.document import Document, Page
from ocrpipe.errors import ErrorCode, InputError, OcrError
from ocrpipe.server.scheduling.pages import PageScheduler, Ticket


class Blank:
    """A file of ``count`` blank pages of ``size`` pixels, rendered on demand; records what was rendered."""

    def __init__(self, name: str, count: int, size: tuple[int, int] = (20, 10), log: list[str] | None = None,
                 bad: int | None = None) -> None:
        self.name, self.count, self.size, self.bad = name, count, size, bad
        self.log = log if log is not None else []
        self.closed = False

    def __len__(self) -> int:
        return self.count

    def page_size(self, index: int) -> tuple[int, int]:
        return self.size

    def render(self, index: int) -> np.ndarray:
        if index == self.bad:
            raise InputError(ErrorCode.CORRUPT_PDF, f"page {index} cannot be rendered")
        self.log.append(f"{self.name}{index}")
        return np.zeros((self.size[1], self.size[0], 3), np.uint8)

    def close(self) -> None:
        self.closed = True


class Work:
    """A real page function: "detects" for ``detect_delay`` seconds, then holds the page ``delay`` seconds;
    tracks how many pages run, and how many detect, at once."""

    def __init__(self, delay: float = 0.0, detect_delay: float = 0.0) -> None:
        self.delay = delay
        self.detect_delay = detect_delay
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.detecting = 0
        self.peak_detecting = 0

    def __call__(self, image: np.ndarray, index: int, timings: dict[str, float],
                 detected: Callable[[], None]) -> Page:
        with self.lock:
            self.now += 1
            self.detecting += 1
            self.peak = max(self.peak, self.now)
            self.peak_detecting = max(self.peak_detecting, self.detecting)
        time.sleep(self.detect_delay)
        with self.lock:
            self.detecting -= 1
        detected()
        time.sleep(self.delay)
        with self.lock:
            self.now -= 1
        timings["detect"] = timings.get("detect", 0.0) + 1.0
        return Page(index=index, width=image.shape[1], height=image.shape[0], lines=())


def document(pages: list[Page], timings: dict[str, float], started: float) -> Document:
    return Document(engine="test", pages=tuple(pages), timings_ms=dict(timings))


def ticket(source: Blank, *, budget: float = 60.0, max_pages: int | None = None) -> Ticket:
    return Ticket(open=lambda: source, deadline=time.monotonic() + budget, max_pages=max_pages)


@pytest.fixture
def work() -> Work:
    return Work()


@pytest.fixture
def make(work: Work) -> Iterator[Callable[..., PageScheduler]]:
    made: list[PageScheduler] = []

    def factory(workers: int = 1, memory_budget: int = 1 << 30, lane_threads: int = 0,
                work_memory: Callable[[int, int], int] | None = None) -> PageScheduler:
        s = PageScheduler(work, document, workers=workers, memory_budget=memory_budget,
                          lane_threads=lane_threads, work_memory=work_memory)
        made.append(s)
        return s

    yield factory
    for s in made:
        s.close()


def test_pages_of_concurrent_requests_are_interleaved(make: Callable[..., PageScheduler]) -> None:
    order: list[str] = []
    gate = threading.Event()
    long = Blank("L", 6, log=order)
    blocker = Blank("B", 1, log=order)
    sched = make(workers=1)
    # hold the one thread so both requests are queued before any of their pages starts
    held = Ticket(open=lambda: (gate.wait(10), blocker)[1], deadline=time.monotonic() + 60)
    sched.submit([held])
    time.sleep(0.1)
    f_long = sched.submit([ticket(long)])[0]
    f_short = sched.submit([ticket(Blank("S", 1, log=order))])[0]
    gate.set()
    assert len(f_short.result(timeout=10).pages) == 1
    assert len(f_long.result(timeout=10).pages) == 6
    assert order.index("S0") <= 2, order  # the 1-page request is not queued behind the 6-page file
    assert [p for p in order if p.startswith("L")] == [f"L{i}" for i in range(6)]


def test_files_of_one_request_are_opened_one_after_the_other(make: Callable[..., PageScheduler]) -> None:
    sources = [Blank(f"F{k}", 3) for k in range(3)]
    opened: list[int] = []

    def opener(k: int) -> Blank:
        opened.append(k)
        assert all(s.closed for s in sources[:k]), "a file was opened before the previous one finished"
        return sources[k]

    sched = make(workers=1)
    futures = sched.submit([Ticket(open=lambda k=k: opener(k), deadline=time.monotonic() + 60)
                            for k in range(3)])
    docs = [f.result(timeout=10) for f in futures]
    assert [len(d.pages) for d in docs] == [3, 3, 3] and opened == [0, 1, 2]
    assert docs[0].timings_ms["detect"] == pytest.approx(3.0)  # per-page timings summed per file


def test_memory_budget_bounds_pages_in_flight(work: Work, make: Callable[..., PageScheduler]) -> None:
    work.delay = 0.05
    page_bytes = 100 * 100 * 3
    sched = make(workers=4, memory_budget=2 * page_bytes)
    futures = sched.submit([ticket(Blank("A", 6, size=(100, 100)))])
    futures += sched.submit([ticket(Blank("B", 6, size=(100, 100)))])
    assert all(len(f.result(timeout=20).pages) == 6 for f in futures)
    assert work.peak == 2  # 4 threads, but only two pages' pixels fit the budget
    assert sched.inflight_bytes == 0


def test_detection_memory_is_held_only_while_the_page_is_detected(
        work: Work, make: Callable[..., PageScheduler]) -> None:
    work.detect_delay, work.delay = 0.05, 0.1
    page_bytes = 100 * 100 * 3
    detection = 50 * page_bytes  # what the engine estimates for a detection: far more than the pixels
    sched = make(workers=4, lane_threads=4, memory_budget=detection + 4 * page_bytes,
                 work_memory=lambda w, h: 50 * w * h * 3)
    futures = sched.submit([ticket(Blank("A", 6, size=(100, 100)))])
    futures += sched.submit([ticket(Blank("B", 6, size=(100, 100)))])
    assert all(len(f.result(timeout=20).pages) == 6 for f in futures)
    assert work.peak_detecting == 1  # the budget holds one detection at a time...
    assert work.peak >= 2  # ...yet the next page is detected while the previous one is still being read
    assert sched.inflight_bytes == 0


def test_a_page_waiting_for_memory_is_not_overtaken_for_ever(work: Work, make: Callable[..., PageScheduler]) -> None:
    work.delay = 0.03
    order: list[str] = []
    small = 100 * 100 * 3
    sched = make(workers=2, lane_threads=1, memory_budget=3 * small)
    gate = threading.Event()
    held = Ticket(open=lambda: (gate.wait(10), Blank("H", 1, size=(100, 100), log=order))[1],
                  deadline=time.monotonic() + 60)
    sched.submit([held])
    time.sleep(0.1)
    # three lanes of small pages keep a page in flight; the big page needs the whole budget
    futures = [sched.submit([ticket(Blank(n, 12, size=(100, 100), log=order))])[0] for n in "abc"]
    big = sched.submit([ticket(Blank("B", 1, size=(100, 300), log=order))])[0]
    gate.set()
    assert all(len(f.result(timeout=30).pages) == 12 for f in futures) and len(big.result(timeout=30).pages) == 1
    assert order.index("B0") <= 8, order  # not after the 36 small pages: the others got one more turn each


def test_a_page_larger_than_the_budget_runs_alone(make: Callable[..., PageScheduler]) -> None:
    sched = make(workers=2, memory_budget=10)
    assert len(sched.submit([ticket(Blank("A", 2, size=(100, 100)))])[0].result(timeout=10).pages) == 2


def test_page_cap_refuses_before_rendering_with_the_jobs_code(make: Callable[..., PageScheduler]) -> None:
    source = Blank("P", 30)
    sched = make()
    with pytest.raises(InputError) as info:
        sched.submit([ticket(source, max_pages=20)])[0].result(timeout=10)
    assert info.value.code == ErrorCode.TOO_MANY_PAGES_FOR_SYNC and info.value.http_status == 413
    assert "/v1/jobs" in info.value.message
    assert source.log == [] and source.closed


def test_time_budget_fails_the_pages_not_yet_started(work: Work, make: Callable[..., PageScheduler]) -> None:
    work.delay = 0.1
    source = Blank("T", 50)
    sched = make(workers=1)
    with pytest.raises(OcrError) as info:
        sched.submit([ticket(source, budget=0.35)])[0].result(timeout=10)
    assert info.value.code == ErrorCode.DEADLINE_EXCEEDED and info.value.http_status == 504
    assert 1 <= len(source.log) < 10
    assert sched.lanes == 0


def test_a_bad_page_fails_only_its_file(make: Callable[..., PageScheduler]) -> None:
    sched = make(workers=2)
    bad, good = sched.submit([ticket(Blank("X", 4, bad=2)), ticket(Blank("G", 2))])
    with pytest.raises(InputError):
        bad.result(timeout=10)
    assert len(good.result(timeout=10).pages) == 2


def test_a_cancelled_request_stops_taking_pages(work: Work, make: Callable[..., PageScheduler]) -> None:
    work.delay = 0.05
    source = Blank("C", 40)
    sched = make(workers=1)
    future = sched.submit([ticket(source)])[0]
    time.sleep(0.12)
    future.cancel()
    time.sleep(0.2)
    rendered = len(source.log)
    time.sleep(0.2)
    assert len(source.log) == rendered < 40
