"""``ocrpipe serve``: start the HTTP service (FastAPI on uvicorn)."""

from __future__ import annotations

import argparse
import sys

_FLAGS = ("host", "port", "database_url", "data_dir", "recognizer", "batching", "max_batch_size",
          "max_batch_width", "batch_threads", "max_wait_ms", "workers", "threads", "job_workers", "webhook_url",
          "log_level", "grpc_port", "grpc_workers", "template_workers")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``serve`` subcommand."""
    p = subparsers.add_parser(
        "serve", help="run the OCR web service (REST API, jobs, web page, metrics, gRPC ingestion)",
        description="Run the OCR service. Every option can also be set with an OCRPIPE_<NAME> environment "
                    "variable (e.g. OCRPIPE_MAX_UPLOAD_MB=20); flags win over the environment.")
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--database-url", help="sqlite:///path or postgresql+psycopg://user@host/db "
                                          "(default: SQLite under the data dir)")
    p.add_argument("--data-dir", help="uploads and the SQLite database (default ./ocrpipe-data)")
    p.add_argument("--recognizer", help="auto, tesseract or a CTC model name (default auto)")
    p.add_argument("--batching", action=argparse.BooleanOptionalAction, default=None,
                   help="pool recognition crops across requests (default on)")
    p.add_argument("--max-batch-size", type=int, help="crops per recognition batch (default 32)")
    p.add_argument("--max-batch-width", type=int,
                   help="padded width budget per batch (crops x widest crop at the recogniser's input "
                        "height; default 1024, "
                        "0 = none: use 0 on a GPU)")
    p.add_argument("--batch-threads", type=int, help="inference threads of the batcher (default 2)")
    p.add_argument("--max-wait-ms", type=float, help="longest wait of a batch's first crop (default 10)")
    p.add_argument("--workers", type=int, help="page worker threads: decode/detect concurrency (default 2)")
    p.add_argument("--threads", type=int, help="ONNX Runtime threads per model call (default 1)")
    p.add_argument("--job-workers", type=int, help="background job threads (default 1)")
    p.add_argument("--template-workers", type=int, help="background threads for printout (template) jobs "
                                                          "(default 1)")
    p.add_argument("--grpc-port", type=int, help="gRPC ingestion port on the same host (default 50051; 0 = off); "
                                                 "TLS and API keys as for REST")
    p.add_argument("--grpc-workers", type=int, help="gRPC server threads (default 16)")
    p.add_argument("--webhook-url", help="Slack-compatible webhook for alerts and the daily summary")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    from ocrpipe.server.security.cli import add_serve_arguments

    add_serve_arguments(p)  # --tls-cert/--tls-key/--tls-client-ca, --auth, --insecure, rate limits


def run(args: argparse.Namespace) -> int:
    """Validate the settings, then serve until interrupted. Returns an exit code."""
    import uvicorn
    from pydantic import ValidationError

    from ocrpipe.server import logconfig
    from ocrpipe.server.app import create_app
    from ocrpipe.server.settings import ServiceSettings

    overrides = {k: getattr(args, k) for k in _FLAGS if getattr(args, k, None) is not None}
    try:
        settings = ServiceSettings(**overrides)
    except ValidationError as exc:
        print(f"ocrpipe serve: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    logconfig.configure(settings.log_level, settings.log_json)
    from ocrpipe.server import security
    from ocrpipe.server.security.cli import prepare_serve

    prepared = prepare_serve(args, settings.host, settings.db_url)  # refuses an open non-loopback bind
    if prepared is None:
        return 2
    security_settings, ssl_options = prepared
    # Worker threads run Python between native calls; a short GIL switch interval keeps the event loop
    # (acknowledging jobs, health checks) responsive while they are busy.
    sys.setswitchinterval(0.001)
    app = create_app(settings)
    security.configure(app, security_settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=10, **ssl_options)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m ocrpipe.server [options]``: the same as ``ocrpipe serve``."""
    parser = argparse.ArgumentParser(prog="python -m ocrpipe.server")
    add_arguments(parser)
    return run(parser.parse_args(argv))
