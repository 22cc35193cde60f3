"""Upkeep of the upload client's spool with tiny fixtures: retention (``--keep-days``: handed-on files leave
the spool with their result JSON and copies, nothing not yet handed on ever does, an expired printout is not
uploaded again) and ``ocrpipe client status`` (counts, refused and waiting files with their codes, read-only
while a client holds the spool)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from pathlib import Path

import pytest

from ocrpipe.cli import main
from ocrpipe.client.agent import Agent, WatchConfig
from ocrpipe.client.connection import Connection, ServerOptions
from ocrpipe.client.spool import DAY_S, Expired, Spool, write_result
from ocrpipe.client.status import read_status, render

OLD = time.time() - 40 * DAY_S


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _through(spool: Spool, path: str, state: str) -> str:
    """A spool row for ``path`` walked to ``state`` the way the agent walks it; returns its sha256."""
    name = os.path.basename(path)
    digest = _digest(name)
    assert spool.add(path, name.encode(), digest, 1)
    if state == "failed":
        spool.failed(digest, "unsupported_media_type", "not a supported image")
    if state in ("pending", "failed"):
        return digest
    spool.sent(digest, f"job-{name}", 0)
    if state == "sent":
        return digest
    result = spool.results / f"{name}.job-{name}.json"
    write_result(result, json.dumps({"job_id": f"job-{name}"}))
    spool.received(digest, str(result))
    if state == "hook_failed":
        result.with_suffix(".stderr.txt").write_text("exit 3")
        spool.hook_retry(digest, "exit_status", "load_exam exited with 3", 0, max_attempts=1)
    elif state == "done":
        result.with_suffix(".stderr.txt").write_text("an earlier failed try")
        spool.done(digest)
    return digest


def _age(spool: Spool, digest: str, when: float = OLD) -> None:
    spool.db.execute("UPDATE files SET updated=?, created=? WHERE sha256=?", (when, when, digest))
    for folder in (spool.results, spool.blobs):
        for f in folder.iterdir():
            os.utime(f, (when, when))


# ---- retention -----------------------------------------------------------------------------------------


def test_retention_removes_only_old_handed_on_files(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    still_there = tmp_path / "in" / "done-old-present.png"
    still_there.parent.mkdir()
    still_there.write_bytes(b"x")
    rows = {name: _through(spool, path, state) for name, path, state in [
        ("done_old", str(still_there), "done"), ("done_old_gone", "/in/done-old-gone.png", "done"),
        ("done_young", "/in/done-young.png", "done"), ("pending", "/in/pending.png", "pending"),
        ("sent", "/in/sent.png", "sent"), ("received", "/in/received.png", "received"),
        ("hook_failed", "/in/hook-failed.png", "hook_failed"), ("failed", "/in/failed.png", "failed")]}
    (spool.blobs / rows["done_old"]).write_bytes(b"a copy left behind")
    (spool.results / "orphan.json").write_text("{}")  # a crash between writing a result and its row
    (spool.blobs / "0123.tmp").write_bytes(b"half")
    for name, digest in rows.items():
        if name != "done_young":
            _age(spool, digest)  # everything old (files too), except one handed-on file
    (spool.results / "young-orphan.json").write_text("{}")
    results = {name: Path(spool.get(rows[name]).result_path or "")  # type: ignore[union-attr]
               for name in ("done_old", "done_old_gone", "done_young", "received", "hook_failed")}

    assert spool.expire(30 * DAY_S) == Expired(rows=2, files=7)  # 2 × (JSON, stderr) + 1 copy + 2 orphans
    assert spool.counts() == {"pending": 1, "sent": 1, "received": 1, "done": 1, "failed": 1, "hook_failed": 1}
    for name in ("done_old", "done_old_gone"):
        assert spool.get(rows[name]) is None
        assert not results[name].exists() and not results[name].with_suffix(".stderr.txt").exists()
    assert not (spool.blobs / rows["done_old"]).exists()
    for name in ("done_young", "received", "hook_failed"):  # handed on too recently, or not handed on yet
        assert results[name].exists()
    assert results["hook_failed"].with_suffix(".stderr.txt").exists()
    assert (spool.blobs / rows["pending"]).exists() and (spool.blobs / rows["sent"]).exists()
    assert sorted(p.name for p in spool.results.iterdir() if "orphan" in p.name) == ["young-orphan.json"]
    assert not (spool.blobs / "0123.tmp").exists()

    # A file still in the folder keeps its "seen" row (not even read again); a gone one's row goes.
    assert spool.seen(str(still_there), len(still_there.name), 1)
    assert not spool.seen("/in/done-old-gone.png", len(b"done-old-gone.png"), 1)
    # The same printout turning up again is known: not uploaded a second time.
    assert not spool.add("/in/renamed.png", b"done-old-gone.png", rows["done_old_gone"], 7)
    assert spool.counts()["pending"] == 1
    spool.close()

    again = Spool(tmp_path / "spool")
    assert again.expire(30 * DAY_S) == Expired()
    assert again.counts()["hook_failed"] == 0 and again.counts()["received"] == 2  # retried, never expired
    again.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_watch_loop_expires_at_start_up_then_daily_and_keep_days_0_keeps_all(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    spool = Spool(tmp_path / "spool")
    first = _through(spool, "/in/a.png", "done")
    _age(spool, first)
    connection = Connection(ServerOptions(f"127.0.0.1:{_closed_port()}", insecure=True, timeout_s=2))
    caplog.set_level(logging.INFO, "ocrpipe.client")
    agent = Agent(WatchConfig(folder=folder, settle_s=0.0, keep_days=30, exit_when_idle=True), connection, spool)
    assert agent.run() == 0
    assert spool.get(first) is None
    assert any("retention: removed 1 handed-on file(s) older than 30 days" in r.message for r in caplog.records)

    second = _through(spool, "/in/b.png", "done")
    _age(spool, second)
    agent.upkeep()  # the next pass is a day away
    assert spool.get(second) is not None
    agent.next_upkeep = time.monotonic()
    agent.upkeep()
    assert spool.get(second) is None

    third = _through(spool, "/in/c.png", "done")
    _age(spool, third, time.time() - 5000 * DAY_S)
    Agent(WatchConfig(folder=folder, keep_days=0), connection, spool).upkeep()
    assert spool.get(third) is not None  # 0 keeps everything
    spool.close()


def test_keep_days_must_be_a_number_of_days(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("-1", "nan", "inf"):
        assert main(["client", "watch", str(tmp_path), "--server", "127.0.0.1:1", "--insecure",
                     "--spool", str(tmp_path / "spool"), "--keep-days", bad]) == 2
        assert "[bad_option]: --keep-days" in capsys.readouterr().err


# ---- status --------------------------------------------------------------------------------------------


def _spool_for_status(directory: Path) -> tuple[Spool, dict[str, str]]:
    spool = Spool(directory)
    rows = {state: _through(spool, f"/in/{state}.png", state)
            for state in ("done", "sent", "received", "failed", "hook_failed", "pending")}
    spool.retry_upload(rows["pending"], "unavailable", "failed to connect to all addresses", time.time() + 60)
    return spool, rows


def test_status_lists_counts_and_every_file_not_handed_on_while_the_client_holds_the_spool(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spool, _ = _spool_for_status(tmp_path / "spool")  # stays open: a running `client watch` holds the lock
    status = read_status(tmp_path / "spool")
    assert status["counts"] == {"pending": 1, "sent": 1, "received": 1, "done": 1, "failed": 1, "hook_failed": 1}
    assert [(f["state"], Path(f["path"]).name, f["error_code"]) for f in status["files"]] == [
        ("failed", "failed.png", "unsupported_media_type"), ("hook_failed", "hook_failed.png", "exit_status"),
        ("pending", "pending.png", "unavailable"), ("sent", "sent.png", None), ("received", "received.png", None)]
    pending = status["files"][2]
    assert pending["attempts"] == 1 and pending["next_try_at"] and pending["job_id"] is None

    assert main(["client", "status", "--spool", str(tmp_path / "spool"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == status
    assert main(["client", "status", "--spool", str(tmp_path / "spool")]) == 0
    text = capsys.readouterr().out
    assert "pending 1, sent 1, received 1, done 1, failed 1, hook_failed 1" in text
    assert "/in/failed.png" in text and "[unsupported_media_type] not a supported image" in text
    assert "[unavailable] failed to connect to all addresses" in text and "1 try" in text
    assert "/in/done.png" not in text  # handed on: nothing to look at
    assert spool.counts()["hook_failed"] == 1  # read-only: nothing was reset or changed
    spool.close()


def test_status_text_is_bounded_and_a_missing_spool_is_a_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spool, _ = _spool_for_status(tmp_path / "spool")
    spool.close()
    text = render(read_status(tmp_path / "spool"), limit=2)
    assert text.count("/in/") == 2 and "… and 3 more (--json lists all)" in text
    assert main(["client", "status", "--spool", str(tmp_path / "nowhere")]) == 2
    assert "error [spool_missing]" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()  # looking does not create a spool
