"""System routes: the web page, liveness, readiness and Prometheus metrics (no key needed)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from ocrpipe.errors import ErrorCode
from ocrpipe.server import errors
from ocrpipe.server.errors import ServiceError
from ocrpipe.server.http.deps import ServiceState
from ocrpipe.server.security.audit import audit_write_failures
from ocrpipe.server.storage.jobs import free_bytes, storage_full

router = APIRouter(tags=["system"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index() -> HTMLResponse:
    """The single-page web UI."""
    page = resources.files("ocrpipe.server.http") / "static" / "index.html"
    return HTMLResponse(page.read_text(encoding="utf-8"))


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    """Always ok while the process answers."""
    return {"status": "ok"}


@router.get("/readyz", summary="Models loaded and database reachable")
async def readyz(request: Request) -> JSONResponse:
    """503 while models load, when the database does not answer or when the batcher cannot keep its
    inference threads alive; else the engine and models in use."""
    svc: ServiceState | None = getattr(request.app.state, "svc", None)
    if svc is None:
        return errors.error_response(ServiceError(ErrorCode.NOT_READY, "models are loading"))
    try:
        await run_in_threadpool(svc.store.ping)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return errors.error_response(ServiceError(ErrorCode.DATABASE_UNAVAILABLE, type(exc).__name__))
    free = await run_in_threadpool(free_bytes, svc.store.upload_dir)
    if free < svc.settings.min_free_mb * 1024 * 1024:
        return errors.error_response(storage_full(f"the data directory has {free // 2**20} MB free, under "
                                                  f"the {svc.settings.min_free_mb:g} MB minimum"))
    if not svc.engine.healthy:
        return errors.error_response(ServiceError(ErrorCode.INFERENCE_UNAVAILABLE,
                                                  "the batcher cannot keep its inference threads alive"))
    return JSONResponse({"status": "ready", "engine": svc.engine.pipeline.engine_name,
                         "batching": svc.settings.batching, "models": svc.engine.models,
                         "database": svc.store.engine.dialect.name})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """The Prometheus text exposition of the service's metrics."""
    svc: ServiceState = request.app.state.svc
    if svc.engine.batcher is not None:
        svc.metrics.queue_depth.set(svc.engine.batcher.depth)
        svc.metrics.inference_threads.set(svc.engine.batcher.alive_threads)
    svc.metrics.audit_failures.set(audit_write_failures())
    return Response(svc.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
