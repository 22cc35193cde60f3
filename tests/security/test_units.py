"""Unit tests of the security layer: key hashing and verification, scopes, rate limiting, bind safety,
per-tenant idempotency, deletion of dependent rows, and the OpenAPI error documentation."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from ocrpipe.protocol.channel import is_loopback
from ocrpipe.server.intake import scoped_idempotency_key
from ocrpipe.server.security.auth import SecurityState, bearer_token, required_scope
from ocrpipe.server.security.keys import KeyAdminError, KeyExists, KeyStore, Principal, Scope, parse_scopes
from ocrpipe.server.security.openapi import document
from ocrpipe.server.security.ratelimit import RateLimiter
from ocrpipe.server.security.settings import SecuritySettings, UnsafeBind, check_bind
from ocrpipe.server.storage.db import get_engine, migrate
from ocrpipe.server.storage.jobs import JobStore
from ocrpipe.server.storage.retention import delete_job, dependent_columns


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = get_engine(f"sqlite:///{tmp_path / 'sec.db'}")
    migrate(eng)
    yield eng
    eng.dispose()


def test_keys_are_stored_as_hashes_and_verified(engine: Engine) -> None:
    store = KeyStore(engine)
    info, key = store.create("clinic-a", "submit,read")
    assert key.startswith(f"ocp_{info.id}_") and info.tenant == "clinic-a"
    with engine.connect() as conn:
        row = conn.execute(text("SELECT hash, salt FROM api_keys")).one()
    secret = key.split("_", 2)[2]  # ocp_<12 hex id>_<secret>; the secret itself may contain "_"
    assert secret not in row.hash and len(row.hash) == 64
    p = store.authenticate(key)
    assert p == Principal(info.id, "clinic-a", "clinic-a", frozenset({Scope.SUBMIT, Scope.READ}))
    assert store.authenticate(key) == p  # second time from the verified cache
    assert store.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None  # wrong secret
    assert store.authenticate("ocp_000000000000_" + secret) is None  # unknown id
    assert store.authenticate("garbage") is None


def test_revocation_is_immediate_also_through_another_store(engine: Engine) -> None:
    server_side, admin_side = KeyStore(engine), KeyStore(engine)
    _, key = server_side.create("k1", "read", tenant="t1")
    assert server_side.authenticate(key) is not None
    admin_side.revoke("k1")
    assert server_side.authenticate(key) is None
    assert server_side.any_keys()  # revoked keys still count: revoking all never opens the API


class _SlowKeyStore(KeyStore):
    """The real key store, whose 'are there keys?' query takes long (as a cold first query can)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.asking, self.answer = threading.Event(), threading.Event()

    def any_keys(self) -> bool:
        self.asking.set()
        self.answer.wait(10)
        return super().any_keys()


def test_auth_is_enforced_for_calls_that_arrive_while_the_first_check_runs(engine: Engine) -> None:
    """Regression: the first check stamped 'checked' before asking the database, so a call arriving while
    that query ran got the stale 'no keys' answer and went through unauthenticated (its job stored without
    a tenant)."""
    KeyStore(engine).create("clinic-a", "submit,read")
    keys, state = _SlowKeyStore(engine), SecurityState(SecuritySettings())
    first: list[bool] = []
    asker = threading.Thread(target=lambda: first.append(state.enforced(keys)))
    asker.start()
    assert keys.asking.wait(10)
    assert state.enforced_cached() is None  # not "False": nobody has answered yet
    second: list[bool] = []
    waiter = threading.Thread(target=lambda: second.append(state.enforced(keys)))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive()  # waits for the answer in flight instead of assuming one
    keys.answer.set()
    asker.join(10)
    waiter.join(10)
    assert first == second == [True] and state.enforced_cached() is True


def test_no_keys_is_cached_only_from_the_answer(engine: Engine) -> None:
    state, keys = SecurityState(SecuritySettings()), KeyStore(engine)
    assert state.enforced_cached() is None
    assert state.enforced(keys) is False and state.enforced_cached() is False  # answered: cached a while
    keys.create("clinic-a", "read")
    state._checked = 0.0  # the cache has expired
    assert state.enforced_cached() is None and state.enforced(keys) is True


def test_key_validation(engine: Engine) -> None:
    store = KeyStore(engine)
    store.create("dup", "read")
    with pytest.raises(KeyExists):
        store.create("dup", "read")
    for bad in ({"name": "has space", "scopes": "read"}, {"name": "x", "scopes": "write"},
                {"name": "x", "scopes": ""}, {"name": "x", "scopes": "read", "tenant": "a/b"}):
        with pytest.raises(KeyAdminError):
            store.create(**bad)
    with pytest.raises(KeyAdminError):
        store.revoke("nobody")
    assert parse_scopes(" Submit , read ") == {Scope.SUBMIT, Scope.READ}


def test_rate_limiter_bursts_then_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [limiter.acquire("k", 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("k", 3)
    assert wait == pytest.approx(20.0)  # 3/min: one token every 20 s
    assert limiter.acquire("other", 3) == 0.0
    assert limiter.peek("k", 3) == pytest.approx(20.0) and limiter.peek("new", 3) == 0.0
    now[0] = 20.0
    assert limiter.peek("k", 3) == 0.0  # peeking takes nothing
    assert limiter.acquire("k", 3) == 0.0
    assert limiter.acquire("k", 3) > 0


def test_required_scopes_and_bearer_parsing() -> None:
    assert required_scope("GET", "/v1/jobs/x") is Scope.READ
    assert required_scope("POST", "/v1/jobs") is Scope.SUBMIT
    assert required_scope("DELETE", "/v1/jobs/x") is Scope.SUBMIT
    assert required_scope("GET", "/v1/admin/keys") is Scope.ADMIN
    assert required_scope("GET", "/metrics") is Scope.ADMIN
    assert bearer_token({"authorization": "Bearer abc"}) == "abc"
    assert bearer_token({"authorization": "bearer  abc "}) == "abc"
    assert bearer_token({"authorization": "Basic abc"}) is None
    assert bearer_token({}) is None


def test_bind_safety() -> None:
    open_ = SecuritySettings()
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    assert check_bind("127.0.0.1", keys_exist=False, security=open_) == []
    with pytest.raises(UnsafeBind):
        check_bind("0.0.0.0", keys_exist=False, security=open_)
    warnings = check_bind("0.0.0.0", keys_exist=False, security=SecuritySettings(insecure=True))
    assert any("WITHOUT authentication" in w for w in warnings)
    assert any("without TLS" in w for w in check_bind("0.0.0.0", keys_exist=True, security=open_))
    check_bind("0.0.0.0", keys_exist=False, security=SecuritySettings(auth="required"))


def test_tls_settings_need_a_pair(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ValueError, match="both"):
        SecuritySettings(tls_cert=cert)
    with pytest.raises(ValueError, match="does not exist"):
        SecuritySettings(tls_cert=cert, tls_key=tmp_path / "missing.pem")


def test_idempotency_keys_are_scoped_per_tenant() -> None:
    assert scoped_idempotency_key("tenant-a", "k", "rest") != scoped_idempotency_key("tenant-b", "k", "rest")
    assert scoped_idempotency_key("tenant-a", "k", "rest") == scoped_idempotency_key("tenant-a", "k", "rest")
    assert scoped_idempotency_key("tenant-a", "k", "rest") != scoped_idempotency_key("tenant-a", "k", "grpc")
    assert scoped_idempotency_key(None, "k", "rest") != scoped_idempotency_key("tenant-a", "k", "rest")
    assert scoped_idempotency_key("tenant-a", None, "rest") is None


def test_delete_job_removes_rows_that_refer_to_it(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:  # a table like the template field results of another area
        conn.execute(text("CREATE TABLE field_rows (id INTEGER PRIMARY KEY, "
                          "job_id VARCHAR(32) REFERENCES ocr_jobs(id), value TEXT)"))
    store = JobStore(engine, tmp_path / "uploads")
    mine, _ = store.create(b"data-1", filename="a.png", content_type=None, tenant="t1")
    other, _ = store.create(b"data-2", filename="b.png", content_type=None, tenant="t1")
    with engine.begin() as conn:
        for job in (mine.id, mine.id, other.id):
            conn.execute(text("INSERT INTO field_rows (job_id, value) VALUES (:j, 'v')"), {"j": job})
    assert ("field_rows", "job_id") in dependent_columns(engine)
    path = store.upload_of(mine.id)[0]  # type: ignore[index]
    assert delete_job(store.sessions, mine.id, tenant="t2") is None  # another tenant: as if missing
    counts = delete_job(store.sessions, mine.id, tenant="t1")
    assert counts is not None
    # other tables that refer to jobs (e.g. template_fields from its own migration) had nothing to delete
    assert {table: n for table, n in counts.items() if n} == {"field_rows": 2, "ocr_jobs": 1, "uploads": 1}
    assert not path.exists() and store.get(mine.id) is None
    with engine.connect() as conn:
        assert conn.execute(text("SELECT job_id FROM field_rows")).scalars().all() == [other.id]
    assert delete_job(store.sessions, mine.id, tenant=None) is None


def test_tenant_filter_in_the_store(engine: Engine, tmp_path: Path) -> None:
    store = JobStore(engine, tmp_path / "uploads")
    job, _ = store.create(b"x", filename=None, content_type=None, tenant="a")
    assert store.get(job.id, "a") is not None and store.get(job.id, "b") is None
    assert store.result(job.id, "b") is None and store.upload_of(job.id, "b") is None
    assert [j.id for j in store.list(tenant="a")] == [job.id] and store.list(tenant="b") == []
    assert store.get(job.id) is not None  # no tenant: auth not enforced (loopback, no keys)
    named, _ = store.create(b"y", filename="a\x00b.png", content_type="image/png\x00", tenant="a")
    assert named.filename == "ab.png"  # NUL cannot be stored in PostgreSQL text


def test_openapi_documents_auth_and_json_errors() -> None:
    validation = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}}
    schema = {"paths": {"/v1/jobs": {"post": {"requestBody": {}, "responses": {"202": {}, "422": validation}}},
                        "/healthz": {"get": {"responses": {"200": {}}}}}}
    out = document(schema)
    post = out["paths"]["/v1/jobs"]["post"]
    assert "422" not in post["responses"]
    assert {"401", "403", "413", "429"} <= set(post["responses"])
    assert post["security"] == [{"bearerAuth": []}, {}]
    assert "401" not in out["paths"]["/healthz"]["get"]["responses"]
    assert out["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_log_filter_redacts_content_but_keeps_ids() -> None:
    import io
    import json
    import logging

    from ocrpipe.server.logconfig import JsonFormatter
    from ocrpipe.server.logfilter import install as redact_content

    out = io.StringIO()
    handler = redact_content(logging.StreamHandler(out))
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("test.redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("field read", extra={"job_id": "j1", "value": "홍길동", "raw_text": "73052291",
                                          "blob": b"\x89PNG\r\n", "pages": 2})
    finally:
        log.removeHandler(handler)
    line = json.loads(out.getvalue())
    assert line["job_id"] == "j1" and line["pages"] == 2 and line["msg"] == "field read"
    assert line["value"] == line["raw_text"] == "[redacted]" and line["blob"] == "<6 bytes>"
    assert "홍길동" not in out.getvalue() and "73052291" not in out.getvalue()


def test_certs_command_writes_a_usable_set(tmp_path: Path) -> None:
    import ssl

    from ocrpipe.cli import main

    assert main(["certs", "--out", str(tmp_path), "--host", "ocr.clinic.lan"]) == 0
    ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    ctx.load_cert_chain(str(tmp_path / "client.crt"), str(tmp_path / "client.key"))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(tmp_path / "server.crt"), str(tmp_path / "server.key"))
    assert (tmp_path / "server.key").stat().st_mode & 0o077 == 0  # private keys are not world-readable


def test_database_errors_do_not_carry_document_content(engine: Engine, tmp_path: Path) -> None:
    """SQL parameters (file names, recognised text) stay out of exception messages, hence out of logs."""
    from sqlalchemy.exc import IntegrityError

    with engine.begin() as conn:
        conn.execute(text("INSERT INTO api_keys (id, name, tenant, scopes, salt, hash, created_at) "
                          "VALUES ('k1', 'n1', 't', 'read', 's', 'h', '2026-01-01')"))
    with pytest.raises(IntegrityError) as info, engine.begin() as conn:
        conn.execute(text("INSERT INTO api_keys (id, name, tenant, scopes, salt, hash, created_at) "
                          "VALUES ('k1', :name, 't', 'read', 's', 'h', '2026-01-01')"), {"name": "홍길동"})
    assert "홍길동" not in str(info.value)


def test_unknown_key_ids_cost_what_wrong_secrets_cost(engine: Engine) -> None:
    """Key ids cannot be enumerated by timing: an unknown id takes the same scrypt as a wrong secret."""
    import time

    store = KeyStore(engine)
    info, key = store.create("clinic-a", "read")
    secret = key.split(f"{info.id}_", 1)[1]
    known_wrong = key.replace(secret, "x" * len(secret))
    unknown = key.replace(info.id, "f" * len(info.id))
    assert store.authenticate(known_wrong) is None and store.authenticate(unknown) is None
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    for _ in range(20):  # interleaved, so load on the machine hits both alike
        for name, presented in (("known", known_wrong), ("unknown", unknown)):
            start = time.perf_counter()
            store.authenticate(presented)
            times[name].append(time.perf_counter() - start)
    # The fastest of 20 tries: other work on the machine only ever adds time, so the minimum is the cost
    # of the code path itself (a median still moved 50% on a loaded 2-core machine).
    ratio = min(times["unknown"]) / min(times["known"])
    assert 0.8 <= ratio <= 1.2, times


def test_grpc_peer_addresses_match_what_rest_sees() -> None:
    from ocrpipe.server.security.grpc_auth import peer_host

    assert peer_host("ipv4:127.0.0.1:50231") == "127.0.0.1"
    assert peer_host("ipv6:[::1]:50231") == "::1"
    assert peer_host("unix:/tmp/sock") == "unix:/tmp/sock"


def test_audit_entries_that_cannot_be_stored_are_counted_and_logged(engine: Engine,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Policy: the request an entry describes is not undone; the lost entry is logged as an error and counted
    (``ocrpipe_audit_write_failures``)."""
    from ocrpipe.server.security.audit import AuditLog, audit_write_failures

    audit = AuditLog(engine, background=True)
    before = audit_write_failures()
    audit.record("read_job", principal=None, job_id="j1")
    assert audit.flush() and audit_write_failures() == before
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_log"))  # every write fails from here on, as on a full disk
    with caplog.at_level("ERROR", logger="ocrpipe.server.security.audit"):
        audit.record("read_job", principal=None, job_id="j2")
        audit.record("delete_job", principal=None, job_id="j2")
        assert audit.flush()
    audit.close()
    assert audit_write_failures() - before == 2
    messages = [r.getMessage() for r in caplog.records]
    assert messages and set(messages) == {"audit write failed"}, messages  # one per batch written
