"""``ocrpipe serve --ray ADDRESS``: the OCR service as three Ray Serve deployments.

* **ingress** — the service's own FastAPI app (:func:`ocrpipe.server.app.create_app`: the same ``/v1``
  routes, API keys, limits, job store and job workers), its :class:`OcrEngine` replaced by
  :class:`ClusterEngine`: the app's page threads hand each rendered page to the detector deployment instead
  of running it themselves. Jobs live in PostgreSQL (SQLite is refused), so every ingress replica's job
  workers, on any node, claim them with ``SELECT … FOR UPDATE SKIP LOCKED``.
* **detector** — the engine's page path (:meth:`Pipeline.trace_page`: preprocess, detect, crop, orient,
  order; Tesseract's re-reads of doubtful lines) with the neural model's calls sent to the recogniser.
* **recogniser** — the neural model behind ``@serve.batch``: crops of all pages and requests meet in
  batches of at most ``--max-batch-size`` crops, closed after ``--max-wait-ms``, with
  ``--ray-max-concurrent-batches`` batches at once (the in-process batcher's role).

Replica counts and autoscaling come from :class:`~ocrpipe.cluster.settings.RaySettings`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from ray import serve

from ocrpipe.cluster.settings import RaySettings
from ocrpipe.document import Page, RecResult
from ocrpipe.engine.recognize import Recognizer
from ocrpipe.errors import ErrorCode, OcrError
from ocrpipe.server.metrics import Metrics
from ocrpipe.server.scheduling.engine import OcrEngine, detection_json
from ocrpipe.server.scheduling.recognizers import batch_neural
from ocrpipe.server.settings import ServiceSettings

log = logging.getLogger("ocrpipe.cluster")
APP_NAME = "ocrpipe"


RETRIES = 3
"""Attempts of a deployment call whose replica or node died under it (every call here is a pure function of
its arguments, so running it again is safe); Serve routes the next attempt to a live replica."""

RESEND_WAIT_S = 30.0
"""How long the calls sent again after a replica's death wait, in all, for a live replica to answer them."""


class Patience:
    """How long the calls of one unit of work (a page, or one page's crops) wait for their replicas: ``wait_s``
    from its start, then :data:`RESEND_WAIT_S` from the last replica death. Serve's router holds a call without
    end while its deployment has no live replica and none can be placed (a lost node's CPUs), so every wait is
    bounded here."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        self.until = time.monotonic() + wait_s
        self.deaths = 0

    def left_s(self) -> float:
        """Seconds the next wait may last."""
        return max(0.0, self.until - time.monotonic())

    def died(self) -> None:
        """A replica died under one of the calls: the resends get :data:`RESEND_WAIT_S` from now."""
        self.deaths += 1
        self.until = time.monotonic() + RESEND_WAIT_S

    def expired(self, deployment: str) -> OcrError:
        """The error of a call no replica answered in time: ``replica_lost`` after a death, else
        ``deadline_exceeded``."""
        if self.deaths:
            return OcrError(ErrorCode.REPLICA_LOST, f"no live {deployment} replica answered within "
                                                   f"{RESEND_WAIT_S:g} s of a replica's death; retry the request")
        return OcrError(ErrorCode.DEADLINE_EXCEEDED, f"no {deployment} replica answered within {self.wait_s:g} s")


def _call(send: Callable[[], Any], patience: Patience, deployment: str) -> Any:
    """The result of the deployment call ``send()`` starts (blocking; page threads only), re-raising the
    replica's own exception (an :class:`OcrError` keeps its code and stage) rather than Ray's wrapper, and
    sending it again when the replica or its node died; after ``RETRIES`` such deaths, ``replica_lost``
    (503: the client may retry). No wait outlasts ``patience`` (the call is then cancelled)."""
    import ray.exceptions
    import ray.serve.exceptions

    lost = (ray.exceptions.RayActorError, ray.exceptions.NodeDiedError, ray.exceptions.WorkerCrashedError,
            ray.exceptions.ObjectLostError, ray.serve.exceptions.ReplicaUnavailableError)
    for attempt in range(1, RETRIES + 1):
        response = send()
        try:
            return response.result(timeout_s=patience.left_s())
        except lost as exc:
            if attempt == RETRIES:
                raise OcrError(ErrorCode.REPLICA_LOST, f"the replicas working on this page died {RETRIES} times "
                                                       f"(last: {type(exc).__name__}); retry the request") from exc
            log.warning("a replica died under a call; sending it again", extra={"attempt": attempt})
            patience.died()
            time.sleep(0.5 * attempt)
        except Exception as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            if isinstance(exc, TimeoutError):  # our own bound (a replica's TimeoutError comes with a cause)
                response.cancel()
                raise patience.expired(deployment) from exc
            raise
    raise AssertionError("unreachable")


def neural_of(recognizer: Recognizer) -> Recognizer | None:
    """The neural model a recogniser batches (a hybrid's primary, a CTC model itself; Tesseract: none), as
    :func:`~ocrpipe.server.scheduling.recognizers.batch_neural` picks it."""
    from ocrpipe.engine.recognize.ctc import CTCRecognizer
    from ocrpipe.engine.recognize.hybrid import HybridRecognizer

    if isinstance(recognizer, HybridRecognizer):
        return recognizer.primary
    return recognizer if isinstance(recognizer, CTCRecognizer) else None


class RecognizerDeployment:
    """The recogniser deployment: the neural model, its calls pooled by ``@serve.batch``."""

    def __init__(self, settings: ServiceSettings, cluster: RaySettings) -> None:
        from ocrpipe.engine.recognize import load_recognizer
        from ocrpipe.settings import pipeline_config

        config = pipeline_config(settings)
        model = neural_of(load_recognizer(config.recognizer, config.session, tesseract_threads=1))
        if model is None:
            raise OcrError(ErrorCode.INVALID_ARGUMENT, f"{settings.recognizer} has no neural model to batch")
        self.model = model
        self.pool = ThreadPoolExecutor(cluster.ray_max_concurrent_batches, thread_name_prefix="ocr-rec")
        self.batches = 0
        # decorated here, not on the class: its limits are settings
        self._batched = serve.batch(max_batch_size=settings.max_batch_size,
                                    batch_wait_timeout_s=settings.max_wait_ms / 1000.0,
                                    max_concurrent_batches=cluster.ray_max_concurrent_batches)(self._run)

    async def _run(self, crops: list[np.ndarray]) -> list[RecResult]:
        self.batches += 1
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.model.recognize, crops)

    async def recognize(self, crop: np.ndarray) -> RecResult:
        """One crop's reading, computed in a batch with other callers' crops."""
        result: RecResult = await self._batched(crop)
        return result


class RemoteBatch:
    """The detector's side of the recogniser deployment: one call per crop, all sent before any is awaited,
    so a page's crops land in the same batches."""

    def __init__(self, handle: Any, wait_s: float) -> None:
        self.handle = handle
        self.wait_s = wait_s

    def __call__(self, items: Sequence[np.ndarray]) -> list[RecResult]:
        patience = Patience(self.wait_s)  # one bound for the page's crops, which are read side by side
        sends = [_Resend(self.handle, np.ascontiguousarray(c)) for c in items]  # all sent before any wait
        return [_call(send, patience, "recognizer") for send in sends]


class _Resend:
    """One crop's recogniser call: sent at once; called again (a retry), it sends the crop anew."""

    def __init__(self, handle: Any, crop: np.ndarray) -> None:
        self.handle = handle
        self.crop = crop
        self.pending: Any = handle.recognize.remote(crop)

    def __call__(self) -> Any:
        response, self.pending = self.pending, None
        return response if response is not None else self.handle.recognize.remote(self.crop)


class DetectorDeployment:
    """The detector deployment: the page path of :class:`Pipeline`, recognition through the recogniser."""

    def __init__(self, settings: ServiceSettings, recognizer: Any) -> None:
        from ocrpipe.engine.pipeline import Pipeline
        from ocrpipe.settings import pipeline_config

        pipeline = Pipeline(pipeline_config(settings))
        if recognizer is not None:
            remote = RemoteBatch(recognizer, settings.sync_timeout_s)
            batched, _ = batch_neural(pipeline.recognizer, lambda neural: remote)
            pipeline = pipeline.with_recognizer(batched)
        self.pipeline = pipeline
        self.pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="ocr-page")

    async def _offload(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def _page(self, image: np.ndarray, index: int) -> tuple[Page, dict[str, float]]:
        trace = self.pipeline.trace_page(image, index)
        return trace.page, trace.timings_ms

    async def page(self, image: np.ndarray, index: int) -> tuple[Page, dict[str, float]]:
        """One rendered page through every stage after decoding: its Page and stage times."""
        result: tuple[Page, dict[str, float]] = await self._offload(self._page, image, index)
        return result

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        prepared, det = self.pipeline.find_text(image)
        timings = {"preprocess": prepared.elapsed_ms, "detect": det.elapsed_ms}
        return np.asarray(prepared.to_original(det.quads)), np.asarray(det.scores), timings

    async def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """Text quads (original pixels), their scores and the stage times of one page."""
        result: tuple[np.ndarray, np.ndarray, dict[str, float]] = await self._offload(self._detect, image)
        return result

    async def recognize(self, crops: list[np.ndarray]) -> list[RecResult]:
        """Line images read by the service's recogniser (the neural model batched on the recogniser)."""
        result: list[RecResult] = await self._offload(self.pipeline.recognize, crops)
        return result


class ClusterEngine(OcrEngine):
    """The ingress's engine: the app's scheduler, limits and Documents as in one process, every page's work
    on the detector deployment (no in-process batcher)."""

    def __init__(self, settings: ServiceSettings, metrics: Metrics, detector: Any) -> None:
        self.detector = detector
        self.wait_s = settings.sync_timeout_s  # a page past it is past any synchronous request's budget
        super().__init__(settings.model_copy(update={"batching": False}), metrics)

    def process_page(self, image: np.ndarray, index: int,
                     detected: Callable[[], None] | None = None) -> tuple[Page, dict[str, float]]:
        page, timings = _call(lambda: self.detector.page.remote(image, index), Patience(self.wait_s),
                              "detector")
        if detected is not None:  # the page's memory is held here until the detector answers
            detected()
        self.metrics.observe_timings(timings)
        return page, timings

    def detect_page(self, image: np.ndarray, index: int,
                    detected: Callable[[], None] | None = None) -> tuple[dict[str, Any], dict[str, float]]:
        quads, scores, timings = _call(lambda: self.detector.detect.remote(image), Patience(self.wait_s),
                                       "detector")
        if detected is not None:
            detected()
        self.metrics.observe_timings(timings)
        return detection_json(image, index, quads, scores), timings

    def recognize(self, crops: Sequence[np.ndarray]) -> list[RecResult]:
        start = time.perf_counter()
        batch = [np.ascontiguousarray(c) for c in crops]
        results: list[RecResult] = _call(lambda: self.detector.recognize.remote(batch),
                                          Patience(self.wait_s), "detector")
        self.metrics.on_batch(len(crops), time.perf_counter() - start)
        return results


class IngressDeployment:
    """The ingress deployment: the service's FastAPI app, built in the replica (``__serve_build_asgi_app__``)."""

    def __init__(self, settings: ServiceSettings, security: Any, detector: Any) -> None:
        self.settings = settings
        self.security = security
        self.detector = detector

    def __serve_build_asgi_app__(self) -> Any:
        from ocrpipe.server import security
        from ocrpipe.server.app import create_app

        detector = self.detector
        app = create_app(self.settings,
                         engine_factory=lambda settings, metrics: ClusterEngine(settings, metrics, detector))
        security.configure(app, self.security)
        return app


def build(settings: ServiceSettings, security: Any, cluster: RaySettings) -> Any:
    """The Serve application: ingress → detector → recogniser, sized by ``cluster``."""
    from ocrpipe.engine.recognize import load_recognizer

    has_neural = neural_of(load_recognizer(settings.recognizer, None, tesseract_threads=1)) is not None
    recognizer: Any = None
    if has_neural:
        per_replica = settings.max_batch_size * cluster.ray_max_concurrent_batches
        recognizer = serve.deployment(
            name="recognizer", max_ongoing_requests=2 * per_replica,  # room for the next batch while one runs
            ray_actor_options={"num_cpus": cluster.ray_recognizer_cpus},
            **cluster.replicas(cluster.ray_recognizer_replicas))(RecognizerDeployment).bind(settings, cluster)
    detector = serve.deployment(
        name="detector", max_ongoing_requests=2 * settings.workers,
        ray_actor_options={"num_cpus": cluster.ray_detector_cpus},
        **cluster.replicas(cluster.ray_detector_replicas))(DetectorDeployment).bind(settings, recognizer)
    ingress = serve.deployment(
        name="ingress", num_replicas=cluster.ray_ingress_replicas,
        max_ongoing_requests=max(100, settings.max_inflight * 4),
        ray_actor_options={"num_cpus": cluster.ray_ingress_cpus})(serve.ingress()(IngressDeployment))
    return ingress.bind(settings, security, detector)


def http_options(settings: ServiceSettings, cluster: RaySettings) -> dict[str, Any]:
    """Ray Serve's HTTP proxy options: where it listens, its end-to-end request timeout (answered 408 by
    the proxy) and uvicorn's keep-alive idle timeout (5 s, as ``ocrpipe serve``)."""
    timeout = cluster.ray_request_timeout_s or (settings.header_timeout_s + settings.body_timeout_s
                                                + settings.sync_timeout_s + 60.0)
    return {"host": cluster.ray_http_host or settings.host, "port": settings.port,
            "request_timeout_s": timeout, "keep_alive_timeout_s": 5}


def refuse(settings: ServiceSettings, args: argparse.Namespace) -> str | None:
    """Why these settings cannot run on a cluster (None: they can)."""
    if settings.db_url.startswith("sqlite"):
        return ("a Ray cluster needs a job store every node reaches: pass --database-url "
                "postgresql+psycopg://... (SQLite is one file on one machine); --data-dir (uploads) must be "
                "a folder every node mounts")
    if getattr(args, "tls_cert", None) or getattr(args, "tls_key", None):
        return ("TLS is not served by Ray Serve's HTTP proxies: terminate it at a load balancer in front of "
                "them (--tls-cert/--tls-key apply to `ocrpipe serve` without --ray)")
    return None


def run(args: argparse.Namespace) -> int:
    """Deploy the service on the cluster, wait until it answers, and keep it up until SIGINT/SIGTERM."""
    import ray

    from ocrpipe.server.security.cli import prepare_serve
    from ocrpipe.settings import from_args

    try:
        settings = from_args(ServiceSettings, args)
        cluster = from_args(RaySettings, args)
    except OcrError as exc:
        print(f"ocrpipe serve: {exc.message}", file=sys.stderr)
        return 2
    if (why := refuse(settings, args)) is not None:
        print(f"ocrpipe serve --ray: {why}", file=sys.stderr)
        return 2
    # replicas run in other folders and on other machines: the data folder by its absolute path
    update: dict[str, Any] = {"data_dir": settings.data_dir.resolve()}
    if "grpc_port" not in settings.model_fields_set:  # one port per node, not per replica: only when asked
        update["grpc_port"] = 0
    settings = settings.model_copy(update=update)
    prepared = prepare_serve(args, settings.host, settings.db_url)
    if prepared is None:
        return 2
    security, _ = prepared
    ray.init(address=cluster.ray or "auto", namespace=cluster.ray_namespace, logging_level=logging.WARNING)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve.start(http_options=http_options(settings, cluster))
        serve.run(build(settings, security, cluster), name=APP_NAME, route_prefix="/")
        print(f"ocrpipe serve --ray: serving on http://{cluster.ray_http_host or settings.host}:{settings.port} "
              f"(cluster {cluster.ray or 'auto'})", file=sys.stderr, flush=True)
        stop.wait()
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0
