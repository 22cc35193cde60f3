"""``ocrpipe client send|watch|status``: the upload client's command line.

Exit codes: 0 done; 1 a file was refused by the server, its job failed, or a result command gave up;
2 usage error (bad option, spool in use, no spool to show); 3 the server could not be reached or refused this
client (key, scope, TLS) before the deadline.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``client send``, ``client watch`` and ``client status``."""
    p = subparsers.add_parser("client", help="upload client: send printouts to an ocrpipe gRPC server",
                              description="Send images to an `ocrpipe serve --grpc-port` server and collect "
                                          "their results.")
    sub = p.add_subparsers(dest="client_command", required=True, metavar="ACTION")

    s = sub.add_parser("send", help="upload one file; print its job id (or, with --wait, its result JSON)")
    s.add_argument("file", type=Path, metavar="FILE")
    s.add_argument("--wait", action="store_true", help="wait for the result and print it as JSON on stdout")
    s.add_argument("--exam-id", default="", help="exam id stored with the job")
    s.add_argument("--deadline", type=float, default=60.0,
                   help="seconds to keep retrying (and waiting, with --wait) before giving up (default 60)")
    _connection_options(s)
    s.set_defaults(func=_cmd_send)

    w = sub.add_parser("watch", help="watch a folder: upload each new image once, hand each result on",
                       description="Upload every image that appears in DIR exactly once (a durable spool keeps "
                                   "track across restarts; retries with back-off while the server is down) and "
                                   "hand each result to --on-result.")
    w.add_argument("folder", type=Path, metavar="DIR")
    w.add_argument("--spool", type=Path, default=Path("ocrpipe-spool"),
                   help="spool directory on a local disk: queue database, queued copies, result JSON "
                        "(default ./ocrpipe-spool)")
    w.add_argument("--on-result", metavar="CMD",
                   help="command run once per result, e.g. \"import-exam {json_path}\"; {json_path}, {job_id}, "
                        "{source}, {status} are replaced and the result JSON is also on its stdin; a non-zero "
                        "exit is retried with back-off")
    w.add_argument("--on-result-timeout", type=float, default=60.0, help="seconds per run (default 60)")
    w.add_argument("--on-result-retries", type=int, default=5,
                   help="tries per result in one run before giving up until the next start (default 5)")
    w.add_argument("--pattern", action="append", metavar="GLOB",
                   help="file names to upload (repeatable; default common image types and PDF)")
    w.add_argument("--recursive", action="store_true", help="also watch sub-folders")
    w.add_argument("--settle", type=float, default=1.0,
                   help="seconds a file's size and time must stay unchanged before it is uploaded (default 1)")
    w.add_argument("--scan-interval", type=float, default=0.5, help="seconds between folder scans (default 0.5)")
    w.add_argument("--poll-interval", type=float, default=10.0,
                   help="seconds between GetResult checks of a job the result stream has not reported "
                        "(default 10)")
    w.add_argument("--max-backoff", type=float, default=60.0,
                   help="longest wait between attempts while the server is down (default 60)")
    w.add_argument("--exit-when-idle", action="store_true",
                   help="exit once every file in DIR is done (for scripts and tests)")
    w.add_argument("--keep-days", type=float, default=30.0, metavar="N",
                   help="remove files handed on more than N days ago from the spool (row, result JSON), at "
                        "start-up and daily; files not yet handed on are never removed; 0 keeps everything "
                        "(default 30)")
    _connection_options(w)
    w.set_defaults(func=_cmd_watch)

    st = sub.add_parser("status", help="what the spool holds: files per state, refused and waiting files",
                        description="Counts per state, then every file refused by the server or not yet handed "
                                    "on, with its error code. Read-only: works while `client watch` runs.")
    st.add_argument("--spool", type=Path, default=Path("ocrpipe-spool"),
                    help="spool directory of `client watch` (default ./ocrpipe-spool)")
    st.add_argument("--json", action="store_true", help="print JSON: {spool, counts, files: [...]}")
    st.add_argument("--limit", type=int, default=100, help="files listed in the text form (default 100)")
    st.set_defaults(func=_cmd_status)


def _connection_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("server")
    g.add_argument("--server", default=os.environ.get("OCRPIPE_SERVER"), metavar="HOST:PORT",
                   help="the gRPC address (env OCRPIPE_SERVER)")
    g.add_argument("--api-key", default=os.environ.get("OCRPIPE_API_KEY"),
                   help="API key with the submit and read scopes (env OCRPIPE_API_KEY, preferred: a flag is "
                        "visible to other users of the machine)")
    g.add_argument("--ca-file", type=Path, help="CA certificate that signed the server's certificate "
                                                "(default: the system's trusted CAs)")
    g.add_argument("--client-cert", type=Path, help="client certificate for mutual TLS (with --client-key)")
    g.add_argument("--client-key", type=Path, help="private key of --client-cert")
    g.add_argument("--insecure", action="store_true",
                   help="plaintext gRPC without TLS; only allowed to a server on this machine")
    g.add_argument("--device", default="", help="device name stored with each job (informational)")
    g.add_argument("--timeout", type=float, default=20.0, help="seconds per call (default 20)")
    g.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _connect(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from ocrpipe.client.connection import Connection, ServerOptions
    from ocrpipe.client.errors import ClientError

    if not args.server:
        raise ClientError("bad_option", "give the server with --server HOST:PORT (or OCRPIPE_SERVER)")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    return Connection(ServerOptions(args.server, api_key=args.api_key or None, ca_file=args.ca_file,
                                    client_cert=args.client_cert, client_key=args.client_key,
                                    insecure=args.insecure, timeout_s=args.timeout))


def _fail(message: str, code: int) -> int:
    print(f"ocrpipe client: {message}", file=sys.stderr)
    return code


def _cmd_send(args: argparse.Namespace) -> int:
    from ocrpipe.client.connection import Outcome
    from ocrpipe.client.errors import ClientError
    from ocrpipe.client.results import dumps, result_document
    from ocrpipe.client.send import send_file

    try:
        connection = _connect(args)
        sent = send_file(connection, args.file, device=args.device, exam_id=args.exam_id, wait=args.wait,
                         timeout_s=args.deadline)
    except ClientError as exc:
        return _fail(f"error [{exc.code}]: {exc.message}", EXIT_FAILED if exc.code == "unreadable_file"
                     else EXIT_USAGE)
    if sent.reply is None:
        err = sent.error
        assert err is not None
        if err.outcome is Outcome.PERMANENT:
            return _fail(f"{args.file}: refused [{err.tag}]: {err.message}", EXIT_FAILED)
        if err.outcome is Outcome.SETUP:
            return _fail(f"{args.file}: not sent, the server refused this client [{err.tag}]: {err.message} "
                         f"(check the API key, --api-key / OCRPIPE_API_KEY, and its scopes)", EXIT_UNREACHABLE)
        return _fail(f"{args.file}: not sent, gave up after {args.deadline:g} s [{err.tag}]: {err.message} (is the "
                     f"server running there? TLS: --ca-file, --client-cert/--client-key; a plaintext server on this "
                     f"machine: --insecure)", EXIT_UNREACHABLE)
    if not args.wait:
        print(sent.reply.job_id)
        return EXIT_OK
    print(f"ocrpipe client: {args.file.name} → job {sent.reply.job_id}", file=sys.stderr)
    if sent.result is None:
        assert sent.error is not None
        return _fail(f"no result for job {sent.reply.job_id} [{sent.error.tag}]: {sent.error.message}",
                     EXIT_UNREACHABLE)
    sys.stdout.write(dumps(result_document(sent.result, source=str(args.file.resolve()), sha256=None)))
    return EXIT_OK if sent.result.status == "succeeded" else EXIT_FAILED


def _cmd_watch(args: argparse.Namespace) -> int:
    from ocrpipe.client.agent import Agent, WatchConfig
    from ocrpipe.client.backoff import Backoff
    from ocrpipe.client.errors import ClientError
    from ocrpipe.client.results import ResultCommand
    from ocrpipe.client.spool import Spool
    from ocrpipe.client.watcher import DEFAULT_PATTERNS

    if not args.folder.is_dir():
        return _fail(f"error [bad_option]: {args.folder} is not a folder", EXIT_USAGE)
    if not math.isfinite(args.keep_days) or args.keep_days < 0:
        return _fail("error [bad_option]: --keep-days must be a number of days >= 0 (0 keeps everything)",
                     EXIT_USAGE)
    try:
        hook = ResultCommand(args.on_result, args.on_result_timeout) if args.on_result else None
        if hook is not None:
            hook.argv(Path("x.json"), "", "", "")  # a quoting mistake is a usage error now, not at the first result
        config = WatchConfig(
            folder=args.folder.resolve(), patterns=tuple(p.lower() for p in args.pattern or DEFAULT_PATTERNS),
            recursive=args.recursive, settle_s=args.settle, scan_interval_s=args.scan_interval,
            poll_interval_s=args.poll_interval, backoff=Backoff(base_s=min(1.0, args.max_backoff),
                                                                cap_s=args.max_backoff),
            hook=hook, hook_retries=max(1, args.on_result_retries), device=args.device,
            exit_when_idle=args.exit_when_idle, keep_days=args.keep_days)
        connection = _connect(args)
        spool = Spool(args.spool)
    except (ClientError, ValueError) as exc:
        message = f"[{exc.code}]: {exc.message}" if isinstance(exc, ClientError) else f"[bad_option]: {exc}"
        return _fail(f"error {message}", EXIT_USAGE)
    agent = Agent(config, connection, spool)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: agent.stop())
    try:
        return agent.run()
    finally:
        spool.close()


def _cmd_status(args: argparse.Namespace) -> int:
    from ocrpipe.client.errors import ClientError
    from ocrpipe.client.status import read_status, render

    try:
        status = read_status(args.spool)
    except ClientError as exc:
        return _fail(f"error [{exc.code}]: {exc.message}", EXIT_USAGE)
    if args.json:
        sys.stdout.write(json.dumps(status, ensure_ascii=False, indent=1) + "\n")
    else:
        sys.stdout.write(render(status, max(0, args.limit)))
    return EXIT_OK
