"""``ocrpipe client watch``: the loop that takes printouts in, uploads them, collects their results and
hands each one to the result command — one step after the other in one thread, all state in the spool.

Results arrive two ways: a ``WatchResults`` stream (a second thread, feeding a queue; re-opened with the
new job ids after each upload batch and after any break) brings them within moments; a ``GetResult`` poll of
every job not heard of for ``poll_interval_s`` catches whatever a broken stream missed. A result that comes
both ways is handled once (only a ``sent`` row takes a result).

While the server is down every call fails fast; one shared back-off (exponential, full jitter) spaces the
attempts, and each change of the server's state is logged once with the number of files waiting.

Retention runs at start-up and then once a day: ``done`` rows older than ``keep_days``, with their result
JSON, leave the spool (:meth:`~ocrpipe.client.spool.Spool.expire`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from ocrpipe.client.backoff import Backoff
from ocrpipe.client.connection import TERMINAL, CallError, Connection, Outcome
from ocrpipe.client.results import ResultCommand, dumps, result_document
from ocrpipe.client.spool import DAY_S, Entry, Spool, write_result
from ocrpipe.client.watcher import DEFAULT_PATTERNS, FolderScanner, Found
from ocrpipe.protocol import ingest_pb2

log = logging.getLogger("ocrpipe.client")


@dataclass(frozen=True)
class WatchConfig:
    """Everything ``ocrpipe client watch`` was told (see the CLI for the meaning of each option)."""

    folder: Path
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    recursive: bool = False
    settle_s: float = 1.0
    scan_interval_s: float = 0.5
    poll_interval_s: float = 10.0
    backoff: Backoff = field(default_factory=Backoff)
    hook: ResultCommand | None = None
    hook_retries: int = 5
    hook_backoff: Backoff = field(default_factory=lambda: Backoff(base_s=2.0, cap_s=300.0))
    device: str = ""
    exit_when_idle: bool = False
    keep_days: float = 30.0
    """Days a handed-on file stays in the spool (its row and result JSON); 0 keeps everything."""


class _Gate:
    """The shared back-off for calls to the server: closed until ``until`` after consecutive failures."""

    def __init__(self, backoff: Backoff, target: str) -> None:
        self.backoff = backoff
        self.target = target
        self.failures = 0
        self.until = 0.0
        self.down_since: float | None = None

    def open(self) -> bool:
        return time.monotonic() >= self.until

    def failed(self, err: CallError, waiting: int) -> float:
        """Record a failure; returns the wall-clock time of the next attempt."""
        self.failures += 1
        delay = self.backoff.delay(self.failures)
        self.until = time.monotonic() + delay
        if self.down_since is None:
            self.down_since = time.monotonic()
        level = logging.ERROR if err.outcome is Outcome.SETUP else logging.WARNING
        what = ("server refuses this client — check --api-key/scopes/--server" if err.outcome is Outcome.SETUP
                else "server unreachable")
        log.log(level, "%s %s [%s]: %s; %d file(s) waiting; retry %d in %.1f s", what, self.target, err.tag,
                err.message, waiting, self.failures, delay)
        return time.time() + delay

    def succeeded(self) -> None:
        if self.down_since is not None:
            log.info("server %s reachable again after %.1f s", self.target, time.monotonic() - self.down_since)
        self.failures, self.until, self.down_since = 0, 0.0, None


class _ResultStream(threading.Thread):
    """Keeps one ``WatchResults`` call open for the jobs awaiting a result; puts what it yields in a queue."""

    def __init__(self, connection: Connection, out: queue.Queue[ingest_pb2.JobResult], wake: threading.Event,
                 stop: threading.Event, backoff: Backoff) -> None:
        super().__init__(name="ocrpipe-client-watch", daemon=True)
        self.connection, self.out, self.wake, self.stop, self.backoff = connection, out, wake, stop, backoff
        self._lock = threading.Lock()
        self._ids: set[str] = set()
        self._changed = threading.Event()
        self._call: Any = None

    def follow(self, job_ids: set[str]) -> None:
        """Follow exactly ``job_ids``; a job not followed yet re-opens the stream."""
        with self._lock:
            grew = not job_ids <= self._ids
            self._ids = set(job_ids)
            if grew:
                self._changed.set()
                if self._call is not None:
                    self._call.cancel()

    def halt(self) -> None:
        with self._lock:
            if self._call is not None:
                self._call.cancel()
        self._changed.set()

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            with self._lock:
                ids = sorted(self._ids)
                self._changed.clear()
            if not ids:
                self._changed.wait(1.0)
                continue
            try:
                call = self.connection.watch(ids)
                with self._lock:
                    self._call = call
                    if self._changed.is_set():
                        call.cancel()
                for result in call:
                    failures = 0
                    self.out.put(result)
                    self.wake.set()
                self.stop.wait(0.5)  # the server ended the stream (all followed jobs finished): re-open later
            except grpc.RpcError as exc:
                if self.stop.is_set() or self._changed.is_set():
                    continue
                failures += 1
                log.debug("result stream broke [%s]; re-opening", CallError.of(exc).tag)
                self.stop.wait(self.backoff.delay(failures))
            except ValueError:  # the channel was closed under us by a reset: open a fresh one
                self.stop.wait(0.2)
            finally:
                with self._lock:
                    self._call = None


class Agent:
    """One ``watch`` run over a spool; :meth:`run` returns the exit status: 0 when stopped (signal) or idle
    without problems, 1 when idle after a file was refused or a result command gave up in this run."""

    def __init__(self, config: WatchConfig, connection: Connection, spool: Spool) -> None:
        self.config = config
        self.connection = connection
        self.spool = spool
        self.scanner = FolderScanner(config.folder, config.patterns, config.recursive, config.settle_s,
                                     exclude=(spool.dir,))
        self.gate = _Gate(config.backoff, connection.options.target)
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.results: queue.Queue[ingest_pb2.JobResult] = queue.Queue()
        self.stream = _ResultStream(connection, self.results, self.wake, self.stopping, config.backoff)
        self.problems = 0  # files refused and result commands given up on in this run
        self.next_upkeep = 0.0  # monotonic time of the next retention pass: at once, then daily

    def stop(self) -> None:
        """Finish the current step and return from :meth:`run` (signal handlers call this)."""
        self.stopping.set()
        self.wake.set()

    def run(self) -> int:
        counts = self.spool.counts()
        log.info("watching %s → %s (spool %s: %d pending, %d awaiting results, %d results to hand on, %d done)",
                 self.config.folder, self.connection.options.target, self.spool.dir, counts["pending"],
                 counts["sent"], counts["received"], counts["done"])
        self.stream.start()
        try:
            while not self.stopping.is_set():
                self.upkeep()
                self.step()
                if self.config.exit_when_idle and self.idle():
                    log.info("nothing left to do: exiting (--exit-when-idle; %d problem(s))", self.problems)
                    return 1 if self.problems else 0
                self.wake.wait(self.config.scan_interval_s)
                self.wake.clear()
            return 0  # stopped by a signal: a service manager should not see a failure
        finally:
            self.stopping.set()
            self.stream.halt()
            self.stream.join(5)
            self.connection.close()

    def step(self) -> None:
        """One pass: take new files in, upload what is due, collect results, run the result command."""
        self.take_in(self.scanner.scan())
        self.upload()
        self.collect()
        self.hand_on()
        self.stream.follow({e.job_id for e in self.spool.in_state("sent") if e.job_id})

    def upkeep(self) -> None:
        """The retention pass, when it is due (never fatal: a spool that cannot be cleaned still works)."""
        if self.config.keep_days <= 0 or time.monotonic() < self.next_upkeep:
            return
        self.next_upkeep = time.monotonic() + DAY_S
        try:
            gone = self.spool.expire(self.config.keep_days * DAY_S)
        except (OSError, sqlite3.Error) as exc:
            log.warning("retention pass failed (%s); next try in a day", exc)
            return
        if gone.rows or gone.files:
            log.info("retention: removed %d handed-on file(s) older than %g days from the spool (%d file(s) "
                     "deleted)", gone.rows, self.config.keep_days, gone.files)

    def idle(self) -> bool:
        c = self.spool.counts()
        return self.scanner.settling == 0 and c["pending"] == c["sent"] == c["received"] == 0

    # ---- the steps ------------------------------------------------------------------------------------

    def take_in(self, found: list[Found]) -> None:
        for f in found:
            path = str(f.path.resolve())
            if self.spool.seen(path, f.size, f.mtime_ns):
                continue
            try:
                data = f.path.read_bytes()
            except OSError as exc:
                log.warning("cannot read %s (%s); will look again when it changes", f.path.name, exc)
                continue
            digest = hashlib.sha256(data).hexdigest()
            if self.spool.add(path, data, digest, f.mtime_ns):
                log.info("queued %s (%d bytes, sha256 %s…)", f.path.name, len(data), digest[:12])
            else:
                log.info("skipped %s: the same content was queued before (sha256 %s…)", f.path.name, digest[:12])

    def upload(self) -> None:
        for entry in self.spool.due("pending", time.time()):
            if self.stopping.is_set() or not self.gate.open():
                return
            try:
                data = self.spool.blob(entry)
            except OSError as exc:
                self._refused(entry, CallError("DATA_LOSS", "spool_blob_missing", str(exc), Outcome.PERMANENT))
                continue
            t0 = time.monotonic()
            try:
                reply = self.connection.submit(data, filename=entry.name, key=entry.sha256,
                                               device=self.config.device)
            except grpc.RpcError as exc:
                if not self._call_failed(entry, CallError.of(exc), upload=True):
                    return
                continue
            self.gate.succeeded()
            self.spool.sent(entry.sha256, reply.job_id, time.time() + self.config.poll_interval_s)
            log.info("uploaded %s → job %s (%s) in %.0f ms", entry.name, reply.job_id,
                     "new" if reply.created else "existing job for this content", (time.monotonic() - t0) * 1e3)

    def collect(self) -> None:
        while True:
            try:
                self.accept(self.results.get_nowait())
            except queue.Empty:
                break
        for entry in self.spool.due("sent", time.time()):
            if self.stopping.is_set() or not self.gate.open() or entry.job_id is None:
                return
            try:
                result = self.connection.get_result(entry.job_id)
            except grpc.RpcError as exc:
                if not self._call_failed(entry, CallError.of(exc), upload=False):
                    return
                continue
            self.gate.succeeded()
            if result.status in TERMINAL:
                self.accept(result)
            else:
                self.spool.poll_later(entry.sha256, time.time() + self.config.poll_interval_s)

    def accept(self, result: ingest_pb2.JobResult) -> None:
        """Store a finished job's result (once: only a row still ``sent`` takes it)."""
        entry = self.spool.by_job(result.job_id)
        if entry is None or entry.state != "sent" or result.status not in TERMINAL:
            return
        doc = result_document(result, source=entry.path, sha256=entry.sha256)
        path = self.spool.results / f"{Path(entry.name).stem}.{result.job_id}.json"
        write_result(path, dumps(doc))
        self.spool.received(entry.sha256, str(path))
        invalid = sum(1 for f in result.fields if not f.valid)
        log.info("result of %s: job %s %s (%s%s, %d fields, %d invalid)%s", entry.name, result.job_id,
                 result.status, result.mode or "?", f" {result.template}" if result.template else "",
                 len(result.fields), invalid, f" [{result.error_code}]" if result.error_code else "")
        if self.config.hook is None:
            self.spool.done(entry.sha256)

    def hand_on(self) -> None:
        for entry in self.spool.due("received", time.time()):
            if self.stopping.is_set():
                return
            if self.config.hook is None:
                self.spool.done(entry.sha256)
                continue
            path = Path(entry.result_path or "")
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                outcome = self.config.hook.run(path, doc)
                code, message, ok = outcome.code, outcome.message, outcome.ok
            except (OSError, ValueError) as exc:
                code, message, ok = "result_unreadable", f"{path}: {exc}", False
            if ok:
                self.spool.done(entry.sha256)
                log.info("result command done for %s (job %s)", entry.name, entry.job_id)
                continue
            next_try = time.time() + self.config.hook_backoff.delay(entry.hook_attempts + 1)
            if self.spool.hook_retry(entry.sha256, code, message, next_try, self.config.hook_retries):
                log.warning("result command failed for %s (job %s) [%s]: %s; try %d of %d in %.0f s", entry.name,
                            entry.job_id, code, message, entry.hook_attempts + 1, self.config.hook_retries,
                            next_try - time.time())
            else:
                self.problems += 1
                log.error("result command failed %d times for %s (job %s) [%s]: %s; giving up until the next "
                          "start (result kept in %s)", self.config.hook_retries, entry.name, entry.job_id, code,
                          message, path)

    # ---- failures -------------------------------------------------------------------------------------

    def _call_failed(self, entry: Entry, err: CallError, *, upload: bool) -> bool:
        """Handle a failed call about ``entry``; True when the next file may be tried at once."""
        if err.outcome is Outcome.PERMANENT:
            self.gate.succeeded()  # the server answered
            self._refused(entry, err)
            return True
        if err.status in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
            self.connection.reset()
        counts = self.spool.counts()
        waiting = counts["pending"] + counts["sent"]
        next_try = self.gate.failed(err, waiting)
        if upload:
            self.spool.retry_upload(entry.sha256, err.code, err.message, next_try)
        else:
            self.spool.poll_later(entry.sha256, next_try)
        return False

    def _refused(self, entry: Entry, err: CallError) -> None:
        self.problems += 1
        self.spool.failed(entry.sha256, err.code, err.message)
        what = "upload of" if entry.state == "pending" else "job of"
        log.warning("%s %s refused for good [%s]: %s — not retried", what, entry.name, err.tag, err.message)
