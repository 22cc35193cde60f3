"""Connection limits uvicorn does not have: a deadline for a request's headers, one for its body, and a cap
on open connections.

uvicorn closes a keep-alive connection that stays idle between requests, but a client that sends its
headers or its body one byte at a time holds the connection (and a file descriptor) for as long as it
likes; 25 such clients stayed connected for 90 s and more. :func:`protocol_class` returns uvicorn's
httptools protocol with three additions:

* the request line and headers must be complete within ``header_timeout_s`` of the connection opening (or
  of the request's first byte on a kept-alive connection);
* the body must be complete within ``body_timeout_s`` of the headers;
* a connection beyond ``max_connections`` open ones is closed at once.

A connection that misses a deadline is closed; the application sees a client disconnect.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)


class _DeadlineProtocol(HttpToolsProtocol):
    header_timeout_s = 10.0
    body_timeout_s = 120.0
    max_connections = 1000

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("connection refused: too many open connections", extra={"limit": self.max_connections})
            transport.close()
            return
        self._arm(self.header_timeout_s, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout_s, "headers")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout_s, "body")

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self, seconds: float, part: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow, part, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self, part: str, seconds: float) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.info("connection closed: request too slow", extra={"part": part, "timeout_s": seconds})
            self.transport.close()


def protocol_class(*, header_timeout_s: float, body_timeout_s: float, max_connections: int) -> type[Any]:
    """uvicorn's ``http`` protocol class with these deadlines and this connection cap."""
    return type("OcrpipeHttpProtocol", (_DeadlineProtocol,), {
        "header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s,
        "max_connections": max_connections})
