"""Prometheus metrics of one service instance (own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 128, 256)


class Metrics:
    """Every metric the service exports at ``GET /metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("ocrpipe_http_requests_total", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=r)
        self.request_latency = Histogram("ocrpipe_http_request_duration_seconds", "HTTP request latency",
                                         ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.stage_latency = Histogram("ocrpipe_stage_duration_seconds", "Pipeline stage latency per page",
                                       ["stage"], buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("ocrpipe_batch_size", "Crops per recognition batch",
                                    buckets=_BATCH_BUCKETS, registry=r)
        self.batch_callers = Histogram("ocrpipe_batch_callers",
                                       "Callers (pages, line requests) whose crops share one recognition batch",
                                       buckets=_BATCH_BUCKETS, registry=r)
        self.batch_latency = Histogram("ocrpipe_batch_duration_seconds", "Recognition time per batch",
                                       buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("ocrpipe_batcher_queue_depth", "Crops waiting for recognition", registry=r)
        self.inference_restarts = Counter("ocrpipe_inference_thread_restarts_total",
                                          "Inference (batcher) threads that died and were replaced", registry=r)
        self.inference_threads = Gauge("ocrpipe_inference_threads_alive", "Live inference (batcher) threads",
                                       registry=r)
        self.inflight = Gauge("ocrpipe_inflight_requests", "Synchronous OCR requests in progress", registry=r)
        self.rejected = Counter("ocrpipe_rejected_total", "Requests refused by back-pressure", ["reason"],
                                registry=r)
        self.jobs = Counter("ocrpipe_jobs_total", "Finished jobs by outcome", ["outcome"], registry=r)
        self.jobs_queued = Gauge("ocrpipe_jobs_queued", "Jobs waiting to run", registry=r)
        self.job_latency = Histogram("ocrpipe_job_duration_seconds", "Job run time",
                                     buckets=_LATENCY_BUCKETS, registry=r)
        self.audit_failures = Gauge("ocrpipe_audit_write_failures", "Audit entries that could not be stored "
                                    "since start (the requests were answered; see the error log)", registry=r)
        self.errors = Counter("ocrpipe_errors_total", "Errors by stage and code", ["stage", "code"],
                              registry=r)
        # gRPC ingestion: labelled by method and status code only, never by anything from the request.
        self.grpc_calls = Counter("ocrpipe_grpc_calls_total", "gRPC calls by method and status code",
                                  ["method", "code"], registry=r)
        self.grpc_latency = Histogram("ocrpipe_grpc_call_duration_seconds",
                                      "gRPC call latency (a server stream: until it ends)", ["method"],
                                      buckets=_LATENCY_BUCKETS, registry=r)
        self.grpc_streams = Gauge("ocrpipe_grpc_open_streams", "Open gRPC response streams (WatchResults)",
                                  ["method"], registry=r)

    def observe_timings(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            if stage != "total":
                self.stage_latency.labels(stage=stage).observe(ms / 1000.0)

    def on_batch(self, size: int, seconds: float, callers: int = 1) -> None:
        """One recognition call of ``size`` crops that took ``seconds``, pooling ``callers`` callers."""
        self.batch_size.observe(size)
        self.batch_callers.observe(callers)
        self.batch_latency.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
