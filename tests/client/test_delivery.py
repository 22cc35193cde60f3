"""The real client against the real server: printouts dropped while the server is down are all delivered
exactly once after it comes back (one job per file, field rows in the database, the result command once
per file); a client killed with SIGKILL mid-way and restarted still delivers each file exactly once; a file
sent before (a lost reply) gets its existing job back; a server killed with SIGKILL while jobs are running
and restarted loses none of them; a failing result command is retried, then kept for the next start; bad
files are refused for good with their code."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from testsupport.server import wait_for

from .conftest import ENV, GrpcServer, WatchClient, drop, sha256

pytestmark = pytest.mark.integration


def _server_and_folder(tmp_path: Path, cleanup: list[Any]) -> tuple[GrpcServer, Path]:
    """The server (not started; stopped at the end) and the empty watched folder."""
    folder = tmp_path / "in"
    folder.mkdir()
    server = GrpcServer(tmp_path)
    cleanup.append(server)
    return server, folder


def _field_rows(server: GrpcServer) -> dict[str, int]:
    return dict(server.query("SELECT job_id, COUNT(*) FROM template_fields GROUP BY job_id"))


def _expected_fields(printout: Path) -> int:
    return len(json.loads(printout.with_suffix(".json").read_text(encoding="utf-8"))["fields"])


def test_files_dropped_while_the_server_is_down_are_delivered_exactly_once(
        tmp_path: Path, printouts: list[Path], cleanup: list[Any]) -> None:
    server, folder = _server_and_folder(tmp_path, cleanup)
    client = WatchClient(tmp_path, folder, server.target, "--insecure")
    cleanup.append(client)
    client.start()

    dropped = [drop(p, folder) for p in printouts[:-1]]
    dropped.append(drop(printouts[-1], folder, slow=True))  # still being written for ~1 s
    drop(printouts[0], folder, name="same-content-again.png")  # the same printout saved twice
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("not an image")

    # Everything is queued, and the client says clearly that the server is down.
    wait_for(lambda: len(client.spool_rows()) == len(dropped) + 2, 30, "all files queued")
    wait_for(lambda: "server unreachable" in client.log(), 30, "the server-down log line")
    assert {s for s in client.states().values()} == {"pending"}
    assert "[UNAVAILABLE]" in client.log()
    time.sleep(3)  # a few more back-off rounds
    assert client.hook_runs() == []

    server.start()
    wait_for(lambda: len(client.hook_runs()) >= len(dropped), 240, "every result handed on", every=0.1)
    delivered_s = time.monotonic() - server.ready_at
    wait_for(lambda: all(s in ("done", "failed") for s in client.states().values()), 30, "a quiet spool")
    time.sleep(2)  # would a duplicate upload or a second result-command run still happen?
    assert client.stop() == 0, client.log()
    print(f"\nall {len(dropped)} results handed on {delivered_s:.1f} s after the server became ready")

    # Exactly one job per file (the client's idempotency key is the content's sha256; the server scopes it).
    jobs = server.query("SELECT id, sha256, status, idempotency_key FROM ocr_jobs")
    assert len(jobs) == len(dropped), jobs
    assert sorted(k for _, k, _, _ in jobs) == sorted(sha256(p) for p in dropped)
    assert len({k for _, _, _, k in jobs if k}) == len(dropped)
    assert {s for _, _, s, _ in jobs} == {"succeeded"}, server.log()
    # Their field rows are in the database.
    rows = _field_rows(server)
    by_key = {k: j for j, k, _, _ in jobs}
    for p in printouts:
        assert rows.get(by_key[sha256(p)]) == _expected_fields(p), p.name

    # The result command ran once per file, with that file's job.
    runs = client.hook_runs()
    assert sorted(j for j, _, _ in runs) == sorted(by_key.values()), runs
    assert {name for _, _, name in runs} == {p.name for p in dropped}
    results = sorted((client.spool / "results").glob("*.json"))
    assert len(results) == len(dropped)
    doc = json.loads(results[0].read_text(encoding="utf-8"))
    assert doc["status"] == "succeeded" and doc["mode"] == "template" and doc["fields"]
    # The result handed on says what the database holds.
    db_fields = server.query("SELECT field, value, valid FROM template_fields WHERE job_id=?", doc["job_id"])
    assert sorted((f["name"], f["value"], f["valid"]) for f in doc["fields"]) == \
        sorted((f, v or "", bool(ok)) for f, v, ok in db_fields)

    # Bad files were refused for good, with the server's code, and never handed on.
    rows_by_name = {Path(p).name: (s, code) for p, s, _, code in client.spool_rows()}
    assert rows_by_name["empty.png"] == ("failed", "empty_input")
    assert rows_by_name["notes.jpg"][0] == "failed"
    assert rows_by_name["notes.jpg"][1] in ("unsupported_media_type", "corrupt_image")
    assert "INVALID_ARGUMENT empty_input" in client.log()
    assert "same-content-again.png" not in rows_by_name  # recognised as already queued
    assert "skipped same-content-again.png" in client.log()
    # The server was not troubled again by the refused files after their single attempt.
    assert client.log().count("empty.png refused for good") == 1


def test_client_killed_mid_way_and_restarted_delivers_each_file_exactly_once(
        tmp_path: Path, printouts: list[Path], cleanup: list[Any]) -> None:
    server, folder = _server_and_folder(tmp_path, cleanup)
    server.start()

    # A lost reply: this file reached the server before the watcher ever saw it.
    first = subprocess.run([sys.executable, "-m", "ocrpipe", "client", "send", str(printouts[0]), "--server",
                            server.target, "--insecure"], capture_output=True, text=True, env=ENV, timeout=120)
    assert first.returncode == 0, first.stderr
    lost_reply_job = first.stdout.strip()

    client = WatchClient(tmp_path, folder, server.target, "--insecure", hook_sleep=1.0)
    cleanup.append(client)
    client.start()
    for p in printouts:
        drop(p, folder)
    wait_for(lambda: len(client.hook_runs()) >= 2, 180, "two results handed on")
    client.kill9()
    states = client.states()
    assert "pending" in states.values() or "sent" in states.values() or "received" in states.values(), states

    client.start("--exit-when-idle")
    assert client.proc is not None
    assert client.proc.wait(240) == 0, client.log()

    jobs = server.query("SELECT id, sha256 FROM ocr_jobs")
    assert len(jobs) == len(printouts), jobs
    by_key = {k: j for j, k in jobs}
    assert sorted(by_key) == sorted(sha256(p) for p in printouts)
    assert by_key[sha256(printouts[0])] == lost_reply_job
    assert "existing job for this content" in client.log()
    spool_jobs = {Path(p).name: j for p, _, j, _ in client.spool_rows()}
    assert spool_jobs[printouts[0].name] == lost_reply_job

    # Every result was handed on; only a run cut short by the kill may have been repeated (at least once).
    runs = client.hook_runs()
    assert {j for j, _, _ in runs} == set(by_key.values())
    assert len(runs) <= len(printouts) + 1, runs
    assert set(client.states().values()) == {"done"}
    rows = _field_rows(server)
    assert all(rows.get(j, 0) > 0 for j in by_key.values())


def test_server_killed_while_jobs_run_loses_nothing(tmp_path: Path, printouts: list[Path],
                                                     cleanup: list[Any]) -> None:
    server, folder = _server_and_folder(tmp_path, cleanup)
    client = WatchClient(tmp_path, folder, server.target, "--insecure")
    cleanup.append(client)
    server.start()
    client.start()
    for p in printouts:
        drop(p, folder)
    wait_for(lambda: len(client.hook_runs()) >= 1, 180, "a first result")
    server.kill9()
    assert "sent" in client.states().values()  # results still outstanding when the server died
    wait_for(lambda: "server unreachable" in client.log(), 30, "the client to notice")
    server.start()
    wait_for(lambda: len(client.hook_runs()) >= len(printouts), 240, "every result handed on")
    time.sleep(2)
    assert client.stop() == 0, client.log()

    jobs = server.query("SELECT id, sha256, status FROM ocr_jobs")
    assert sorted(k for _, k, _ in jobs) == sorted(sha256(p) for p in printouts)
    assert {s for _, _, s in jobs} == {"succeeded"}, server.log()
    runs = client.hook_runs()
    assert sorted(j for j, _, _ in runs) == sorted(j for j, _, _ in jobs)  # each exactly once
    rows = _field_rows(server)
    assert all(rows.get(j) == _expected_fields(p) for p in printouts
               for j, k, _ in jobs if k == sha256(p))


def test_a_failing_result_command_is_retried_then_kept_for_the_next_start(
        tmp_path: Path, printouts: list[Path], cleanup: list[Any]) -> None:
    server, folder = _server_and_folder(tmp_path, cleanup)
    server.start()
    for p in printouts[:2]:
        drop(p, folder)
    client = WatchClient(tmp_path, folder, server.target, "--insecure", "--exit-when-idle",
                         "--on-result-retries", "2")
    cleanup.append(client)
    client.on_result = f"{sys.executable} -c \"import sys; sys.stderr.write('loader down'); sys.exit(7)\""
    client.start()
    assert client.proc is not None
    assert client.proc.wait(180) == 1, client.log()  # gave up for this run: a problem to report
    assert set(client.states().values()) == {"hook_failed"}
    assert client.log().count("result command failed 2 times") == 2
    assert "exited with 7" in client.log() and "loader down" not in client.log()
    assert len(list((client.spool / "results").glob("*.stderr.txt"))) == 2

    client.on_result = f"{sys.executable} {client.hook} {{json_path}}"  # the clinic program is back
    client.start()
    assert client.proc.wait(180) == 0, client.log()
    assert set(client.states().values()) == {"done"}
    jobs = server.query("SELECT id FROM ocr_jobs")
    assert len(jobs) == 2  # nothing was uploaded again
    assert sorted(j for j, _, _ in client.hook_runs()) == sorted(j for (j,) in jobs)
