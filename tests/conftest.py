"""Shared fixtures: the real default pipeline (loaded once per session), generated bad inputs, throw-away
certificates, both database back ends and a headless browser for the web page."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testsupport.databases import pg_database

from ocrpipe.server.security.devcerts import CertFiles, write_set

CHROMIUM = os.environ.get("OCRPIPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def pipeline():
    from ocrpipe import Pipeline

    return Pipeline.default()


@pytest.fixture(scope="session")
def encrypted_pdf() -> bytes:
    """A one-page PDF protected by a user password (made with pypdf)."""
    from testsupport.hostile import encrypted_pdf as make

    return make()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertFiles, CertFiles]:
    """A throw-away CA with server (localhost/127.0.0.1) and client certificates, plus a second, untrusted
    CA with its own server and client certificates: ``(good, rogue)`` devcerts sets."""
    d = tmp_path_factory.mktemp("certs")
    return write_set(d), write_set(d, prefix="rogue-")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Both back ends: a SQLite file, and (when reachable) a throw-away PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.db'}"
        return
    with pg_database() as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (``OCRPIPE_CHROMIUM``) driven by Playwright; skips when either is missing."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
