"""Behind a reverse proxy named in ``--trusted-proxies``, the key-guessing throttle counts the client that
``X-Forwarded-For`` names, not the proxy (the opposite case, the header from anyone else, is in
``test_access``: ignored)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from testsupport.databases import create_keys
from testsupport.server import Server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("proxy"), "--trusted-proxies", "127.0.0.1")
    srv.keys = create_keys(srv.db_url, {"clinic": {"scopes": "read"}})  # type: ignore[attr-defined]
    srv.start()
    yield srv
    srv.stop()


def _guess(server: Server, client_address: str, i: int) -> int:
    headers = {"Authorization": f"Bearer ocp_0123456789ab_{i:043d}", "X-Forwarded-For": client_address}
    return httpx.get(server.url + "/v1/jobs", headers=headers, timeout=30).status_code


def test_the_forwarded_client_is_throttled_not_the_proxy(server: Server) -> None:
    # 45 guesses from 45 clients through the proxy: none of them reaches 30 failures, so none is throttled
    # (counted against the proxy's own address, the last ones would be refused: 30 failures a minute plus
    # one refilled every 2 s, and 45 scrypt checks take far less than 30 s).
    start = time.monotonic()
    assert {_guess(server, f"203.0.113.{i}", i) for i in range(45)} == {401}
    assert time.monotonic() - start < 30
    # One client keeps guessing through the proxy: after its 30 failures it is refused, before any scrypt.
    start, answers = time.monotonic(), []
    while 429 not in answers and len(answers) < 80:
        answers.append(_guess(server, "198.51.100.7", len(answers)))
    assert answers[-1] == 429 and 30 <= answers.count(401) <= 30 + 1 + int((time.monotonic() - start) / 2), answers
    assert _guess(server, "198.51.100.8", 99) == 401  # its neighbour is not refused
    key = server.keys["clinic"]  # type: ignore[attr-defined]
    assert httpx.get(server.url + "/v1/jobs", headers={"Authorization": f"Bearer {key}"}).status_code == 200
