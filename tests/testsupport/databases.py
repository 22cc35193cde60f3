"""Databases for the tests: the SQLite file a server keeps in its data folder, a throw-away PostgreSQL
database on the local server (the test is skipped when that server is not reachable), and API keys written
into a server's database before it starts, as ``ocrpipe keys create`` would."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

PG_ADMIN_URL = os.environ.get("OCRPIPE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def sqlite_url(data_dir: Path) -> str:
    """The database of a server started with ``--data-dir DATA_DIR`` and no ``--database-url``."""
    return f"sqlite:///{(data_dir / 'ocrpipe.db').resolve()}"


def pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001 - any failure means: not reachable
        return False


@contextmanager
def pg_database() -> Iterator[str]:
    """The SQLAlchemy URL of a fresh PostgreSQL database, dropped afterwards (even while a server still
    holds connections); skips the test when the local PostgreSQL server is not reachable."""
    if not pg_available():
        pytest.skip("local PostgreSQL is not reachable")
    import psycopg
    from sqlalchemy import make_url

    name = f"ocrpipe_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_keys(db_url: str, specs: Mapping[str, Mapping[str, Any]], revoke: Iterable[str] = ()) -> dict[str, str]:
    """Keys ``name -> {scopes, tenant?, rate_limit?}`` in the database at ``db_url`` (migrated first), then
    the keys named in ``revoke`` revoked again; returns name -> secret."""
    from ocrpipe.server.security.keys import KeyStore
    from ocrpipe.server.storage.db import get_engine, migrate

    engine = get_engine(db_url)
    try:
        migrate(engine)
        store = KeyStore(engine)
        out = {name: store.create(name, spec["scopes"], spec.get("tenant"), spec.get("rate_limit"))[1]
               for name, spec in specs.items()}
        for name in revoke:
            store.revoke(name)
        return out
    finally:
        engine.dispose()
