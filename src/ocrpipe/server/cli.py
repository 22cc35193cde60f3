"""``ocrpipe serve``: start the HTTP service (FastAPI on uvicorn)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``serve`` subcommand."""
    p = subparsers.add_parser(
        "serve", help="run the OCR web service (REST API, jobs, web page, metrics, gRPC ingestion)",
        description="Run the OCR service. Every option can also be set with an OCRPIPE_<NAME> environment "
                    "variable (e.g. OCRPIPE_MAX_UPLOAD_MB=20); flags win over the environment.")
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """One flag per :class:`ServiceSettings` field (the engine options included), then the security options."""
    from ocrpipe.server.security.cli import add_serve_arguments
    from ocrpipe.server.settings import ServiceSettings
    from ocrpipe.settings import EngineSettings, add_flags

    add_flags(p.add_argument_group("service"), ServiceSettings, skip=EngineSettings.model_fields)
    add_flags(p.add_argument_group("engine"), ServiceSettings, skip=ServiceSettings.model_fields.keys()
              - EngineSettings.model_fields.keys())
    add_serve_arguments(p)  # --tls-cert/--tls-key/--tls-client-ca, --auth, --insecure, rate limits


def run(args: argparse.Namespace) -> int:
    """Validate the settings, then serve until interrupted. Returns an exit code."""
    import uvicorn

    from ocrpipe.errors import OcrError
    from ocrpipe.server import logconfig
    from ocrpipe.server.app import create_app
    from ocrpipe.server.http.connections import protocol_class
    from ocrpipe.server.settings import ServiceSettings
    from ocrpipe.settings import from_args

    try:
        settings = from_args(ServiceSettings, args)
    except OcrError as exc:
        print(f"ocrpipe serve: {exc.message}", file=sys.stderr)
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
    http = protocol_class(header_timeout_s=settings.header_timeout_s, body_timeout_s=settings.body_timeout_s,
                          max_connections=settings.max_connections)
    proxies = security_settings.trusted_proxies.strip()
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=10, http=http, proxy_headers=bool(proxies),
                forwarded_allow_ips=proxies or None, **ssl_options)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m ocrpipe.server [options]``: the same as ``ocrpipe serve``."""
    parser = argparse.ArgumentParser(prog="python -m ocrpipe.server")
    add_arguments(parser)
    return run(parser.parse_args(argv))
