"""The dependencies of the REST routes, declared once: the authorisation hook, the service state (the
:class:`ServiceState` the app's lifespan creates), the caller and the synchronous-OCR slot.

Access control (API keys, scopes, rate limits) lives in :mod:`ocrpipe.server.security.auth`; tests and
deployments may replace :func:`authorize` via ``app.dependency_overrides``.
"""

from __future__ import annotations

import collections
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from ocrpipe.errors import ErrorCode
from ocrpipe.server.errors import ServiceError
from ocrpipe.server.intake import QueueGate
from ocrpipe.server.metrics import Metrics
from ocrpipe.server.notifier import Notifier
from ocrpipe.server.retry import sync_wait
from ocrpipe.server.scheduling.engine import OcrEngine
from ocrpipe.server.scheduling.jobs import JobRunner
from ocrpipe.server.security.auth import Principal, check_request
from ocrpipe.server.settings import ServiceSettings
from ocrpipe.server.storage.jobs import JobStore


@dataclass
class ServiceState:
    """Everything the routes need, created once in the app's lifespan (``app.state.svc``)."""

    settings: ServiceSettings
    metrics: Metrics
    store: JobStore
    engine: OcrEngine
    runner: JobRunner
    notifier: Notifier
    queue: QueueGate
    """The queued-jobs limit, shared with gRPC ``Submit``."""
    template_runner: JobRunner | None = None
    grpc: Any = None
    """The running :class:`ocrpipe.server.grpc.server.IngestServer` (None: gRPC off or its default port taken)."""
    templates: Any = None
    """The served :class:`~ocrpipe.server.scheduling.template_jobs.TemplateLibrary` (None: no template runner)."""
    drafts: Any = None
    """The web page's template drafts (:class:`~ocrpipe.server.scheduling.template_drafts.TemplateDrafts`)."""
    inflight: int = 0
    sync_s: float = 1.0
    """Moving average of a synchronous OCR request's duration (the throughput side of a refusal's
    ``Retry-After``)."""
    running: dict[int, float] = field(default_factory=dict)
    """Start time (monotonic) of each synchronous request in flight, by a token of its own."""
    promised: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=10_000))
    """When each recently refused synchronous request was told to come back (the would-be retriers)."""
    started: float = field(default_factory=time.time)


async def authorize(request: Request) -> None:
    """Dependency of every ``/v1`` route: sets ``request.state.principal`` or raises an auth error."""
    request.state.principal = await check_request(request.app, request.method, request.url.path,
                                                  request.headers, request.client.host if request.client else None)


def state(request: Request) -> ServiceState:
    """The running service's state (models, store, runners), made in the app's lifespan."""
    svc: ServiceState = request.app.state.svc
    return svc


def current_principal(request: Request) -> Principal | None:
    """The authenticated caller of this request (None when auth is not enforced)."""
    return getattr(request.state, "principal", None)


async def inflight_slot(request: Request) -> AsyncIterator[None]:
    """Bound concurrent synchronous OCR requests; beyond the bound answer 429 + Retry-After
    (:func:`~ocrpipe.server.retry.sync_wait`: the requests in flight, the clients refused before and not yet
    due back, the measured mean duration)."""
    svc = state(request)
    now = time.monotonic()
    if svc.inflight >= svc.settings.max_inflight:
        svc.metrics.rejected.labels(reason="inflight").inc()
        while svc.promised and svc.promised[0] <= now:
            svc.promised.popleft()
        wait = sync_wait([now - s for s in svc.running.values()], svc.sync_s, len(svc.promised))
        svc.promised.append(now + wait)
        raise ServiceError(ErrorCode.TOO_MANY_REQUESTS, f"{svc.inflight} OCR requests are in progress; retry in "
                           f"{wait:.0f} s", retry_after=wait)
    svc.inflight += 1
    svc.metrics.inflight.set(svc.inflight)
    token = id(request)
    svc.running[token] = now
    try:
        yield
    finally:
        svc.inflight -= 1
        svc.metrics.inflight.set(svc.inflight)
        svc.running.pop(token, None)
        svc.sync_s = 0.8 * svc.sync_s + 0.2 * (time.monotonic() - now)


Authorized = Depends(authorize)
State = Annotated[ServiceState, Depends(state)]
Caller = Annotated[Principal | None, Depends(current_principal)]
Slot = Depends(inflight_slot)
