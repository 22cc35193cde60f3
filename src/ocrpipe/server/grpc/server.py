"""The gRPC ingestion service (``ocrpipe.v1.Ingest``) and the server that ``ocrpipe serve`` runs beside REST.

``Submit`` checks the upload cheaply (magic bytes, size, the image header's pixel count — never a full
decode), stores it durably as a ``template`` job and answers; the template runner reads it in the
background. ``GetResult`` and ``WatchResults`` read the same job store. Every call is counted by
:class:`~ocrpipe.server.grpc.metrics.MetricsInterceptor` (the service's ``/metrics``) and then goes through
:class:`~ocrpipe.server.security.grpc_auth.AuthInterceptor` (keys, scopes, rate limits); the servicer restricts
reads to the caller's tenant and writes the audit log. Errors carry a stable code in the trailing metadata
``ocrpipe-error-code`` (README, "Errors"), from :func:`ocrpipe.server.errors.failure`. The upload, queue and
idempotency checks are :mod:`ocrpipe.server.intake`'s, shared with REST.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ocrpipe.errors import ErrorCode, OcrError
from ocrpipe.protocol import ingest_pb2, ingest_pb2_grpc
from ocrpipe.server.errors import ServiceError, failure, grpc_abort
from ocrpipe.server.grpc.metrics import MetricsInterceptor
from ocrpipe.server.intake import QueueGate, check_upload, scoped_idempotency_key
from ocrpipe.server.metrics import Metrics
from ocrpipe.server.scheduling.jobs import JobRunner
from ocrpipe.server.scheduling.template_jobs import value_text
from ocrpipe.server.security.auth import SecurityState
from ocrpipe.server.security.grpc_auth import AuthInterceptor, add_port, current_principal
from ocrpipe.server.security.keys import Principal
from ocrpipe.server.security.settings import SecuritySettings
from ocrpipe.server.settings import ServiceSettings
from ocrpipe.server.storage.jobs import IdempotencyConflict, JobStore, as_utc
from ocrpipe.server.storage.models import Job, JobKind, JobStatus

log = logging.getLogger(__name__)

SERVICE_NAME = "ocrpipe.v1.Ingest"
JOB_ID = re.compile(r"[0-9a-f]{32}")
MAX_WATCH_IDS = 1000
WATCH_BATCH = 100
WATCH_LOOKBACK = timedelta(seconds=10)
"""Results are re-queried this far behind the newest one sent: a job whose finishing transaction committed
after a later-stamped one is still delivered (each job once)."""
_LIMITS = {"filename": 255, "device": 128, "exam_id": 128, "idempotency_key": 255}

Audit = Callable[[str, Principal | None, str | None, int], None]


def _internal(context: grpc.ServicerContext, method: str, exc: Exception) -> NoReturn:
    log.exception("grpc call failed", extra={"method": method})
    grpc_abort(context, exc)


def _ms(value: datetime | None) -> int:
    v = as_utc(value)
    return int(v.timestamp() * 1000) if v is not None else 0


def to_result(job: Job) -> ingest_pb2.JobResult:
    """The protobuf view of a job row (fields from its stored result document)."""
    out = ingest_pb2.JobResult(job_id=job.id, status=job.status, exam_id=job.exam_id or "",
                               device=job.device or "", submitted_unix_ms=_ms(job.created_at),
                               finished_unix_ms=_ms(job.finished_at))
    if job.status == JobStatus.FAILED.value:
        out.error_code = job.error_code or ErrorCode.JOB_FAILED.value
        out.error_message = job.error_message or ""
    if not job.result_json:
        return out
    body: dict[str, Any] = json.loads(job.result_json)
    out.mode = body.get("mode") or "pipeline"  # REST OCR jobs store a plain Document
    out.template = body.get("template") or ""
    out.device = out.device or body.get("device") or ""
    out.reason = body.get("reason") or ""
    out.valid = out.mode == "template" and bool(body.get("valid"))
    out.result_json = job.result_json
    for f in body.get("fields", []) if out.mode == "template" else []:
        out.fields.append(ingest_pb2.FieldValue(
            name=f["name"], value=value_text(f.get("value")) or "", unit=f.get("unit") or "",
            valid=bool(f.get("valid")), confidence=float(f.get("confidence") or 0.0), raw=f.get("raw") or "",
            issues=[str(i) for i in f.get("issues", [])], type=f.get("type") or ""))
    return out


MAX_UNIX_MS = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp() * 1000)
"""The latest ``since_unix_ms`` a datetime can hold."""


class IngestServicer(ingest_pb2_grpc.IngestServicer):
    """Submit / GetResult / WatchResults on the service's job store; ``runner`` runs the template jobs."""

    def __init__(self, settings: ServiceSettings, store: JobStore, runner: JobRunner, audit: Audit,
                 queue: QueueGate) -> None:
        self.settings = settings
        self.store = store
        self.runner = runner
        self.audit = audit
        self.queue = queue
        self.closing = threading.Event()
        self._watchers = threading.BoundedSemaphore(max(1, settings.grpc_workers - 2))

    def close(self) -> None:
        """Refuse new submissions and end every result stream (the server is stopping)."""
        self.closing.set()
        self.runner.finished.notify()

    # ---- Submit ------------------------------------------------------------------------------------

    def Submit(self, request: ingest_pb2.SubmitRequest,  # noqa: N802 - gRPC method name
               context: grpc.ServicerContext) -> ingest_pb2.SubmitReply:
        principal = current_principal()
        try:
            reply = self._submit(request, principal)
        except OcrError as exc:  # refusals with a code: input, queue, storage_full, shutting down
            self.audit("submit_job", principal, None, failure(exc).grpc_status.value[0])
            grpc_abort(context, exc)
        except Exception as exc:  # noqa: BLE001 - answered as INTERNAL, logged without content
            _internal(context, "Submit", exc)
        self.audit("submit_job", principal, reply.job_id, 0)
        return reply

    def _submit(self, request: ingest_pb2.SubmitRequest, principal: Principal | None) -> ingest_pb2.SubmitReply:
        if self.closing.is_set():
            raise ServiceError(ErrorCode.SHUTTING_DOWN, "the server is stopping; retry")
        media = self._check_upload(request)
        self.queue.check()
        key = scoped_idempotency_key(principal.tenant if principal else None, request.idempotency_key, "grpc")
        try:
            job, created = self.store.create(
                request.image, filename=request.filename or None, content_type=media, idempotency_key=key,
                tenant=principal.tenant if principal else None, submitted_by=principal.name if principal else None,
                kind=JobKind.TEMPLATE.value, device=request.device or None, exam_id=request.exam_id or None)
        except IdempotencyConflict as exc:
            raise ServiceError(ErrorCode.IDEMPOTENCY_CONFLICT,
                               "this idempotency_key was used before with other image bytes") from exc
        if created:
            self.queue.created()
            self.runner.wake()
            log.info("printout queued", extra={"job_id": job.id, "size_bytes": len(request.image)})
        return ingest_pb2.SubmitReply(job_id=job.id, created=created, status=job.status)

    def _check_upload(self, request: ingest_pb2.SubmitRequest) -> str:
        """The upload's media type, after the metadata limits and the shared intake checks (no decoding)."""
        for name, limit in _LIMITS.items():
            value: str = getattr(request, name)
            if len(value) > limit or "\x00" in value:
                raise ServiceError(ErrorCode.INVALID_ARGUMENT,
                                   f"{name} must be at most {limit} characters without NUL")
        return check_upload(request.image, "image", limits=self.settings.limits(), dpi=self.settings.pdf_dpi)

    # ---- GetResult ---------------------------------------------------------------------------------

    def GetResult(self, request: ingest_pb2.GetResultRequest,  # noqa: N802 - gRPC method name
                  context: grpc.ServicerContext) -> ingest_pb2.JobResult:
        principal = current_principal()
        job_id = request.job_id if JOB_ID.fullmatch(request.job_id) else None
        try:
            job = self.store.job(job_id, principal.tenant if principal else None) if job_id else None
        except Exception as exc:  # noqa: BLE001
            _internal(context, "GetResult", exc)
        if job is None:
            self.audit("read_result", principal, job_id, grpc.StatusCode.NOT_FOUND.value[0])
            grpc_abort(context, ServiceError(ErrorCode.JOB_NOT_FOUND,
                                             "no such job (unknown or past retention)"))
        self.audit("read_result", principal, job.id, 0)
        return to_result(job)

    # ---- WatchResults ------------------------------------------------------------------------------

    def WatchResults(self, request: ingest_pb2.WatchRequest,  # noqa: N802 - gRPC method name
                     context: grpc.ServicerContext) -> Iterator[ingest_pb2.JobResult]:
        if len(request.job_ids) > MAX_WATCH_IDS:
            grpc_abort(context, ServiceError(ErrorCode.INVALID_ARGUMENT,
                                             f"at most {MAX_WATCH_IDS} job_ids per stream"))
        if request.since_unix_ms > MAX_UNIX_MS:
            grpc_abort(context, ServiceError(ErrorCode.INVALID_ARGUMENT,
                                             f"since_unix_ms {request.since_unix_ms} lies past the year 9999"))
        if not self._watchers.acquire(blocking=False):
            grpc_abort(context, ServiceError(ErrorCode.TOO_MANY_REQUESTS,
                                             "too many open result streams; retry later"))
        try:
            context.add_callback(self.runner.finished.notify)  # wake the loop when the client goes away
            yield from _Watch(self, request, current_principal()).run(context)
        except ServiceError as exc:
            grpc_abort(context, exc)
        except Exception as exc:  # noqa: BLE001
            if context.is_active():
                _internal(context, "WatchResults", exc)
        finally:
            self._watchers.release()


@dataclass
class _Watch:
    """One result stream: keyset pagination over ``(finished_at, id)`` with a short look-back window."""

    servicer: IngestServicer
    request: ingest_pb2.WatchRequest
    principal: Principal | None

    def run(self, context: grpc.ServicerContext) -> Iterator[ingest_pb2.JobResult]:
        svc, tenant = self.servicer, (self.principal.tenant if self.principal else None)
        since = datetime.fromtimestamp(max(0, self.request.since_unix_ms) / 1000, UTC)
        pending: set[str] | None = None
        if self.request.job_ids:
            pending = svc.store.existing([i for i in self.request.job_ids if JOB_ID.fullmatch(i)], tenant)
        kinds = None if pending is not None else (JobKind.TEMPLATE.value,)
        newest = since
        sent: dict[str, datetime] = {}
        finished = svc.runner.finished
        while context.is_active() and not svc.closing.is_set() and pending != set():
            seen = finished.count
            low = max(since, newest - WATCH_LOOKBACK)
            limit = WATCH_BATCH + len(sent)
            rows = svc.store.finished(after=(low, ""), tenant=tenant, kinds=kinds, job_ids=pending, limit=limit)
            fresh = [j for j in rows if j.id not in sent]
            for job in fresh:
                svc.audit("watch_result", self.principal, job.id, 0)
                yield to_result(job)
                finished_at = as_utc(job.finished_at) or since
                sent[job.id] = finished_at
                newest = max(newest, finished_at)
                if pending is not None:
                    pending.discard(job.id)
            cutoff = newest - WATCH_LOOKBACK
            sent = {k: v for k, v in sent.items() if v >= cutoff}
            if len(rows) >= limit:
                continue  # more backlog: no waiting
            if pending and not fresh:
                pending &= svc.store.existing(pending, tenant)  # deleted meanwhile: stop waiting for them
            finished.wait(seen, svc.settings.poll_interval_s)
        if svc.closing.is_set() and pending != set():  # not a normal end: the client should watch again
            raise ServiceError(ErrorCode.SHUTTING_DOWN, "the server is stopping; watch again")


# ---- server ------------------------------------------------------------------------------------------


def bind_address(host: str, port: int) -> str:
    """``host:port`` for gRPC, with IPv6 literals in brackets."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class IngestServer:
    """The gRPC server of ``ocrpipe serve``: Ingest + health, keys and TLS as for REST, metrics in ``metrics``."""

    def __init__(self, settings: ServiceSettings, security: SecuritySettings, store: JobStore,
                 runner: JobRunner, metrics: Metrics, *, security_state: SecurityState | None = None,
                 queue: QueueGate | None = None) -> None:
        self.interceptor = AuthInterceptor(store.engine, security, state=security_state)
        options = [
            ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not share it
            ("grpc.max_receive_message_length", settings.max_upload_bytes + 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ]
        # Metrics first: the first interceptor wraps the rest, so calls refused by auth are counted too.
        self.server = grpc.server(ThreadPoolExecutor(settings.grpc_workers, thread_name_prefix="grpc"),
                                  interceptors=[MetricsInterceptor(metrics), self.interceptor], options=options)
        metrics.grpc_streams.labels(method=f"{SERVICE_NAME}/WatchResults").set(0)  # a series before any stream
        queue = queue or QueueGate(store, settings.max_queued_jobs)
        self.servicer = IngestServicer(settings, store, runner, self._audit, queue)
        self.health = health.HealthServicer()
        ingest_pb2_grpc.add_IngestServicer_to_server(self.servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = add_port(self.server, bind_address(settings.host, settings.grpc_port), security)
        self.tls = security.tls

    def _audit(self, action: str, principal: Principal | None, job_id: str | None, status: int) -> None:
        self.interceptor.record(action, principal, job_id, status)

    def start(self) -> IngestServer:
        self.server.start()
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self

    def stop(self, grace: float) -> None:
        """NOT_SERVING, end result streams, then let running calls finish for ``grace`` seconds."""
        self.health.enter_graceful_shutdown()
        self.servicer.close()
        self.server.stop(grace).wait(grace + 1.0)
        if self.interceptor.audit is not None:
            self.interceptor.audit.close()
