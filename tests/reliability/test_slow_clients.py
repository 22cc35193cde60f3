"""Slow clients against the real server: connections that send their headers or their body a byte at a time
are closed at the deadlines, and a normal client is served meanwhile."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from testsupport.server import Server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

HEADER_TIMEOUT_S, BODY_TIMEOUT_S = 2.0, 3.0
MAX_CONNECTIONS = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("slow"), env={"OCRPIPE_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
                                                       "OCRPIPE_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
                                                       "OCRPIPE_MAX_CONNECTIONS": str(MAX_CONNECTIONS)}).start()
    yield srv
    srv.stop()


def _trickle(port: int, head: bytes, payload: bytes, closed_after: list[float], stop: threading.Event) -> None:
    """Send ``head`` at once, then ``payload`` one byte every 0.2 s; record when the server closed the connection."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        for i in range(len(payload)):
            if stop.is_set():
                return
            try:
                sock.sendall(payload[i:i + 1])
                sock.settimeout(0.2)
                if sock.recv(1024) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        closed_after.append(time.monotonic() - start)


def test_slow_headers_and_bodies_are_cut_off(server: Server, tmp_path: Path) -> None:
    headers = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nUser-Agent: " + b"x" * 400 + b"\r\n\r\n"
    body_req = (b"POST /v1/ocr HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                b"Content-Length: 100000\r\n\r\n")
    closed: list[float] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_trickle, args=(server.port, b"", headers, closed, stop), daemon=True)
               for _ in range(13)]
    # The body senders deliver their headers at once, then trickle the body.
    threads += [threading.Thread(target=_trickle, args=(server.port, body_req, b"a" * 600, closed, stop),
                                 daemon=True) for _ in range(12)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    served = httpx.get(server.url + "/healthz", timeout=5)  # a normal client meanwhile
    assert served.status_code == 200
    for t in threads:
        t.join(HEADER_TIMEOUT_S + BODY_TIMEOUT_S + 20)
    stop.set()
    assert len(closed) == 25, f"{25 - len(closed)} slow connections are still open"
    assert max(closed) < HEADER_TIMEOUT_S + BODY_TIMEOUT_S + 5, closed
    assert httpx.get(server.url + "/readyz", timeout=5).status_code == 200
    assert "Traceback" not in server.log()



def _closed(socks: list[socket.socket]) -> list[int]:
    """The indexes of the sockets the server has closed (all checked at once, without waiting)."""
    readable, _, _ = select.select(socks, [], [], 0)
    return sorted(i for i, s in enumerate(socks) if s in readable and s.recv(1) == b"")


def test_connections_beyond_the_cap_are_closed_at_once(server: Server) -> None:
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(MAX_CONNECTIONS + 5)]
    try:
        time.sleep(0.5)  # well before the header deadline: only the cap closes connections now
        closed = _closed(socks)
        assert closed == list(range(MAX_CONNECTIONS, MAX_CONNECTIONS + 5)), closed
    finally:
        for s in socks:
            s.close()
    time.sleep(0.3)
    assert httpx.get(server.url + "/readyz", timeout=5).status_code == 200  # the slots are free again
