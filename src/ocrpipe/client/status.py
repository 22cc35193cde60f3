"""``ocrpipe client status``: what a spool holds — files per state, and every file not yet handed on or
refused, with its error code — for the person looking after the clinic PC.

It reads the spool database read-only and takes no lock, so it works while ``client watch`` runs on the
same spool (SQLite's WAL mode lets a reader see the last committed state) and never changes anything.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from ocrpipe.client.errors import ClientError
from ocrpipe.client.spool import STATES

PROBLEMS = ("failed", "hook_failed")
"""States a person has to look at: refused by the server; result command gave up (retried at the next start)."""
WAITING = ("pending", "sent", "received")


def read_status(directory: Path) -> dict[str, Any]:
    """Counts per state and the files not done (refused ones first, then waiting ones, oldest first)."""
    db_file = directory / "spool.sqlite3"
    if not db_file.is_file():
        raise ClientError("spool_missing", f"{directory} holds no spool (no spool.sqlite3); give --spool")
    try:
        db = sqlite3.connect(db_file.resolve().as_uri() + "?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise ClientError("spool_unreadable", f"cannot open {db_file}: {exc}") from exc
    try:
        counts = dict.fromkeys(STATES, 0)
        for state, n in db.execute("SELECT state, COUNT(*) FROM files GROUP BY state"):
            counts[state] = n
        order = {s: i for i, s in enumerate(PROBLEMS + WAITING)}
        rows = db.execute("SELECT state, path, size, job_id, attempts, hook_attempts, error_code, error_message, "
                          "created, updated, next_try FROM files WHERE state != 'done' ORDER BY created").fetchall()
    except sqlite3.Error as exc:
        raise ClientError("spool_unreadable", f"cannot read {db_file}: {exc}") from exc
    finally:
        db.close()
    files = [{"state": r[0], "path": r[1], "size": r[2], "job_id": r[3], "attempts": r[4], "hook_attempts": r[5],
              "error_code": r[6], "error_message": r[7], "queued_at": _iso(r[8]), "updated_at": _iso(r[9]),
              "next_try_at": _iso(r[10]) if r[0] in WAITING and r[10] else None}
             for r in sorted(rows, key=lambda r: order.get(r[0], len(order)))]
    return {"spool": str(directory.resolve()), "counts": counts, "files": files}


def render(status: dict[str, Any], limit: int = 100) -> str:
    """The human-readable form: one line of counts, then one line per file (at most ``limit``)."""
    counts = status["counts"]
    lines = [f"spool {status['spool']}", ", ".join(f"{s} {counts[s]}" for s in counts)]
    files = status["files"]
    for f in files[:limit]:
        line = f"{f['state']:<11} {f['path']}"
        if f["job_id"]:
            line += f"  job {f['job_id']}"
        tries = f["hook_attempts"] if f["state"] in ("received", "hook_failed") else f["attempts"]
        if tries:
            line += f"  {tries} tr{'y' if tries == 1 else 'ies'}"
        if f["error_code"]:
            line += f"  [{f['error_code']}] {f['error_message'] or ''}".rstrip()
        if f["next_try_at"]:
            line += f"  next {f['next_try_at']}"
        lines.append(line)
    if len(files) > limit:
        lines.append(f"… and {len(files) - limit} more (--json lists all)")
    if not files:
        lines.append("nothing waiting, nothing refused")
    return "\n".join(lines) + "\n"


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds") if ts else None
