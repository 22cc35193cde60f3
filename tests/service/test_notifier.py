"""The webhook notifier against a real local HTTP server."""

from __future__ import annotations

import time

from ocrpipe.server.notifier import Notifier

from .conftest import WebhookReceiver


def test_alerts_are_rate_limited_per_failure_class(webhook: WebhookReceiver) -> None:
    now = [1000.0]
    n = Notifier(webhook.url, alert_interval_s=60, clock=lambda: now[0])
    try:
        assert n.alert("decode/corrupt_image", "job a failed")
        assert not n.alert("decode/corrupt_image", "job b failed")   # same class, within the interval
        assert not n.alert("decode/corrupt_image", "job c failed")
        assert n.alert("detect/engine_failure", "job d failed")      # another class goes out
        now[0] += 61
        assert n.alert("decode/corrupt_image", "job e failed")       # interval over
        msgs = webhook.wait_for(3)
    finally:
        n.close()
    texts = [m["text"] for m in msgs]
    assert len(texts) == 3
    assert "decode/corrupt_image" in texts[0] and "job a" in texts[0]
    assert "detect/engine_failure" in texts[1]
    assert "job e" in texts[2] and "2 more" in texts[2]


def test_summary_message(webhook: WebhookReceiver) -> None:
    n = Notifier(webhook.url)
    try:
        n.summary({"jobs": 10, "succeeded": 9, "failed": 1, "success_rate": 0.9, "p50_ms": 812.4,
                   "p95_ms": 2400.0})
        msgs = webhook.wait_for(1)
    finally:
        n.close()
    text = msgs[0]["text"]
    assert "10 jobs" in text and "90.0%" in text and "p50 812 ms" in text and "p95 2400 ms" in text


def test_unreachable_webhook_does_not_raise() -> None:
    n = Notifier("http://127.0.0.1:9/hook", timeout_s=0.5, retry_backoff_s=0.01)
    start = time.monotonic()
    assert n.alert("x/y", "z")  # queued; delivery fails in the background
    assert time.monotonic() - start < 0.5
    n.close(timeout=10)
    assert n.sent == 0


def test_disabled_without_url() -> None:
    n = Notifier(None)
    assert not n.enabled and not n.alert("a/b", "c") and not n.summary({})
