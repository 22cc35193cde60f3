"""The REST transport: routes by resource (:mod:`.ocr`, :mod:`.jobs`, :mod:`.admin`, :mod:`.system`,
:mod:`.templates`), their
dependencies (:mod:`.deps`), request schemas and the web page."""

from __future__ import annotations

from fastapi import FastAPI


def include_routes(app: FastAPI) -> None:
    """Add every REST route to ``app``."""
    from ocrpipe.server.http import admin, jobs, ocr, system, templates

    for module in (ocr, jobs, system, admin, templates):
        app.include_router(module.router)
    app.include_router(templates.editor)
