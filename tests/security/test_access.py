"""The real server process with API keys: 401/403/404/429/413 answers, tenant isolation, deletion, the
audit log, retention by the sweeper, and logs/metrics free of document content."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import pytest
from testsupport.databases import create_keys
from testsupport.images import png, text_page
from testsupport.server import Server, run_cli, wait_job

pytestmark = pytest.mark.integration

KEYS = {
    "admin": {"scopes": "admin,read", "tenant": "ops"},
    "clinic-a": {"scopes": "submit,read"},
    "clinic-b": {"scopes": "submit,read"},
    "reader-a": {"scopes": "read", "tenant": "clinic-a"},
    "gone": {"scopes": "submit,read"},
    "slow": {"scopes": "read", "rate_limit": 3},
}
PATIENT = "홍길동"
PATIENT_ID = "73052291"


class AccessServer(Server):
    serve_grpc = True  # the key-guessing throttle is one per address for REST and gRPC


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("access")
    srv = AccessServer(data, "--max-wait-ms", "5", "--docs-auth",
                 env={"OCRPIPE_MAX_UPLOAD_MB": "1", "OCRPIPE_RETENTION_HOURS": "1",
                      "OCRPIPE_SWEEP_INTERVAL_S": "1", "OCRPIPE_MAX_PIXELS": "20000000"})
    srv.keys = create_keys(srv.db_url, KEYS)  # type: ignore[attr-defined]
    revoked = run_cli("keys", "revoke", "gone", data_dir=data)
    assert revoked.returncode == 0, revoked.stderr
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def clients(server: Server) -> Iterator[dict[str, httpx.Client]]:
    out = {name: server.client(key) for name, key in server.keys.items()}  # type: ignore[attr-defined]
    out["anonymous"] = server.client()
    yield out
    for c in out.values():
        c.close()


def assert_error(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["error"]["code"] == code, body
    return body


def submit(client: httpx.Client, data: bytes, name: str = "page.png", **headers: str) -> str:
    resp = client.post("/v1/jobs", files={"file": (name, data, "image/png")}, headers=headers)
    assert resp.status_code in (200, 202), resp.text
    return resp.json()["id"]


def db_rows(server: Server, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(server.db_url.removeprefix("sqlite:///")) as conn:
        return conn.execute(sql, args).fetchall()


def database_bytes(server: Server) -> bytes:
    """The raw bytes of the SQLite database and its write-ahead log."""
    files = sorted(server.data_dir.glob("ocrpipe.db*"))
    return b"".join(f.read_bytes() for f in files)


# ---- authentication ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/jobs"), ("POST", "/v1/ocr"),
                                              ("GET", "/v1/jobs/abc"), ("DELETE", "/v1/jobs/abc"),
                                              ("GET", "/v1/admin/keys")])
def test_no_key_answers_401(clients: dict[str, httpx.Client], method: str, path: str) -> None:
    resp = clients["anonymous"].request(method, path)
    assert_error(resp, 401, "unauthorized")
    assert resp.headers["www-authenticate"].startswith("Bearer")


def test_bad_keys_answer_401(server: Server, clients: dict[str, httpx.Client]) -> None:
    key_id = server.keys["clinic-a"].split("_")[1]  # type: ignore[attr-defined]
    for auth in ("Basic dXNlcjpwYXNz", "Bearer nonsense", f"Bearer ocp_{key_id}_{'x' * 43}", "Token abc"):
        resp = httpx.get(server.url + "/v1/jobs", headers={"Authorization": auth})
        assert_error(resp, 401, "unauthorized")


def test_revoked_key_answers_401(clients: dict[str, httpx.Client]) -> None:
    body = assert_error(clients["gone"].get("/v1/jobs"), 401, "unauthorized")
    assert "revoked" in body["error"]["message"]


def test_revoking_with_the_cli_takes_effect_on_the_running_server(server: Server) -> None:
    made = run_cli("keys", "create", "--name", "cli-made", "--scopes", "read", data_dir=server.data_dir)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("ocp_") and "\n" not in key
    listed = run_cli("keys", "list", data_dir=server.data_dir)
    assert "cli-made" in listed.stdout and key not in listed.stdout
    secret = key.split("_", 2)[2]  # ocp_<12 hex id>_<secret>; the secret itself may contain "_"
    raw = (server.data_dir / "ocrpipe.db").read_bytes()
    assert secret.encode() not in raw  # only the hash is stored
    with server.client(key) as c:
        assert c.get("/v1/jobs").status_code == 200
        assert run_cli("keys", "revoke", "cli-made", data_dir=server.data_dir).returncode == 0
        assert_error(c.get("/v1/jobs"), 401, "unauthorized")


def test_wrong_scope_answers_403(clients: dict[str, httpx.Client]) -> None:
    resp = clients["reader-a"].post("/v1/jobs", files={"file": ("a.png", png(), "image/png")})
    assert_error(resp, 403, "forbidden")
    assert_error(clients["clinic-a"].get("/v1/admin/keys"), 403, "forbidden")
    assert_error(clients["clinic-a"].post("/v1/admin/retention/sweep"), 403, "forbidden")
    assert_error(clients["admin"].post("/v1/ocr", files={"file": ("a.png", png(), "image/png")}),
                 403, "forbidden")
    assert clients["admin"].get("/v1/admin/keys").status_code == 200


def test_rate_limit_answers_429_per_key(clients: dict[str, httpx.Client]) -> None:
    statuses = [clients["slow"].get("/v1/jobs").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    resp = clients["slow"].get("/v1/jobs")
    assert_error(resp, 429, "rate_limited")
    assert int(resp.headers["retry-after"]) >= 1
    assert clients["reader-a"].get("/v1/jobs").status_code == 200  # other keys are not affected


def test_size_limits_answer_413_with_a_code(clients: dict[str, httpx.Client]) -> None:
    big = b"\x89PNG\r\n\x1a\n" + bytes(1_300_000)
    resp = clients["clinic-a"].post("/v1/jobs", files={"file": ("big.png", big, "image/png")})
    assert_error(resp, 413, "file_too_large")
    huge = png(6000, 5000)  # 30 Mpx, a few KB compressed
    assert_error(clients["clinic-a"].post("/v1/ocr", files={"file": ("huge.png", huge, "image/png")}),
                 413, "image_too_large")


# ---- tenants -----------------------------------------------------------------------------------------


def test_other_tenants_job_answers_404_like_a_missing_one(clients: dict[str, httpx.Client]) -> None:
    a, b = clients["clinic-a"], clients["clinic-b"]
    job_id = submit(a, png())
    wait_job(a, job_id)
    missing = "0" * 32
    for suffix in ("", "/result", "/pages/0"):
        theirs = b.get(f"/v1/jobs/{job_id}{suffix}")
        unknown = b.get(f"/v1/jobs/{missing}{suffix}")
        assert theirs.status_code == unknown.status_code == 404
        assert theirs.json()["error"]["code"] == unknown.json()["error"]["code"]
        assert theirs.json()["error"]["message"].replace(job_id, missing) == unknown.json()["error"]["message"]
    assert_error(b.delete(f"/v1/jobs/{job_id}"), 404, "job_not_found")
    assert job_id not in {j["id"] for j in b.get("/v1/jobs").json()["jobs"]}
    assert job_id in {j["id"] for j in a.get("/v1/jobs").json()["jobs"]}
    assert clients["reader-a"].get(f"/v1/jobs/{job_id}/result").status_code == 200  # same tenant
    assert clients["admin"].get(f"/v1/jobs/{job_id}").status_code == 404  # admin is tenant-bound too


def test_idempotency_keys_are_per_tenant(clients: dict[str, httpx.Client]) -> None:
    data = png(70, 30)
    first = submit(clients["clinic-a"], data, **{"Idempotency-Key": "shared-key-1"})
    again = submit(clients["clinic-a"], data, **{"Idempotency-Key": "shared-key-1"})
    other = submit(clients["clinic-b"], data, **{"Idempotency-Key": "shared-key-1"})
    assert first == again and other != first


# ---- deletion, audit, retention ----------------------------------------------------------------------


def test_delete_removes_upload_result_and_rows_and_is_audited(server: Server,
                                                              clients: dict[str, httpx.Client]) -> None:
    a = clients["clinic-a"]
    job_id = submit(a, text_page([f"환자 성명: {PATIENT}"]), name=f"{PATIENT}.png")
    wait_job(a, job_id)
    assert PATIENT in a.get(f"/v1/jobs/{job_id}/result").json()["text"]
    (upload,) = db_rows(server, "SELECT upload_path FROM ocr_jobs WHERE id = ?", job_id)[0]
    assert Path(upload).is_file()
    assert PATIENT.encode() in database_bytes(server)
    clients["clinic-b"].get(f"/v1/jobs/{job_id}")  # a probe from another tenant: 404, audited
    resp = a.delete(f"/v1/jobs/{job_id}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["removed"]["ocr_jobs"] == 1 and resp.json()["removed"]["uploads"] == 1
    assert not Path(upload).exists()
    assert db_rows(server, "SELECT id FROM ocr_jobs WHERE id = ?", job_id) == []
    assert PATIENT.encode() not in database_bytes(server)  # zeroed in the file, not left in free pages/WAL
    assert_error(a.get(f"/v1/jobs/{job_id}"), 404, "job_not_found")
    entries = clients["admin"].get("/v1/admin/audit", params={"job_id": job_id}).json()["entries"]
    seen = {(e["key_name"], e["action"], e["status"]) for e in entries}
    assert {("clinic-a", "submit_job", 202), ("clinic-a", "read_result", 200),
            ("clinic-a", "delete_job", 200), ("clinic-b", "read_job", 404)} <= seen
    assert all(e["ts"].endswith("Z") for e in entries)
    cli = run_cli("audit", "--job", job_id, data_dir=server.data_dir)
    assert cli.returncode == 0 and "delete_job" in cli.stdout


def test_sweeper_removes_jobs_older_than_the_retention(server: Server,
                                                       clients: dict[str, httpx.Client]) -> None:
    a = clients["clinic-a"]
    old, fresh = submit(a, png(90, 40)), submit(a, png(91, 40))
    wait_job(a, old)
    wait_job(a, fresh)
    (upload,) = db_rows(server, "SELECT upload_path FROM ocr_jobs WHERE id = ?", old)[0]
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).replace(tzinfo=None).isoformat(sep=" ")
    with sqlite3.connect(server.db_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE ocr_jobs SET created_at = ?, finished_at = ? WHERE id = ?",
                     (two_hours_ago, two_hours_ago, old))
    deadline = time.monotonic() + 30  # the sweeper runs every second in this server
    while db_rows(server, "SELECT id FROM ocr_jobs WHERE id = ?", old) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert db_rows(server, "SELECT id FROM ocr_jobs WHERE id = ?", old) == []
    assert not Path(upload).exists()
    assert_error(a.get(f"/v1/jobs/{old}/result"), 404, "job_not_found")
    assert a.get(f"/v1/jobs/{fresh}").status_code == 200


# ---- nothing of the document in logs or metrics ------------------------------------------------------


def test_logs_and_metrics_never_contain_document_content(server: Server,
                                                         clients: dict[str, httpx.Client]) -> None:
    a = clients["clinic-a"]
    page = text_page([f"환자 성명: {PATIENT}", f"등록번호 {PATIENT_ID}"])
    job_id = submit(a, page, name=f"{PATIENT}_{PATIENT_ID}.png")
    assert wait_job(a, job_id)["status"] == "succeeded"
    text = a.get(f"/v1/jobs/{job_id}/result").json()["text"]
    assert PATIENT in text, text  # the real engine read the marker...
    sync = a.post("/v1/ocr", files={"file": (f"{PATIENT}.png", page, "image/png")})
    assert PATIENT in sync.json()["text"]
    assert a.post("/v1/ocr", files={"file": (f"{PATIENT}.png", b"not an image", "image/png")}).status_code == 415
    broken = submit(a, page[:300], name=f"{PATIENT}_{PATIENT_ID}_broken.png")  # fails in decode
    failed = wait_job(a, broken)
    assert failed["status"] == "failed" and PATIENT in failed["error"]["message"]  # told to its owner only
    image = a.get(f"/v1/jobs/{job_id}/pages/0")
    assert image.status_code == 200 and image.headers["cache-control"] == "no-store"  # no PHI in caches
    assert image.headers["x-content-type-options"] == "nosniff"
    metrics = httpx.get(server.url + "/metrics").text
    log = server.log()
    assert job_id in log  # ...the log was captured and does record the job (by id)...
    for marker in (PATIENT, PATIENT_ID):  # ...but never the text, the file name or the image
        assert marker not in metrics
        bad = [line for line in log.splitlines() if marker in line]
        assert not bad, bad[:3]
    assert "IHDR" not in log and "\\x89PNG" not in log


def test_docs_need_a_read_key_with_docs_auth(server: Server, clients: dict[str, httpx.Client]) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert_error(clients["anonymous"].get(path), 401, "unauthorized")
        assert clients["reader-a"].get(path).status_code == 200, path
    assert clients["anonymous"].get("/healthz").status_code == 200  # probes stay open


def _grpc_guess(server: Server, token: str) -> tuple[grpc.StatusCode, str | None]:
    from ocrpipe.protocol import ingest_pb2, ingest_pb2_grpc

    with grpc.insecure_channel(server.target) as channel:
        stub = ingest_pb2_grpc.IngestStub(channel)
        try:
            stub.GetResult(ingest_pb2.GetResultRequest(job_id="x"), metadata=[("authorization", f"Bearer {token}")],
                           timeout=30)
        except grpc.RpcError as exc:
            return exc.code(), dict(exc.trailing_metadata() or ()).get("ocrpipe-error-code")
    raise AssertionError("a guessed key was accepted")


def test_guessing_keys_is_throttled_per_address(server: Server, clients: dict[str, httpx.Client]) -> None:
    """Runs last: after 30 bad keys a minute this address gets 429 before any key is verified, whether the
    guesses come over REST or gRPC (one count per address); keys the server already verified keep working,
    so a guesser cannot lock a clinic out."""
    assert clients["clinic-a"].get("/v1/jobs").status_code == 200  # verified before the attack
    key_id = server.keys["clinic-b"].split("_")[1]  # type: ignore[attr-defined]
    start = time.monotonic()
    # Each guess claims another client address: X-Forwarded-For and Forwarded are honoured only from
    # --trusted-proxies, so the throttle still counts them all against this address.
    statuses = [httpx.get(server.url + "/v1/jobs", headers={"Authorization": f"Bearer ocp_{key_id}_{i:043d}",
                                                            "X-Forwarded-For": f"203.0.113.{i}",
                                                            "Forwarded": f"for=198.51.100.{i}"})
                .status_code for i in range(20)]
    assert set(statuses) == {401}, statuses
    # The same address over gRPC: its guesses are counted with the REST ones.
    answers = [_grpc_guess(server, f"ocp_{key_id}_{i:043d}") for i in range(20, 40)]
    elapsed = time.monotonic() - start
    assert answers[0] == (grpc.StatusCode.UNAUTHENTICATED, "unauthorized"), answers[0]
    throttled = [a for a in answers if a != (grpc.StatusCode.UNAUTHENTICATED, "unauthorized")]
    assert throttled and set(throttled) == {(grpc.StatusCode.RESOURCE_EXHAUSTED, "rate_limited")}, answers
    # 30 bad keys, then one more per 2 s that passed (the budget refills at 30 a minute) — however slow
    # this machine is, no more keys than that were verified over both transports together.
    assert statuses.count(401) + answers.count((grpc.StatusCode.UNAUTHENTICATED, "unauthorized")) \
        <= 30 + 1 + int(elapsed / 2)
    # Back on REST, a guess in another key's format is throttled too (a refilled token may let one through).
    other = [httpx.get(server.url + "/v1/jobs", headers={"Authorization": "Bearer ocp_0123456789ab_" + "y" * 43,
                                                         "X-Forwarded-For": "203.0.113.250"})
             for _ in range(3)]
    assert_error(next(r for r in other if r.status_code != 401), 429, "rate_limited")
    assert clients["clinic-a"].get("/v1/jobs").status_code == 200
