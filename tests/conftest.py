"""Shared fixtures: the real default pipeline (loaded once per session) and generated bad inputs."""

from __future__ import annotations

import io

import pytest


@pytest.fixture(scope="session")
def pipeline():
    from ocrpipe import Pipeline

    return Pipeline.default()


@pytest.fixture(scope="session")
def encrypted_pdf() -> bytes:
    """A one-page PDF protected by a user password (made with pypdf)."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()
