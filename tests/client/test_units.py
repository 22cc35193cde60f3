"""Unit tests of the upload client's parts with tiny fixtures: back-off, status classification, the spool's
state machine and lock, the folder scanner's "completely written" rule, the result command, option checks,
and one watch step against a port where nothing listens (the server is down)."""

from __future__ import annotations

import json
import logging
import random
import socket
import sys
import time
from pathlib import Path

import grpc
import pytest

from ocrpipe.client.agent import Agent, WatchConfig
from ocrpipe.client.backoff import Backoff
from ocrpipe.client.connection import CallError, Connection, Outcome, ServerOptions, classify
from ocrpipe.client.errors import ClientError
from ocrpipe.client.results import ResultCommand, result_document
from ocrpipe.client.spool import Spool
from ocrpipe.client.watcher import FolderScanner
from ocrpipe.protocol import ingest_pb2

# ---- back-off ------------------------------------------------------------------------------------------


def test_backoff_grows_exponentially_to_the_cap_with_jitter_below_the_ceiling() -> None:
    b = Backoff(base_s=1.0, cap_s=30.0, floor_s=0.2, rng=random.Random(1))
    assert [b.ceiling(n) for n in range(0, 8)] == [0.0, 1, 2, 4, 8, 16, 30, 30]
    assert b.delay(0) == 0.0
    for n in range(1, 40):
        draws = [b.delay(n) for _ in range(50)]
        assert all(0.2 <= d <= b.ceiling(n) for d in draws)
        assert len(set(draws)) > 40  # jittered, not a fixed schedule
    assert b.ceiling(10_000) == 30.0  # no overflow


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(base_s=10, cap_s=1)
    with pytest.raises(ValueError):
        Backoff(base_s=0.1, cap_s=1, floor_s=0.5)


# ---- what a status means ---------------------------------------------------------------------------


def test_status_classification() -> None:
    S = grpc.StatusCode
    assert classify(S.UNAVAILABLE) is Outcome.RETRY
    assert classify(S.DEADLINE_EXCEEDED) is Outcome.RETRY
    assert classify(S.RESOURCE_EXHAUSTED, "too_many_requests") is Outcome.RETRY
    assert classify(S.RESOURCE_EXHAUSTED, "file_too_large") is Outcome.PERMANENT
    assert classify(S.INVALID_ARGUMENT, "corrupt_image") is Outcome.PERMANENT
    assert classify(S.NOT_FOUND) is Outcome.PERMANENT
    assert classify(S.UNAUTHENTICATED) is Outcome.SETUP
    assert classify(S.PERMISSION_DENIED) is Outcome.SETUP
    assert CallError("INVALID_ARGUMENT", "corrupt_image", "x", Outcome.PERMANENT).tag == \
        "INVALID_ARGUMENT corrupt_image"
    assert CallError("UNAVAILABLE", "unavailable", "x", Outcome.RETRY).tag == "UNAVAILABLE"


def test_server_options_refuse_plaintext_to_another_machine_and_half_a_client_cert(tmp_path: Path) -> None:
    ServerOptions("127.0.0.1:5000", insecure=True).check()
    ServerOptions("localhost:5000", insecure=True).check()
    with pytest.raises(ClientError) as info:
        ServerOptions("10.0.0.7:5000", insecure=True).check()
    assert info.value.code == "insecure_remote"
    cert = tmp_path / "c.crt"
    cert.write_text("x")
    with pytest.raises(ClientError) as info:
        ServerOptions("h:1", client_cert=cert).check()
    assert info.value.code == "bad_option"
    with pytest.raises(ClientError):
        ServerOptions("h:1", ca_file=tmp_path / "missing.crt").check()


# ---- the spool ---------------------------------------------------------------------------------------


def test_spool_walks_a_file_through_its_states_and_survives_reopening(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    assert spool.add("/in/a.png", b"aaa", "sha-a", 1)
    assert not spool.add("/in/copy-of-a.png", b"aaa", "sha-a", 2)  # same content: one upload
    assert spool.seen("/in/copy-of-a.png", 3, 2) and not spool.seen("/in/copy-of-a.png", 3, 99)
    [entry] = spool.due("pending", time.time())
    assert spool.blob(entry) == b"aaa" and entry.path == "/in/a.png"

    spool.retry_upload("sha-a", "unavailable", "down", time.time() + 3600)
    assert spool.due("pending", time.time()) == []
    assert spool.get("sha-a").attempts == 1  # type: ignore[union-attr]
    spool.retry_upload("sha-a", "unavailable", "down", 0)
    spool.sent("sha-a", "job1", 0)
    assert spool.by_job("job1").state == "sent"  # type: ignore[union-attr]
    spool.received("sha-a", str(tmp_path / "r.json"))
    assert not (spool.blobs / "sha-a").exists()  # the queued copy is dropped once the result is in
    assert spool.hook_retry("sha-a", "exit_status", "boom", 0, max_attempts=2)
    assert not spool.hook_retry("sha-a", "exit_status", "boom", 0, max_attempts=2)
    assert spool.counts()["hook_failed"] == 1
    spool.close()

    again = Spool(tmp_path / "spool")  # a new run retries the result command from scratch
    entry2 = again.get("sha-a")
    assert entry2 is not None and entry2.state == "received" and entry2.hook_attempts == 0
    again.done("sha-a")
    assert again.counts()["done"] == 1
    again.close()


def test_refused_files_are_failed_for_good(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.add("/in/empty.png", b"", "sha-e", 1)
    spool.failed("sha-e", "empty_input", "empty")
    assert spool.due("pending", time.time() + 10**9) == []
    assert spool.get("sha-e").error_code == "empty_input"  # type: ignore[union-attr]
    spool.close()


def test_a_second_client_on_the_same_spool_is_refused(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    with pytest.raises(ClientError) as info:
        Spool(tmp_path)
    assert info.value.code == "spool_locked"
    first.close()
    Spool(tmp_path).close()  # free again once the first let go


# ---- the folder scanner ------------------------------------------------------------------------------


def test_scanner_reports_a_file_only_once_it_stopped_changing(tmp_path: Path) -> None:
    scanner = FolderScanner(tmp_path, settle_s=1.0)
    f = tmp_path / "scan.png"
    f.write_bytes(b"part")
    (tmp_path / "notes.txt").write_text("not an image name")
    (tmp_path / ".hidden.png").write_bytes(b"x")
    t = 100.0
    assert scanner.scan(t) == [] and scanner.settling == 1
    with open(f, "ab") as fh:  # still being written
        fh.write(b"more")
    assert scanner.scan(t + 0.9) == []
    assert scanner.scan(t + 1.5) == []  # changed at t+0.9: the clock restarts
    [found] = scanner.scan(t + 2.0)
    assert found.path == f and found.size == 8
    assert scanner.scan(t + 5) == [] and scanner.settling == 0  # reported once
    f.write_bytes(b"overwritten with new content")
    assert scanner.scan(t + 6) == []
    assert [x.path for x in scanner.scan(t + 7.1)] == [f]  # changed content is reported again


def test_scanner_recursion_skips_the_spool(tmp_path: Path) -> None:
    (tmp_path / "day1").mkdir()
    (tmp_path / "day1" / "a.JPG").write_bytes(b"x")
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / "b.png").write_bytes(b"x")
    scanner = FolderScanner(tmp_path, recursive=True, settle_s=0, exclude=(tmp_path / "spool",))
    scanner.scan(0)
    assert [p.path.name for p in scanner.scan(1)] == ["a.JPG"]


# ---- results and the result command ------------------------------------------------------------------


def _result(job_id: str = "j1") -> ingest_pb2.JobResult:
    return ingest_pb2.JobResult(
        job_id=job_id, status="succeeded", mode="template", template="ark_v1", device="ARK-530", valid=True,
        fields=[ingest_pb2.FieldValue(name="r_sph", value="-1.25", unit="D", valid=True, confidence=0.98,
                                      raw="-1.25")],
        result_json=json.dumps({"template": "ark_v1"}), finished_unix_ms=123)


def test_result_document() -> None:
    doc = result_document(_result(), source="/in/a.png", sha256="abc")
    assert doc["job_id"] == "j1" and doc["status"] == "succeeded" and doc["error"] is None
    assert doc["fields"][0] == {"name": "r_sph", "type": "", "value": "-1.25", "unit": "D", "valid": True,
                                "confidence": 0.98, "raw": "-1.25", "issues": []}
    assert doc["result"] == {"template": "ark_v1"} and doc["source_file"] == "/in/a.png"


def test_result_command_gets_the_path_and_the_json_on_stdin(tmp_path: Path) -> None:
    doc = result_document(_result(), source="/in/a b.png", sha256="abc")
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "out.txt"
    script = ("import json,sys,os; d=json.load(sys.stdin); "
              f"open({str(out)!r},'w').write(sys.argv[1]+'|'+sys.argv[2]+'|'+d['job_id']+'|'+os.environ['OCRPIPE_JOB_ID'])")
    cmd = ResultCommand(f"{sys.executable} -c \"{script}\" {{json_path}} '{{source}}'")
    outcome = cmd.run(path, doc)
    assert outcome.ok, outcome
    assert out.read_text() == f"{path}|/in/a b.png|j1|j1"


def test_result_command_failures_are_reported_not_raised(tmp_path: Path) -> None:
    doc = result_document(_result(), source="/in/a.png", sha256="abc")
    path = tmp_path / "r.json"
    failing = ResultCommand(f"{sys.executable} -c \"import sys; sys.stderr.write('patient 123'); sys.exit(4)\"")
    outcome = failing.run(path, doc)
    assert not outcome.ok and outcome.code == "exit_status" and "exited with 4" in outcome.message
    assert "patient 123" not in outcome.message  # kept out of the log …
    assert path.with_suffix(".stderr.txt").read_text() == "patient 123"  # … but kept
    assert ResultCommand("/no/such/command {json_path}").run(path, doc).code == "not_found"
    slow = ResultCommand(f"{sys.executable} -c \"import time; time.sleep(5)\"", timeout_s=0.3)
    assert slow.run(path, doc).code == "timeout"


# ---- a watch step while the server is down -------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_server_down_keeps_files_pending_with_back_off_and_a_clear_log(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"\x89PNG fake but never read by anyone")
    target = f"127.0.0.1:{_closed_port()}"
    spool = Spool(tmp_path / "spool")
    config = WatchConfig(folder=folder, settle_s=0.0, backoff=Backoff(base_s=0.5, cap_s=2.0, floor_s=0.2))
    agent = Agent(config, Connection(ServerOptions(target, insecure=True, timeout_s=5)), spool)
    caplog.set_level(logging.INFO, "ocrpipe.client")
    agent.step()  # first sight of the file
    agent.step()  # settled: queued and tried
    [entry] = spool.in_state("pending")
    assert entry.attempts == 1 and entry.error_code == "unavailable"
    assert entry.next_try > time.time()
    assert any("server unreachable" in r.message and "[UNAVAILABLE]" in r.message and "1 file(s) waiting"
               in r.message for r in caplog.records)
    agent.step()  # within the back-off: no new attempt
    assert spool.get(entry.sha256).attempts == 1  # type: ignore[union-attr]
    time.sleep(2.1)
    agent.step()
    assert spool.get(entry.sha256).attempts == 2  # type: ignore[union-attr]
    agent.connection.close()
    spool.close()
