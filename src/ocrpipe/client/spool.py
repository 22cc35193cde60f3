"""The upload client's durable spool: one SQLite file that remembers every printout from the moment it was
found until its result was handed on, so that killing the client (or the server) at any point loses
nothing and sends nothing twice.

A file enters the spool once it is completely written: its bytes are copied to ``blobs/<sha256>`` (so a
device that deletes or overwrites its output cannot take a queued upload away) and a row keyed by the
content's sha256 is committed. The same content under another name or dropped again is the same row, so it
is never uploaded twice. Rows move through::

    pending ──Submit ok──▶ sent ──result──▶ received ──command ok──▶ done
       │                                       └──command failed N times──▶ hook_failed (retried next start)
       └──refused by the server (INVALID_ARGUMENT …)──▶ failed (never retried)

The idempotency key sent with each upload is the sha256, so a resend after a lost reply (the client was
killed between the server's answer and the commit of ``sent``) gets the existing job back. ``next_try``
(wall-clock seconds) is when a row is next due: the next upload attempt, the next result poll or the next
run of the result command. A second client on the same spool is refused (``spool_locked``).

Retention (:meth:`Spool.expire`) removes ``done`` rows with their result JSON and any queued copy once they
are older than the retention window, and nothing else: a row not yet handed on stays whatever its age. The
removed content's sha256 is kept in ``expired`` (no name, no job id), so a printout that turns up again later
is still recognised and not uploaded a second time.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ocrpipe.client.errors import ClientError

STATES = ("pending", "sent", "received", "done", "failed", "hook_failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    sha256 TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    state TEXT NOT NULL,
    job_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    hook_attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL DEFAULT 0,
    error_code TEXT,
    error_message TEXT,
    result_path TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_files_state_next ON files (state, next_try);
CREATE INDEX IF NOT EXISTS ix_files_job ON files (job_id);
CREATE TABLE IF NOT EXISTS seen (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS expired (
    sha256 TEXT PRIMARY KEY,
    removed REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Entry:
    """One spooled printout (a row of ``files``)."""

    sha256: str
    path: str
    size: int
    state: str
    job_id: str | None
    attempts: int
    hook_attempts: int
    next_try: float
    error_code: str | None
    error_message: str | None
    result_path: str | None

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


_COLUMNS = ("sha256, path, size, state, job_id, attempts, hook_attempts, next_try, error_code, error_message, "
            "result_path")
DAY_S = 86400.0


@dataclass(frozen=True)
class Expired:
    """What one retention pass removed."""

    rows: int = 0
    files: int = 0


class Spool:
    """The spool directory: ``spool.sqlite3``, ``blobs/`` (queued bytes) and ``results/`` (result JSON)."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.blobs = self.dir / "blobs"
        self.results = self.dir / "results"
        for d in (self.dir, self.blobs, self.results):
            d.mkdir(parents=True, exist_ok=True)
        self._lock = _exclusive_lock(self.dir / "spool.lock")
        self.db = sqlite3.connect(self.dir / "spool.sqlite3", isolation_level=None, timeout=10)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a committed state survives power loss, not only kill -9
        self.db.execute("PRAGMA secure_delete=ON")  # removed rows (file names) are overwritten, not left behind
        self.db.executescript(_SCHEMA)
        # A command that failed on every try in an earlier run gets a fresh set of tries in this one.
        with self._tx():
            self.db.execute("UPDATE files SET state='received', hook_attempts=0, next_try=0 "
                            "WHERE state='hook_failed'")

    def close(self) -> None:
        """Release the database and the lock (the process exiting does the same)."""
        self.db.close()
        self._lock.close()

    @contextmanager
    def _tx(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ---- finding files --------------------------------------------------------------------------------

    def seen(self, path: str, size: int, mtime_ns: int) -> bool:
        """Whether this path was already taken in with exactly this size and modification time."""
        row = self.db.execute("SELECT 1 FROM seen WHERE path=? AND size=? AND mtime_ns=?",
                              (path, size, mtime_ns)).fetchone()
        return row is not None

    def add(self, path: str, data: bytes, digest: str, mtime_ns: int) -> bool:
        """Take a completely written file in (its bytes go to ``blobs/``); False when its content is known."""
        blob = self.blobs / digest
        known = self.get(digest) is not None or self._expired(digest)
        if not known:
            _write_durably(blob, data)
        now = time.time()
        with self._tx():
            self.db.execute("INSERT OR REPLACE INTO seen (path, size, mtime_ns, sha256) VALUES (?, ?, ?, ?)",
                            (path, len(data), mtime_ns, digest))
            if not known:
                self.db.execute("INSERT OR IGNORE INTO files (sha256, path, size, state, created, updated) "
                                "VALUES (?, ?, ?, 'pending', ?, ?)", (digest, path, len(data), now, now))
        return not known

    def blob(self, entry: Entry) -> bytes:
        """The bytes to upload for ``entry``."""
        return (self.blobs / entry.sha256).read_bytes()

    # ---- reading --------------------------------------------------------------------------------------

    def _rows(self, where: str, args: tuple[object, ...] = ()) -> list[Entry]:
        cur = self.db.execute(f"SELECT {_COLUMNS} FROM files WHERE {where}", args)  # noqa: S608 - fixed SQL
        return [Entry(*row) for row in cur.fetchall()]

    def get(self, digest: str) -> Entry | None:
        rows = self._rows("sha256=?", (digest,))
        return rows[0] if rows else None

    def by_job(self, job_id: str) -> Entry | None:
        rows = self._rows("job_id=? ORDER BY created LIMIT 1", (job_id,))
        return rows[0] if rows else None

    def due(self, state: str, now: float, limit: int = 100) -> list[Entry]:
        """Rows in ``state`` whose ``next_try`` has come, oldest first."""
        return self._rows("state=? AND next_try<=? ORDER BY next_try, created LIMIT ?", (state, now, limit))

    def in_state(self, *states: str) -> list[Entry]:
        marks = ",".join("?" * len(states))
        return self._rows(f"state IN ({marks}) ORDER BY created", states)

    def _expired(self, digest: str) -> bool:
        return self.db.execute("SELECT 1 FROM expired WHERE sha256=?", (digest,)).fetchone() is not None

    def counts(self) -> dict[str, int]:
        """Rows per state (every state present, zeros included)."""
        out = dict.fromkeys(STATES, 0)
        for state, n in self.db.execute("SELECT state, COUNT(*) FROM files GROUP BY state"):
            out[state] = n
        return out

    # ---- state changes --------------------------------------------------------------------------------

    def _set(self, digest: str, sql: str, args: tuple[object, ...]) -> None:
        with self._tx():
            self.db.execute(f"UPDATE files SET {sql}, updated=? WHERE sha256=?",  # noqa: S608 - fixed SQL
                            (*args, time.time(), digest))

    def retry_upload(self, digest: str, code: str, message: str, next_try: float) -> None:
        """An upload attempt failed for a reason that may pass (server down, overloaded)."""
        self._set(digest, "attempts=attempts+1, next_try=?, error_code=?, error_message=?",
                  (next_try, code, message))

    def sent(self, digest: str, job_id: str, next_poll: float) -> None:
        """The server stored the upload as ``job_id``; its result is due from then on."""
        self._set(digest, "state='sent', job_id=?, attempts=attempts+1, next_try=?, error_code=NULL, "
                  "error_message=NULL", (job_id, next_poll))

    def poll_later(self, digest: str, next_poll: float) -> None:
        self._set(digest, "next_try=?", (next_poll,))

    def failed(self, digest: str, code: str, message: str) -> None:
        """Refused for good (not an image, empty, job deleted on the server): never retried."""
        self._set(digest, "state='failed', error_code=?, error_message=?", (code, message))
        self._drop_blob(digest)

    def received(self, digest: str, result_path: str) -> None:
        """The result is written to ``result_path``; the result command is due now."""
        self._set(digest, "state='received', result_path=?, next_try=0", (result_path,))
        self._drop_blob(digest)

    def hook_retry(self, digest: str, code: str, message: str, next_try: float, max_attempts: int) -> bool:
        """The result command failed; True when it gets another try in this run (else ``hook_failed``)."""
        entry = self.get(digest)
        attempts = (entry.hook_attempts if entry else 0) + 1
        state = "received" if attempts < max_attempts else "hook_failed"
        self._set(digest, "state=?, hook_attempts=?, next_try=?, error_code=?, error_message=?",
                  (state, attempts, next_try, code, message))
        return state == "received"

    def done(self, digest: str) -> None:
        self._set(digest, "state='done', hook_attempts=hook_attempts+1, error_code=NULL, error_message=NULL", ())

    def _drop_blob(self, digest: str) -> None:
        (self.blobs / digest).unlink(missing_ok=True)

    # ---- retention ------------------------------------------------------------------------------------

    def expire(self, keep_s: float, now: float | None = None) -> Expired:
        """Remove ``done`` rows handed on more than ``keep_s`` ago, their result JSON (and the command's
        stderr beside it) and any copy of their bytes; then files in ``blobs/`` and ``results/`` older than
        that which no row refers to (left by a crash between writing a file and committing its row). A file
        that cannot be removed keeps its row for the next pass."""
        now = time.time() if now is None else now
        cutoff = now - keep_s
        gone: list[str] = []
        files = 0
        for entry in self._rows("state='done' AND updated<?", (cutoff,)):
            paths = [self.blobs / entry.sha256]
            if entry.result_path:
                paths += [Path(entry.result_path), Path(entry.result_path).with_suffix(".stderr.txt")]
            try:
                files += sum(_remove(p) for p in paths)
            except OSError:
                continue
            gone.append(entry.sha256)
        with self._tx():
            for digest in gone:
                self.db.execute("DELETE FROM files WHERE sha256=?", (digest,))
                self.db.execute("INSERT OR IGNORE INTO expired (sha256, removed) VALUES (?, ?)", (digest, now))
            # A path still in the folder keeps its row, so it is not even read again; the others go.
            stale = [p for (p,) in self.db.execute("SELECT path FROM seen WHERE sha256 IN "
                                                   "(SELECT sha256 FROM expired)") if not os.path.exists(p)]
            self.db.executemany("DELETE FROM seen WHERE path=?", [(p,) for p in stale])
        return Expired(len(gone), files + self._expire_orphans(cutoff))

    def _expire_orphans(self, cutoff: float) -> int:
        # By name, not by path: a spool given as a relative path once and an absolute one later is the same.
        results = {Path(r) for (r,) in self.db.execute("SELECT result_path FROM files WHERE result_path IS NOT NULL")}
        keep = {self.results: {n for r in results for n in (r.name, r.with_suffix(".stderr.txt").name)},
                self.blobs: {d for (d,) in self.db.execute("SELECT sha256 FROM files")}}
        removed = 0
        for folder, names in keep.items():
            for path in folder.iterdir():
                try:
                    if path.name not in names and path.is_file() and path.stat().st_mtime < cutoff:
                        removed += _remove(path)
                except OSError:
                    continue
        return removed


def _remove(path: Path) -> bool:
    """Delete ``path``; False when it was not there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and flushed to disk (a crash leaves the old file or the new)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_result(path: Path, text: str) -> None:
    """Write a result JSON file atomically (a reader never sees half of it)."""
    _write_durably(path, text.encode("utf-8"))


def _exclusive_lock(path: Path) -> sqlite3.Connection:
    """Hold an exclusive SQLite lock on ``path`` for the life of the process: works on every OS and is
    released by the OS when the process dies, even by ``kill -9``."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=0.2)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
    except sqlite3.OperationalError as exc:
        conn.close()
        raise ClientError("spool_locked", f"another client is using the spool {path.parent} ({exc})") from exc
    return conn
