"""``ocrpipe keys create|list|revoke``, ``ocrpipe audit`` and the security options of ``ocrpipe serve``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``keys`` and ``audit`` subcommands."""
    p = subparsers.add_parser("keys", help="create, list and revoke API keys",
                              description="API keys of the OCR service. Only a hash is stored: the key is "
                                          "printed once by `create`.")
    sub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    c = sub.add_parser("create", help="create a key and print it (once)")
    c.add_argument("--name", required=True, help="unique name, e.g. the clinic or device")
    c.add_argument("--scopes", required=True, help="comma-separated: submit, read, admin")
    c.add_argument("--tenant", help="whose jobs the key submits and reads (default: the name)")
    c.add_argument("--rate-limit", type=float, help="requests per minute (default: the server's)")
    _db_options(c)
    c.set_defaults(func=_cmd_create)
    ls = sub.add_parser("list", help="list keys (never their secrets)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    _db_options(ls)
    ls.set_defaults(func=_cmd_list)
    r = sub.add_parser("revoke", help="revoke a key by name or id (immediately, also for a running server)")
    r.add_argument("name", help="key name or id")
    _db_options(r)
    r.set_defaults(func=_cmd_revoke)

    c = subparsers.add_parser("certs", help="generate throw-away TLS certificates for trying HTTPS/mTLS",
                              description="Writes a test CA, a server certificate (localhost, 127.0.0.1 and "
                                          "--host names) and a client certificate as PEM files. For trials "
                                          "only: use your organisation's CA in production.")
    c.add_argument("--out", required=True, help="directory to write the PEM files to")
    c.add_argument("--host", action="append", default=[], help="extra server name or IP (repeatable)")
    c.set_defaults(func=_cmd_certs)

    a = subparsers.add_parser("audit", help="show the audit log (who read or deleted which job)")
    a.add_argument("--job", help="only this job id")
    a.add_argument("--key", help="only this key name")
    a.add_argument("--limit", type=int, default=50)
    _db_options(a)
    a.set_defaults(func=_cmd_audit)


def _db_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", help="the service database (default: SQLite under the data dir)")
    p.add_argument("--data-dir", help="the service data dir (default ./ocrpipe-data)")


def _engine(args: argparse.Namespace) -> Any:
    from ocrpipe.server.settings import ServiceSettings
    from ocrpipe.server.storage.db import get_engine, migrate

    overrides = {k: getattr(args, k) for k in ("database_url", "data_dir") if getattr(args, k, None)}
    engine = get_engine(ServiceSettings(**overrides).db_url)
    migrate(engine)
    return engine


def _cmd_create(args: argparse.Namespace) -> int:
    from ocrpipe.server.security.keys import KeyAdminError, KeyStore

    engine = _engine(args)
    try:
        info, secret = KeyStore(engine).create(args.name, args.scopes, args.tenant, args.rate_limit)
    except KeyAdminError as exc:
        print(f"ocrpipe keys: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"created key {info.name!r} (id {info.id}, tenant {info.tenant!r}, scopes {','.join(info.scopes)}); "
          "store it now, it is not shown again:", file=sys.stderr)
    print(secret)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from ocrpipe.server.security.keys import KeyStore

    engine = _engine(args)
    try:
        keys = KeyStore(engine).list()
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps([k.to_dict() for k in keys], indent=2))
        return 0
    print(f"{'NAME':<20} {'ID':<13} {'TENANT':<16} {'SCOPES':<20} {'STATE':<8} CREATED")
    for k in keys:
        state = "active" if k.active else "revoked"
        created = k.to_dict()["created_at"]
        print(f"{k.name:<20} {k.id:<13} {k.tenant:<16} {','.join(k.scopes):<20} {state:<8} {created}")
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    from ocrpipe.server.security.keys import KeyAdminError, KeyStore

    engine = _engine(args)
    try:
        info = KeyStore(engine).revoke(args.name)
    except KeyAdminError as exc:
        print(f"ocrpipe keys: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"revoked key {info.name!r} (id {info.id})")
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from ocrpipe.server.security.audit import AuditLog

    engine = _engine(args)
    try:
        entries = AuditLog(engine).query(job_id=args.job, key_name=args.key, limit=args.limit)
    finally:
        engine.dispose()
    for e in entries:
        print(json.dumps(e.to_dict(), ensure_ascii=False))
    return 0


def _cmd_certs(args: argparse.Namespace) -> int:
    from pathlib import Path

    try:
        from ocrpipe.server.security.devcerts import write_set
    except ImportError:
        print("ocrpipe certs: needs the 'cryptography' package (pip install cryptography)", file=sys.stderr)
        return 2
    files = write_set(Path(args.out), hosts=("localhost", "127.0.0.1", *args.host))
    for name, path in vars(files).items():
        print(f"{name:<12} {path}")
    print(f"server: ocrpipe serve --tls-cert {files.server_cert} --tls-key {files.server_key} "
          f"[--tls-client-ca {files.ca_cert}]", file=sys.stderr)
    return 0


# ---- ocrpipe serve -----------------------------------------------------------------------------------

def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """The security options of ``ocrpipe serve``, one per :class:`SecuritySettings` field."""
    from ocrpipe.server.security.settings import SecuritySettings
    from ocrpipe.settings import add_flags

    add_flags(p.add_argument_group("security"), SecuritySettings)


def prepare_serve(args: argparse.Namespace, host: str, db_url: str) -> tuple[Any, dict[str, Any]] | None:
    """Security settings and uvicorn TLS options for ``serve``; None (after printing why) to refuse."""
    from ocrpipe.errors import OcrError
    from ocrpipe.server.security.keys import KeyStore
    from ocrpipe.server.security.settings import SecuritySettings, UnsafeBind, check_bind
    from ocrpipe.server.security.tls import uvicorn_ssl_options
    from ocrpipe.server.storage.db import get_engine, migrate
    from ocrpipe.settings import from_args

    try:
        security = from_args(SecuritySettings, args)
    except OcrError as exc:
        print(f"ocrpipe serve: {exc.message}", file=sys.stderr)
        return None
    engine = get_engine(db_url)
    try:
        migrate(engine)
        keys_exist = KeyStore(engine).any_keys()
    finally:
        engine.dispose()
    try:
        warnings = check_bind(host, keys_exist=keys_exist, security=security)
    except UnsafeBind as exc:
        print(f"ocrpipe serve: {exc}", file=sys.stderr)
        return None
    import logging

    for w in warnings:
        logging.getLogger("ocrpipe.server.security").warning(w)
    return security, uvicorn_ssl_options(security)
