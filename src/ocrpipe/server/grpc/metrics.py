"""Prometheus metrics of the gRPC server: calls by method and status code, latency by method, open streams.

:class:`MetricsInterceptor` must come *before* the auth interceptor in the server's list (the first one
wraps the others), so that calls refused for a missing key, a wrong scope or a rate limit are counted too.
The only labels are the method's full name (``ocrpipe.v1.Ingest/Submit``) and the gRPC status name: nothing
from the request — job ids, tenants, key names, devices, exam ids, file names — ever becomes a label, so the
metrics carry no patient data and their number of series stays fixed. Calls to methods the server does not
have are not counted: their names come from the caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from ocrpipe.server.metrics import Metrics


class MetricsInterceptor(grpc.ServerInterceptor):
    """Counts and times every call of a known method, and keeps the number of open response streams."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:  # gRPC answers UNIMPLEMENTED itself
            return None
        method = str(details.method).lstrip("/")
        fields = {}
        for kind in ("unary_unary", "stream_unary", "unary_stream", "stream_stream"):
            behavior = getattr(handler, kind)
            if behavior is not None:
                fields[kind] = (self._stream if kind.endswith("_stream") else self._unary)(behavior, method)
        return handler._replace(**fields)

    def _unary(self, behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            code = grpc.StatusCode.UNKNOWN
            try:
                response = behavior(request, context)
                code = _status(context, grpc.StatusCode.OK)
                return response
            except BaseException:
                code = _status(context, grpc.StatusCode.UNKNOWN)  # aborted: the code abort() set
                raise
            finally:
                self._observe(method, code, start)

        return unary

    def _stream(self, behavior: Callable[..., Any], method: str) -> Callable[..., Iterator[Any]]:
        def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            start = time.perf_counter()
            code = grpc.StatusCode.UNKNOWN
            gauge = self.metrics.grpc_streams.labels(method=method)
            gauge.inc()
            try:
                yield from behavior(request, context)
                # A stream that ends because its client went away (cancel, deadline) ends "normally" here.
                code = _status(context, grpc.StatusCode.OK if context.is_active() else grpc.StatusCode.CANCELLED)
            except GeneratorExit:  # gRPC stopped reading: the client went away mid-stream
                code = grpc.StatusCode.CANCELLED
                raise
            except BaseException:
                code = _status(context, grpc.StatusCode.UNKNOWN)
                raise
            finally:
                gauge.dec()
                self._observe(method, code, start)

        return stream

    def _observe(self, method: str, code: grpc.StatusCode, start: float) -> None:
        self.metrics.grpc_calls.labels(method=method, code=code.name).inc()
        self.metrics.grpc_latency.labels(method=method).observe(time.perf_counter() - start)


def _status(context: grpc.ServicerContext, default: grpc.StatusCode) -> grpc.StatusCode:
    """The status the call ends with: the one ``abort()``/``set_code()`` set, else ``default``."""
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else default
