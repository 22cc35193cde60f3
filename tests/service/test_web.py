"""The web page in a real browser (headless Debian Chromium driven by Playwright): upload, watch the
job, see boxes and text over the page, and the list of recent jobs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from testsupport.server import Server

from .conftest import SAMPLE

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("web")).start()
    yield srv
    srv.stop()


def test_upload_watch_and_see_the_overlay(server: Server, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/")
    assert page.title() == "ocrpipe"
    page.set_input_files("#file-input", str(SAMPLE))
    page.click("#submit-btn")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('done')", timeout=120_000)
    page.wait_for_selector("#canvas:not([hidden])")
    assert "한국어" in page.inner_text("#text")
    # the canvas shows the page at its size with coloured boxes drawn over it
    size = page.evaluate("[document.querySelector('#canvas').width, document.querySelector('#canvas').height]")
    assert size == [1240, 479]
    coloured = page.evaluate("""() => {
        const c = document.querySelector('#canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) {
          const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
          if ((g > 120 && r < 80 && b < 120) || (r > 200 && g > 60 && g < 140 && b < 60)) n++;
        }
        return n;
    }""")
    assert coloured > 1000  # box outlines (green/orange strokes)
    page.wait_for_selector("#jobs tbody tr .badge.succeeded")
    assert "sample_ko.png" in page.inner_text("#jobs tbody")
    shot = Path(os.environ.get("OCRPIPE_SCREENSHOT_DIR", tmp_path)) / "web_page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert not errors, errors
    page.close()


def test_pdf_upload_pages_through_the_document(server: Server, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    img = Image.open(SAMPLE).convert("RGB")
    pdf = tmp_path / "two pages.pdf"
    img.save(pdf, "PDF", save_all=True, append_images=[img.rotate(0)], resolution=150)
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    page.goto(server.url + "/")
    page.set_input_files("#file-input", str(pdf))
    page.click("#submit-btn")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('done')", timeout=120_000)
    page.wait_for_selector("#pager:not([hidden])")
    assert page.inner_text("#page-label") == "page 1 / 2"
    page.click("#next")
    page.wait_for_function("() => document.querySelector('#page-label').textContent === 'page 2 / 2'")
    assert page.inner_text("#text").count("한국어") == 2
    page.close()


def test_bad_upload_shows_the_error_code(server: Server, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    page = browser.new_page()
    page.goto(server.url + "/")
    page.set_input_files("#file-input", str(bad))
    page.click("#submit-btn")
    page.wait_for_selector("#status.error")
    assert "unsupported_media_type" in page.inner_text("#status")
    page.close()


def _offline_page(browser, server: Server):  # type: ignore[no-untyped-def]
    """A page whose every request to a host other than this machine is aborted (the network unplugged)."""
    from urllib.parse import urlsplit

    page = browser.new_page(viewport={"width": 1300, "height": 900})
    blocked: list[str] = []
    violations: list[str] = []

    def route(r):  # type: ignore[no-untyped-def]
        if urlsplit(r.request.url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    return page, blocked, violations


def test_api_docs_render_with_the_network_unplugged(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    page, blocked, violations = _offline_page(browser, server)
    resp = page.goto(server.url + "/docs")
    assert resp is not None and "nonce-" in resp.headers["content-security-policy"]
    page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "ocrpipe" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-summary-path[data-path='/v1/ocr']", timeout=30_000)
    page.goto(server.url + "/redoc")
    page.wait_for_selector("redoc h1, [role=navigation]", timeout=30_000)
    assert "ocrpipe" in page.inner_text("body")
    # Nothing left the machine; no script was refused (ReDoc's footer logo from its CDN is an image the
    # policy refuses before any request is made).
    assert blocked == [] and [v for v in violations if "script-src" in v] == []
    page.close()


def test_html_responses_carry_security_headers(server: Server) -> None:
    import httpx

    for path in ("/", "/docs", "/redoc"):
        headers = httpx.get(server.url + path).headers
        assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"].split("script-src")[1].split(";")[0]
    assert httpx.get(server.url + "/healthz").headers["x-content-type-options"] == "nosniff"
