"""The OCR service: REST API, dynamic batching, durable jobs, web page, metrics and alerts.

``create_app(settings)`` builds the FastAPI app; ``ocrpipe serve`` runs it on uvicorn.
"""

from ocrpipe.server.settings import ServiceSettings
from ocrpipe.server.storage.db import Base, get_engine, get_sessionmaker, migrate

__all__ = ["Base", "ServiceSettings", "create_app", "get_engine", "get_sessionmaker", "migrate"]


def create_app(settings: ServiceSettings | None = None):  # type: ignore[no-untyped-def]
    """Build the FastAPI app (lazy import: keeps ``import ocrpipe.server`` light)."""
    from ocrpipe.server.app import create_app as _create

    return _create(settings)
