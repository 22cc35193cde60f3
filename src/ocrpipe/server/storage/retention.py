"""Deleting a job's data at once: its upload on disk, its row and every row that refers to it.

Rows that refer to a job are found from the live schema (foreign keys to ``ocr_jobs.id`` and columns
named ``job_id``), so tables added by other areas (e.g. template field results) are removed with the job
without this module knowing them. The audit log is kept: it records the deletion itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Column, Engine, String, Table, delete, inspect, select
from sqlalchemy import MetaData as _MetaData
from sqlalchemy.orm import Session

from ocrpipe.server.storage.models import Job

JOBS_TABLE = "ocr_jobs"
KEEP_TABLES = frozenset({"audit_log", "alembic_version", JOBS_TABLE})


def dependent_columns(engine: Engine) -> list[tuple[str, str]]:
    """``(table, column)`` pairs whose values are job ids: FKs to ``ocr_jobs.id`` and ``job_id`` columns."""
    insp = inspect(engine)
    found: set[tuple[str, str]] = set()
    for table in insp.get_table_names():
        if table in KEEP_TABLES:
            continue
        for fk in insp.get_foreign_keys(table):
            if fk.get("referred_table") == JOBS_TABLE and fk.get("referred_columns") == ["id"]:
                found.update((table, c) for c in fk["constrained_columns"])
        found.update((table, c["name"]) for c in insp.get_columns(table) if c["name"] == "job_id")
    return sorted(found)


def purge_job_rows(session: Session, job_ids: Sequence[str]) -> dict[str, int]:
    """Delete the job rows and every dependent row in ``session``'s transaction; counts per table."""
    if not job_ids:
        return {}
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    counts: dict[str, int] = {}
    meta = _MetaData()
    for table, column in dependent_columns(engine):
        t = Table(table, meta, Column(column, String), extend_existing=True)
        res = session.execute(delete(t).where(t.c[column].in_(list(job_ids))))
        counts[table] = counts.get(table, 0) + int(getattr(res, "rowcount", 0) or 0)
    res = session.execute(delete(Job).where(Job.id.in_(list(job_ids))))
    counts[JOBS_TABLE] = int(getattr(res, "rowcount", 0) or 0)
    return counts


def remove_upload(path: str | None) -> bool:
    """Remove a stored upload (and a leftover temp file); True when a file was removed."""
    if not path:
        return False
    p = Path(path)
    with contextlib.suppress(FileNotFoundError):
        p.with_suffix(".tmp").unlink()
    try:
        p.unlink()
    except FileNotFoundError:
        return False
    return True


def scrub_sqlite(engine: Engine) -> None:
    """After deleting patient data on SQLite: fold the write-ahead log into the database and truncate it,
    so no old copy of the deleted rows stays in the ``-wal`` file (``secure_delete`` zeroes the pages).
    Best effort: a concurrent reader can keep a few frames until the next checkpoint."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def delete_job(sessions: object, job_id: str, tenant: str | None) -> dict[str, int] | None:
    """Delete one job (when visible to ``tenant``): rows in one transaction, then the upload file.

    Returns the deleted row counts per table (plus ``uploads``), or None when there is no such job.
    """
    with sessions.begin() as s:  # type: ignore[attr-defined]
        q = select(Job.id, Job.upload_path, Job.tenant).where(Job.id == job_id)
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()
        row = s.execute(q).first()
        if row is None or (tenant is not None and row.tenant != tenant):
            return None
        counts = purge_job_rows(s, [job_id])
        engine = s.get_bind()
    counts["uploads"] = int(remove_upload(row.upload_path))
    scrub_sqlite(engine if isinstance(engine, Engine) else engine.engine)
    return counts
