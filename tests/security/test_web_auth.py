"""The web page on a server that requires API keys, in headless Chromium: the page asks for the key once,
sends it with every API call (also for the page image), and shows the refusal when none is given."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testsupport.databases import create_keys
from testsupport.images import text_page
from testsupport.server import Server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("webauth")
    srv = Server(data, "--max-wait-ms", "5")
    srv.key = create_keys(srv.db_url, {"desk": {"scopes": "submit,read"}})["desk"]  # type: ignore[attr-defined]
    srv.start()
    yield srv
    srv.stop()


def _answer_with_the_key(page: Any, server: Server) -> list[str]:
    """Answer every prompt of ``page`` with the server's key; the prompts' messages, as they come."""
    prompts: list[str] = []

    def answer(dialog: Any) -> None:
        prompts.append(dialog.message)
        dialog.accept(server.key)  # type: ignore[attr-defined]

    page.on("dialog", answer)
    return prompts


def test_the_page_asks_for_the_key_and_uses_it(server: Server, browser: Any, tmp_path: Path) -> None:
    image = tmp_path / "page.png"
    image.write_bytes(text_page(["검사 결과 2026"]))
    page = browser.new_page()
    prompts = _answer_with_the_key(page, server)
    page.goto(server.url + "/")
    page.set_input_files("#file-input", str(image))
    page.click("#submit-btn")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('done')", timeout=120_000)
    assert len(prompts) == 1 and "API key" in prompts[0]
    page.wait_for_function("() => document.querySelector('#canvas').width === 1000", timeout=30_000)  # image + key
    assert "error" not in (page.get_attribute("#status", "class") or "")
    page.close()


def test_requests_refused_together_ask_for_the_key_once(server: Server, browser: Any) -> None:
    """Several calls sent before the key was given all come back 401: one prompt, all retried with it."""
    page = browser.new_context().new_page()  # a fresh tab: no key stored
    prompts = _answer_with_the_key(page, server)
    page.goto(server.url + "/")
    page.wait_for_function("() => sessionStorage.getItem('ocrpipe-key') !== null", timeout=30_000)
    page.evaluate("() => sessionStorage.removeItem('ocrpipe-key')")
    prompts.clear()
    got = page.evaluate("() => Promise.all([1, 2, 3].map((n) => api(`/v1/jobs?limit=${n}`)))")
    assert len(prompts) == 1 and len(got) == 3
    page.close()


def test_without_a_key_the_page_shows_the_refusal(server: Server, browser: Any, tmp_path: Path) -> None:
    image = tmp_path / "page.png"
    image.write_bytes(text_page(["x"]))
    page = browser.new_context().new_page()  # a fresh tab: no key stored
    page.on("dialog", lambda dialog: dialog.dismiss())
    page.goto(server.url + "/")
    page.set_input_files("#file-input", str(image))
    page.click("#submit-btn")
    page.wait_for_selector("#status.error")
    assert "unauthorized" in page.inner_text("#status")
    page.close()
