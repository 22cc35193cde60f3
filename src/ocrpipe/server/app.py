"""The FastAPI application: lifespan (models, database, workers, the gRPC ingestion server), middleware and
routes."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocrpipe import __version__
from ocrpipe.errors import ErrorCode
from ocrpipe.server import errors
from ocrpipe.server.http import docs
from ocrpipe.server.http.deps import ServiceState
from ocrpipe.server.intake import QueueGate
from ocrpipe.server.logconfig import request_id_var
from ocrpipe.server.metrics import Metrics
from ocrpipe.server.notifier import Notifier
from ocrpipe.server.scheduling.engine import OcrEngine
from ocrpipe.server.scheduling.jobs import FinishedSignal, JobRunner
from ocrpipe.server.scheduling.template_drafts import TemplateDrafts
from ocrpipe.server.scheduling.template_jobs import TemplateJobRunner, TemplateLibrary
from ocrpipe.server.security import install as install_security
from ocrpipe.server.security.headers import SecurityHeadersMiddleware
from ocrpipe.server.settings import ServiceSettings
from ocrpipe.server.storage.db import get_engine, migrate
from ocrpipe.server.storage.jobs import JobStore

log = logging.getLogger("ocrpipe.server")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ServiceSettings = app.state.settings
    metrics: Metrics = app.state.metrics
    db = get_engine(settings.db_url)
    migrate(db)
    store = JobStore(db, settings.upload_dir)
    engine = (getattr(app.state, "engine_factory", None) or OcrEngine)(settings, metrics)
    notifier = Notifier(settings.webhook_url, alert_interval_s=settings.alert_interval_s)
    finished = FinishedSignal()
    runner = JobRunner(settings, store, engine, metrics, notifier, finished=finished)
    templates = TemplateJobRunner(settings, store, engine, metrics, notifier, finished=finished)
    runner.start()  # first: it re-queues jobs of dead processes before any runner claims
    templates.start()
    queue = QueueGate(store, settings.max_queued_jobs, on_refuse=metrics.rejected.labels(reason="jobs").inc,
                      mean_job_s=lambda: _mean(metrics.job_latency), workers=settings.job_workers)
    if settings.template_watch_s:
        templates.library.watch(settings.template_watch_s)
    reload_on_sighup(templates.library)
    grpc_server = start_grpc(app, settings, store, templates, queue)
    app.state.svc = ServiceState(settings, metrics, store, engine, runner, notifier, queue, templates, grpc_server,
                                 templates=templates.library,
                                 drafts=TemplateDrafts(settings.data_dir / "template-drafts", templates.library))
    log.info("service ready", extra={"engine": engine.pipeline.engine_name, "batching": settings.batching,
                                     "database": db.dialect.name, "workers": settings.workers,
                                     "grpc_port": grpc_server.port if grpc_server else None})
    try:
        yield
    finally:
        if grpc_server is not None:
            grpc_server.stop(grace=min(5.0, settings.shutdown_grace_s))
        templates.stop(timeout=0)  # both runners stop claiming now, then share the grace period
        runner.stop(timeout=settings.shutdown_grace_s)
        templates.join(timeout=settings.shutdown_grace_s)
        engine.close()
        runner.join(timeout=5.0)  # interrupted jobs re-queue themselves
        templates.join(timeout=5.0)
        templates.library.close()
        notifier.close()
        db.dispose()
        log.info("service stopped")


def reload_on_sighup(library: TemplateLibrary) -> None:
    """Reload the user templates on SIGHUP (off the event loop); skipped where signals cannot be set
    (not the main thread, or no SIGHUP on this platform)."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, library.reload))
    except (AttributeError, NotImplementedError, RuntimeError, ValueError):
        log.info("no SIGHUP reload here; the template folder is still watched")


def start_grpc(app: FastAPI, settings: ServiceSettings, store: JobStore, runner: JobRunner,
               queue: QueueGate | None = None) -> Any:
    """Start the gRPC ingestion server on ``settings.host:grpc_port`` with the app's security settings.

    A port given explicitly (flag or environment) must be free; when the default port is taken (another
    instance on this machine), the service runs without gRPC and logs why."""
    if not settings.grpc_port:
        return None
    from ocrpipe.server.grpc.server import IngestServer
    from ocrpipe.server.security.settings import SecuritySettings

    state = getattr(app.state, "security", None)
    security = state.settings if state is not None else SecuritySettings()
    try:
        server = IngestServer(settings, security, store, runner, app.state.metrics, security_state=state,
                              queue=queue).start()
    except RuntimeError as exc:  # grpc: "Failed to bind to address ..."
        if "grpc_port" in settings.model_fields_set:
            raise RuntimeError(f"cannot serve gRPC on {settings.host}:{settings.grpc_port}: {exc}") from exc
        log.warning("gRPC port is taken; serving without gRPC (pass --grpc-port)",
                    extra={"grpc_port": settings.grpc_port})
        return None
    log.info("grpc ready", extra={"grpc_port": server.port, "tls": server.tls})
    return server


def _mean(histogram: Any) -> float:
    """Mean of a Prometheus histogram's observations so far (0.0 before the first)."""
    samples = {s.name.rsplit("_", 1)[-1]: s.value for s in histogram.collect()[0].samples
               if s.name.endswith(("_sum", "_count"))}
    return samples.get("sum", 0.0) / samples["count"] if samples.get("count") else 0.0


def create_app(settings: ServiceSettings | None = None, *,
               engine_factory: Callable[[ServiceSettings, Metrics], OcrEngine] | None = None) -> FastAPI:
    """Build the app; models and database are opened when the app starts (lifespan), not here.

    ``engine_factory`` makes the app's :class:`OcrEngine` (default: the in-process one; the Ray ingress
    passes one whose pages run on the cluster's deployments)."""
    from ocrpipe.server.http import include_routes

    settings = settings or ServiceSettings()
    app = FastAPI(
        title="ocrpipe", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
        description="Self-hosted OCR for Korean and English documents. Errors are "
                    '`{"error": {"code", "message"}}` with a fitting HTTP status.',
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.engine_factory = engine_factory
    errors.install(app)
    include_routes(app)
    docs.install(app)
    install_security(app)  # keys, scopes, tenants, audit log
    static = resources.files("ocrpipe.server.http") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes + 256 * 1024)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    app.add_middleware(SecurityHeadersMiddleware)
    return app


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413 before they fill memory or disk."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(send, int(length))
            return
        seen = 0
        too_large = False
        replaced = False

        async def limited_receive() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # The framework may turn the aborted body read into its own error response: replace it.
            nonlocal replaced
            if not too_large:
                await send(message)
            elif message["type"] == "http.response.start":
                replaced = True
                await self._reject(send, seen)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            if not replaced:
                await self._reject(send, seen)

    async def _reject(self, send: Send, size: int) -> None:
        body = json.dumps(errors.error_body(
            ErrorCode.FILE_TOO_LARGE.value,
            f"request body is {size}+ bytes; the limit is {self.max_bytes} bytes")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Request id (``X-Request-ID`` in/out), one JSON access-log line per request, request metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex[:16]
        token = request_id_var.set(rid)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, status, time.perf_counter() - start)
            request_id_var.reset(token)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or ("/static" if scope["path"].startswith("/static")
                                                               else "unmatched")
        self.metrics.requests.labels(method=scope["method"], route=route, status=str(status)).inc()
        self.metrics.request_latency.labels(route=route).observe(seconds)
        if route not in ("/metrics", "/healthz", "/static"):
            extra: dict[str, Any] = {"method": scope["method"], "route": route, "status": status,
                                     "duration_ms": round(seconds * 1000, 1)}
            log.info("request", extra=extra)
