"""The audit log: who (key name) read, submitted or deleted which job, when, over which transport.

Entries hold ids, names and status codes only — never document content. HTTP requests are recorded by
:class:`SecurityMiddleware` from the matched route; gRPC calls by the gRPC interceptor.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocrpipe.errors import ErrorCode
from ocrpipe.server import errors
from ocrpipe.server.security.auth import AuthError, check_request, security_state
from ocrpipe.server.security.keys import Principal
from ocrpipe.server.storage.db import get_sessionmaker
from ocrpipe.server.storage.security_models import AuditEntry

log = logging.getLogger(__name__)

HTTP_ACTIONS: dict[tuple[str, str], str] = {
    ("POST", "/v1/jobs"): "submit_job",
    ("GET", "/v1/jobs"): "list_jobs",
    ("GET", "/v1/jobs/{job_id}"): "read_job",
    ("GET", "/v1/jobs/{job_id}/result"): "read_result",
    ("GET", "/v1/jobs/{job_id}/pages/{index}"): "read_page",
    ("DELETE", "/v1/jobs/{job_id}"): "delete_job",
    ("POST", "/v1/admin/keys"): "create_key",
    ("DELETE", "/v1/admin/keys/{name}"): "revoke_key",
    ("POST", "/v1/admin/retention/sweep"): "sweep",
    ("GET", "/v1/admin/audit"): "read_audit",
    ("POST", "/v1/template-jobs"): "submit_job",
    ("GET", "/v1/jobs/{job_id}/fields"): "read_fields",
    ("POST", "/v1/admin/templates/drafts"): "create_template_draft",
    ("GET", "/v1/admin/templates/drafts/{draft_id}/reference"): "read_template_draft",
    ("POST", "/v1/admin/templates/drafts/{draft_id}/try"): "try_template",
    ("DELETE", "/v1/admin/templates/drafts/{draft_id}"): "discard_template_draft",
    ("POST", "/v1/admin/templates"): "save_template",
    ("DELETE", "/v1/admin/templates/{name}"): "remove_template",
}


@dataclass(frozen=True)
class AuditRecord:
    """One audit entry as the API returns it."""

    ts: datetime
    key_name: str | None
    tenant: str | None
    action: str
    job_id: str | None
    transport: str
    status: int | None

    def to_dict(self) -> dict[str, Any]:
        ts = self.ts if self.ts.tzinfo else self.ts.replace(tzinfo=UTC)
        return {"ts": ts.isoformat().replace("+00:00", "Z"), "key_name": self.key_name, "tenant": self.tenant,
                "action": self.action, "job_id": self.job_id, "transport": self.transport,
                "status": self.status}


class AuditLog:
    """Append and query audit entries in the service database.

    With ``background=True`` entries are written by one writer thread in batches (one transaction per
    batch), so a request never waits for the audit write; :meth:`flush` waits until everything queued is
    stored (queries call it first) and the queue is flushed at interpreter exit.
    """

    BATCH = 500
    failed_writes = 0
    """Entries that could not be stored, in this process (every AuditLog adds to it; shown in /metrics)."""

    def __init__(self, engine: Engine, *, background: bool = False) -> None:
        self.engine = engine
        self.sessions = get_sessionmaker(engine)
        self._queue: queue.Queue[AuditEntry | None] = queue.Queue(maxsize=100_000)
        self._pending = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
            self._thread.start()
            atexit.register(self.close)

    def record(self, action: str, *, principal: Principal | None, job_id: str | None = None,
               transport: str = "http", status: int | None = None) -> None:
        """Append an entry (queued when the writer thread runs, else written now)."""
        entry = AuditEntry(ts=datetime.now(UTC), key_id=principal.key_id if principal else None,
                           key_name=principal.name if principal else None,
                           tenant=principal.tenant if principal else None, action=action,
                           job_id=(job_id or None) and job_id[:32], transport=transport, status=status)
        if self._thread is None:
            self._write([entry])
            return
        with self._cond:
            self._pending += 1
        self._queue.put(entry)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued entry is stored; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        """Flush and stop the writer thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            self.flush()
            self._queue.put(None)
            self._thread.join(10)

    def _write(self, entries: list[AuditEntry]) -> None:
        with self.sessions.begin() as s:
            s.add_all(entries)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                self._write(batch)
            except Exception as exc:  # noqa: BLE001 - keep the writer alive; the failure is logged
                # Policy: the requests these entries describe have been answered already and are not
                # undone; the loss is logged as an error and counted in /metrics
                # (ocrpipe_audit_write_failures); /readyz reports a data directory low on space.
                AuditLog.failed_writes += len(batch)
                log.error("audit write failed", extra={"entries": len(batch), "error": type(exc).__name__})
            with self._cond:
                self._pending -= len(batch)
                self._cond.notify_all()
            if stop:
                return

    def query(self, *, job_id: str | None = None, key_name: str | None = None,
              limit: int = 100) -> list[AuditRecord]:
        """The newest entries first (after storing everything queued so far)."""
        self.flush()
        q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if job_id:
            q = q.where(AuditEntry.job_id == job_id)
        if key_name:
            q = q.where(AuditEntry.key_name == key_name)
        with self.sessions() as s:
            return [AuditRecord(ts=e.ts, key_name=e.key_name, tenant=e.tenant, action=e.action,
                                job_id=e.job_id, transport=e.transport, status=e.status)
                    for e in s.scalars(q)]


def audit_write_failures() -> int:
    """Audit entries this process could not store (REST and gRPC writers together)."""
    return AuditLog.failed_writes


def audit_log(app: Any) -> AuditLog:
    """The audit log of a running app (the service's database)."""
    engine = app.state.svc.store.engine
    current: AuditLog | None = getattr(app.state, "audit", None)
    if current is None or current.engine is not engine:
        current = app.state.audit = AuditLog(engine, background=True)
    return current


DOC_PATHS = ("/docs", "/redoc", "/openapi.json")


def _guarded(path: str, settings: Any) -> bool:
    """Whether a path outside ``/v1`` needs a key: ``/metrics`` (admin) and the API docs (read) on request."""
    return (path == "/metrics" and settings.metrics_auth) or (path in DOC_PATHS and settings.docs_auth)


class SecurityMiddleware:
    """Refuses NUL bytes in URLs, guards ``/metrics`` when configured, and writes an audit entry for each
    job/admin request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            # PostgreSQL text cannot hold NUL: refuse it at the edge instead of failing in the database
            await _send_error(send, AuthError(ErrorCode.INVALID_ARGUMENT,
                                              "NUL characters are not allowed in the URL"))
            return
        fastapi_app = scope["app"]
        if _guarded(scope["path"], security_state(fastapi_app).settings):
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            try:
                peer = scope.get("client") or (None,)
                await check_request(fastapi_app, scope["method"], scope["path"], headers, peer[0])
            except AuthError as exc:
                await _send_error(send, exc)
                return

        async def audited_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._audit(scope, message)
                message["headers"] = _safe_headers(scope, list(message.get("headers", [])))
            await send(message)

        await self.app(scope, receive, audited_send)

    @staticmethod
    async def _audit(scope: Scope, message: Message) -> None:
        route = getattr(scope.get("route"), "path", None)
        action = HTTP_ACTIONS.get((scope["method"], route or ""))
        if action is None:
            return
        principal = scope.get("state", {}).get("principal")
        status = int(message["status"])
        if status == 401:
            return  # no identity to record; counted in the request metrics
        job_id = (scope.get("path_params") or {}).get("job_id")
        if job_id is None and action == "submit_job":
            job_id = _location_job_id(message)
        audit_log(scope["app"]).record(action, principal=principal, job_id=job_id, status=status)  # queued


def _safe_headers(scope: Scope, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """No caching of API answers (results and page images carry patient data, e.g. on shared clinic
    PCs), no MIME sniffing, and HSTS when served over TLS."""
    names = {k.lower() for k, _ in headers}
    if scope["path"].startswith("/v1/"):
        headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
        headers.append((b"cache-control", b"no-store"))
    if b"x-content-type-options" not in names:
        headers.append((b"x-content-type-options", b"nosniff"))
    if scope.get("scheme") == "https" and b"strict-transport-security" not in names:
        headers.append((b"strict-transport-security", b"max-age=31536000"))
    return headers


def _location_job_id(message: Message) -> str | None:
    for name, value in message.get("headers", []):
        if name.lower() == b"location" and value.startswith(b"/v1/jobs/"):
            return value.decode("latin-1").rsplit("/", 1)[-1]
    return None


async def _send_error(send: Send, exc: AuthError) -> None:
    answer = errors.failure(exc)
    body = json.dumps(answer.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in answer.headers().items()]
    await send({"type": "http.response.start", "status": answer.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
