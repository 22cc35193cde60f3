"""The page scheduler: pages, not requests, are the unit of work.

A request or job hands in its files as :class:`Ticket` s (one per file) grouped in a *lane* (one per request
or job). ``workers`` page threads take work lane by lane, round-robin: each turn gives the next lane one
page, so a 50-page PDF and a 1-page request alternate instead of queueing one behind the other. Within a lane
files are opened one after the other, and a file's pages are rendered one at a time when a thread takes them
(the engine's lazy :class:`PageSource`), so a ``/v1/batch_ocr`` of four 50-page PDFs never holds more than
the pages being worked on.

Memory budget: a page is started only when what the pages in flight hold plus what it needs fit
``memory_budget`` bytes. A page holds its pixels (``page_size`` x 3 bytes) until it is done and, until its
detection has finished, the detector's working memory for its size (``work_memory``, the engine's
estimate from the network input the page is resized to); both are known from the header, before anything
is rendered. So two A4 pages are not detected at once within a budget that holds one such detection, yet
a page in recognition leaves room for the next page's detection. A page larger than the whole budget runs
when nothing else is in flight. A page waiting for memory is not overtaken for ever by smaller ones: the
other lanes get one more turn each, then wait until it has started.

One lane holds at most ``lane_threads`` threads at once (by default all but one), so a request arriving
while a long PDF is worked on finds a free thread at once instead of waiting for one of the PDF's pages to
finish. Each ticket has a deadline (the sync endpoints' time budget or the jobs' own) and an optional page
cap checked when the file is opened, before any page is rendered.
A ticket may bring its own page and file functions (``/v1/detection`` runs only the detection steps of the
page path): its pages are scheduled, budgeted and capped like every other.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ocrpipe.errors import EngineError, ErrorCode, InputError

log = logging.getLogger(__name__)


class Pages(Protocol):
    """What the scheduler needs of an opened file (the engine's ``PageSource``)."""

    def __len__(self) -> int: ...

    def page_size(self, index: int) -> tuple[int, int]: ...

    def render(self, index: int) -> np.ndarray: ...

    def close(self) -> None: ...


Opener = Callable[[], Pages]
"""Opens one file (reads its header: page count, sizes); runs on a page thread."""
PageFn = Callable[[np.ndarray, int, dict[str, float], Callable[[], None]], Any]
"""Runs the engine's page path on one rendered page and returns its result (a ``Page`` for OCR), adding
its stage times to the dict; calls the callable once the page's detection has finished."""
WorkMemory = Callable[[int, int], int]
"""Bytes the detection of a page of that width and height needs while it runs."""
DocumentFn = Callable[[list[Any], dict[str, float], float], Any]
"""Builds the result of a file (a ``Document`` for OCR) from its page results in order, the summed
timings and the start as a perf_counter value."""


@dataclass(eq=False)
class Ticket:
    """One file of a request or job: its pages go through the scheduler, its Document comes back."""

    open: Opener
    deadline: float
    max_pages: int | None = None
    page_fn: PageFn | None = None
    """The page function of this file (None: the scheduler's, the OCR page path)."""
    document_fn: DocumentFn | None = None
    """The file function of this file (None: the scheduler's, which builds the Document)."""
    future: Future[Any] = field(default_factory=Future)
    started: float = field(default_factory=time.perf_counter)
    pages: Pages | None = None
    opening: bool = False
    next_index: int = 0
    inflight: int = 0
    results: dict[int, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    released: bool = False

    @property
    def count(self) -> int:
        """Pages of the file (0 until it is opened)."""
        return len(self.pages) if self.pages is not None else 0

    @property
    def dispatched(self) -> bool:
        """Every page has been handed to a thread (the lane may move on to its next file)."""
        return self.future.done() or (self.pages is not None and self.next_index >= self.count)


@dataclass(eq=False)
class _Lane:
    tickets: collections.deque[Ticket]
    inflight: int = 0
    """Tasks of this lane on a thread right now."""


@dataclass
class _Task:
    lane: _Lane
    ticket: Ticket
    index: int
    """-1: open the file; otherwise the page to render and process."""
    nbytes: int = 0
    """The page's pixels, held until it is done."""
    work: int = 0
    """The detection working memory, held until the page's detection has finished."""


class PageScheduler:
    """Round-robin page scheduling across requests on ``workers`` threads, within a memory budget."""

    def __init__(self, page_fn: PageFn, document_fn: DocumentFn, *, workers: int, memory_budget: int,
                 lane_threads: int = 0, work_memory: WorkMemory | None = None,
                 thread_init: Callable[[], None] | None = None,
                 on_page: Callable[[float], None] | None = None) -> None:
        self.page_fn = page_fn
        self.document_fn = document_fn
        self.memory_budget = memory_budget
        self.work_memory = work_memory
        self.lane_threads = lane_threads or max(1, workers - 1)
        self.on_page = on_page
        self._thread_init = thread_init
        self._lanes: collections.deque[_Lane] = collections.deque()
        self._cond = threading.Condition()
        self._inflight_bytes = 0
        self._reserved: _Lane | None = None
        """A lane whose next page waits for memory: the others get one more turn each, then wait for it."""
        self._passes = 0
        self._closed = False
        self.tasks_done = 0
        """Files opened plus pages processed since start (an activity count)."""
        self._threads = [threading.Thread(target=self._loop, name=f"ocr-page-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    # ---- public API --------------------------------------------------------------------------------

    def submit(self, tickets: list[Ticket]) -> list[Future[Any]]:
        """Queue one lane (a request or job) of files; their Documents (or what their ``document_fn``
        makes) come back through the futures."""
        if tickets:
            with self._cond:
                if self._closed:
                    raise EngineError(ErrorCode.ENGINE_FAILURE, "the service is shutting down")
                self._lanes.append(_Lane(collections.deque(tickets)))
                self._cond.notify_all()
        return [t.future for t in tickets]

    @property
    def inflight_bytes(self) -> int:
        """Bytes the pages being processed hold right now: pixels, plus detection memory while detecting."""
        return self._inflight_bytes

    @property
    def lanes(self) -> int:
        """Requests and jobs with pages still waiting."""
        return len(self._lanes)

    def close(self, timeout: float = 5.0) -> None:
        """Fail what is still queued and stop the threads."""
        with self._cond:
            self._closed = True
            for lane in self._lanes:
                for t in lane.tickets:
                    _fail(t, EngineError(ErrorCode.ENGINE_FAILURE, "the service is shutting down"))
            self._lanes.clear()
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # ---- scheduling --------------------------------------------------------------------------------

    def _next_task(self) -> _Task | None:
        """Block until some lane has work that fits the budget; None when closed."""
        with self._cond:
            while not self._closed:
                task = self._pick()
                if task is not None:
                    self._inflight_bytes += task.nbytes + task.work
                    task.lane.inflight += 1
                    return task
                self._cond.wait(0.5)  # woken on submit/finish; the timeout re-checks deadlines
            return None

    def _pick(self) -> _Task | None:
        """One round over the lanes, starting after the last served one (round-robin)."""
        for _ in range(len(self._lanes)):
            lane = self._lanes[0]
            self._lanes.rotate(-1)
            task = self._task_of(lane)
            if not lane.tickets:
                self._lanes.remove(lane)
                if lane is self._reserved:
                    self._reserved = None
            if task is not None:
                return task
        return None

    def _task_of(self, lane: _Lane) -> _Task | None:
        while lane.tickets and lane.tickets[0].dispatched:
            lane.tickets.popleft()
        if not lane.tickets:
            return None
        ticket = lane.tickets[0]
        if lane.inflight >= self.lane_threads:
            return None
        if time.monotonic() > ticket.deadline:
            self._expire(lane)
            return None
        if ticket.pages is None:
            if ticket.opening:
                return None
            ticket.opening = True
            return _Task(lane, ticket, -1)
        try:
            w, h = ticket.pages.page_size(ticket.next_index)
        except Exception as exc:  # noqa: BLE001 - e.g. image_too_large, read from the header: the file fails
            _fail(ticket, exc)
            self._release(ticket)
            return None
        nbytes = w * h * 3
        work = self.work_memory(w, h) if self.work_memory is not None else 0
        if self._inflight_bytes and self._inflight_bytes + nbytes + work > self.memory_budget:
            if self._reserved is None:
                self._reserved, self._passes = lane, len(self._lanes) - 1
            return None
        if self._reserved is lane:
            self._reserved = None
        elif self._reserved is not None:  # pages that fit may not overtake a waiting one forever
            if self._passes <= 0:
                return None
            self._passes -= 1
        ticket.next_index += 1
        ticket.inflight += 1
        return _Task(lane, ticket, ticket.next_index - 1, nbytes, work)

    def _expire(self, lane: _Lane) -> None:
        err = EngineError(ErrorCode.DEADLINE_EXCEEDED,
                       "the request's time budget ran out before its pages were processed; "
                       "send long documents to POST /v1/jobs")
        for t in lane.tickets:
            _fail(t, err)
            self._release(t)
        lane.tickets.clear()

    # ---- work --------------------------------------------------------------------------------------

    def _loop(self) -> None:
        if self._thread_init is not None:
            self._thread_init()
        while True:
            task = self._next_task()
            if task is None:
                return
            try:
                if task.index < 0:
                    self._open(task.ticket)
                else:
                    self._page(task)
            except BaseException as exc:  # noqa: BLE001 - the ticket fails, the thread goes on
                _fail(task.ticket, exc if isinstance(exc, Exception) else
                      EngineError(ErrorCode.ENGINE_FAILURE, f"page failed: {type(exc).__name__}"))
                if not isinstance(exc, Exception):
                    log.error("page thread caught %s", type(exc).__name__, extra={"event": "page_thread_error"})
            finally:
                with self._cond:
                    self._inflight_bytes -= task.nbytes + task.work
                    task.work = 0
                    task.lane.inflight -= 1
                    self.tasks_done += 1
                    if task.index >= 0:
                        task.ticket.inflight -= 1
                    self._finish_if_done(task.ticket)
                    self._cond.notify_all()

    def _open(self, ticket: Ticket) -> None:
        start = time.perf_counter()
        pages = ticket.open()
        ticket.timings["decode"] = ticket.timings.get("decode", 0.0) + (time.perf_counter() - start) * 1000
        if ticket.max_pages is not None and len(pages) > ticket.max_pages:
            pages.close()
            raise InputError(ErrorCode.TOO_MANY_PAGES_FOR_SYNC,
                             f"the file has {len(pages)} pages; synchronous requests take at most "
                             f"{ticket.max_pages}: submit it to POST /v1/jobs instead")
        with self._cond:
            ticket.pages = pages

    def _page(self, task: _Task) -> None:
        ticket = task.ticket
        if ticket.future.done():  # failed or cancelled meanwhile: skip the work
            return
        assert ticket.pages is not None
        timings: dict[str, float] = {}
        start = time.perf_counter()
        image = ticket.pages.render(task.index)
        timings["decode"] = (time.perf_counter() - start) * 1000.0
        page = (ticket.page_fn or self.page_fn)(image, task.index, timings, lambda: self._detected(task))
        del image
        with self._cond:
            ticket.results[task.index] = page
            for k, v in timings.items():
                ticket.timings[k] = ticket.timings.get(k, 0.0) + v
        if self.on_page is not None:
            self.on_page(time.perf_counter() - start)

    def _detected(self, task: _Task) -> None:
        """The page's detection has finished: give its working memory back to the budget."""
        with self._cond:
            if task.work:
                self._inflight_bytes -= task.work
                task.work = 0
                self._cond.notify_all()

    def _finish_if_done(self, ticket: Ticket) -> None:
        """Called under the lock after each task: complete the Document when its last page is in."""
        done = ticket.future.done()
        if done or ticket.pages is None or ticket.inflight or len(ticket.results) < ticket.count:
            if done:
                self._release(ticket)
            return
        pages = [ticket.results[i] for i in range(ticket.count)]
        self._release(ticket)
        try:
            doc = (ticket.document_fn or self.document_fn)(pages, ticket.timings, ticket.started)
        except Exception as exc:  # noqa: BLE001 - delivered to the ticket
            _fail(ticket, exc)
            return
        if ticket.future.set_running_or_notify_cancel():
            ticket.future.set_result(doc)

    def _release(self, ticket: Ticket) -> None:
        if ticket.pages is not None and not ticket.inflight and not ticket.released:
            ticket.released = True
            ticket.pages.close()
            ticket.results.clear()


def _fail(ticket: Ticket, exc: BaseException) -> None:
    if not ticket.future.done() and ticket.future.set_running_or_notify_cancel():
        ticket.future.set_exception(exc)
