"""The running service's shared state, created once in the app's lifespan and read by both transports."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ocrpipe.server.metrics import Metrics
from ocrpipe.server.notifier import Notifier
from ocrpipe.server.scheduling.engine import OcrEngine
from ocrpipe.server.scheduling.jobs import JobRunner
from ocrpipe.server.settings import ServiceSettings
from ocrpipe.server.storage.jobs import JobStore


@dataclass
class ServiceState:
    """Everything the routes need, created once in the lifespan."""

    settings: ServiceSettings
    metrics: Metrics
    store: JobStore
    engine: OcrEngine
    runner: JobRunner
    notifier: Notifier
    template_runner: JobRunner | None = None
    grpc: Any = None
    """The running :class:`ocrpipe.server.grpc.server.IngestServer` (None: gRPC off or its default port taken)."""
    inflight: int = 0
    queued_count: int = 0
    queued_checked: float = 0.0
    started: float = field(default_factory=time.time)
