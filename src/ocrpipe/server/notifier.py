"""A Slack-compatible webhook notifier: rate-limited alerts per failure class and a periodic summary.

Messages are ``{"text": "..."}`` JSON POSTs (Slack, Mattermost, Rocket.Chat and Discord's ``/slack``
endpoint accept them). Delivery happens on a background thread so a slow webhook never delays a job.
Texts hold job ids, stages, codes and counts — never recognised text.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

log = logging.getLogger(__name__)


class Notifier:
    """Sends alerts (at most one per failure class per ``alert_interval_s``) and summaries."""

    def __init__(self, url: str | None, *, alert_interval_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, timeout_s: float = 5.0,
                 retry_backoff_s: float = 0.5) -> None:
        self.url = url
        self.alert_interval_s = alert_interval_s
        self.clock = clock
        self.timeout_s = timeout_s
        self.retry_backoff_s = retry_backoff_s
        self._last_sent: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()
        self._outbox: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=1000)
        self.sent = 0
        self._thread: threading.Thread | None = None
        if url:
            self._thread = threading.Thread(target=self._deliver_loop, name="notifier", daemon=True)
            self._thread.start()

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def alert(self, failure_class: str, detail: str) -> bool:
        """Queue an alert for ``failure_class`` unless one went out within the interval; True if queued."""
        if not self.url:
            return False
        now = self.clock()
        with self._lock:
            last = self._last_sent.get(failure_class)
            if last is not None and now - last < self.alert_interval_s:
                self._suppressed[failure_class] = self._suppressed.get(failure_class, 0) + 1
                return False
            self._last_sent[failure_class] = now
            suppressed = self._suppressed.pop(failure_class, 0)
        text = f":rotating_light: ocrpipe failure `{failure_class}`: {detail}"
        if suppressed:
            text += f" ({suppressed} more since the last alert of this class)"
        return self._enqueue({"text": text})

    def summary(self, stats: dict[str, Any], period: str = "24h") -> bool:
        """Queue a summary message built from :meth:`JobStore.summary` output."""
        if not self.url:
            return False
        rate = stats.get("success_rate")
        rate_s = f"{rate * 100:.1f}%" if rate is not None else "n/a"
        text = (f":bar_chart: ocrpipe summary (last {period}): {stats.get('jobs', 0)} jobs, "
                f"{stats.get('succeeded', 0)} succeeded, {stats.get('failed', 0)} failed, "
                f"success rate {rate_s}, p50 {_ms(stats.get('p50_ms'))}, p95 {_ms(stats.get('p95_ms'))}")
        return self._enqueue({"text": text})

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout``) and stop."""
        if self._thread is None:
            return
        try:
            self._outbox.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _enqueue(self, payload: dict[str, Any]) -> bool:
        try:
            self._outbox.put_nowait(payload)
            return True
        except queue.Full:
            log.warning("notifier outbox full; dropping a message")
            return False

    def _deliver_loop(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while True:
                payload = self._outbox.get()
                if payload is None:
                    return
                self._post(client, payload)

    def _post(self, client: httpx.Client, payload: dict[str, Any]) -> None:
        assert self.url
        for attempt in range(3):
            try:
                resp = client.post(self.url, json=payload)
                if resp.status_code < 500:
                    if resp.status_code >= 400:
                        log.warning("webhook refused the message", extra={"status": resp.status_code})
                    else:
                        self.sent += 1
                    return
            except httpx.HTTPError as exc:
                log.warning("webhook delivery failed",
                            extra={"error": type(exc).__name__, "attempt": attempt})
            time.sleep(self.retry_backoff_s * (attempt + 1))


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"
