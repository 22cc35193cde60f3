"""``--ray ADDRESS`` for ``ocrpipe serve`` and ``ocrpipe batch``, and ``ocrpipe ray serve``.

The flags are added to the existing subcommands; with ``--ray`` their command runs on the cluster
(:mod:`ocrpipe.cluster.serve`, :mod:`ocrpipe.cluster.data`, imported only then), without it the command is
unchanged.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ocrpipe.cluster.settings import ClusterSettings

Command = Callable[[argparse.Namespace], int]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the cluster flags to ``serve`` and ``batch`` (registered before this) and the ``ray`` command."""
    from ocrpipe.cluster.settings import RayBulkSettings, RaySettings
    from ocrpipe.server import cli as server_cli

    for name, on_ray, flags in (("serve", _serve_on_ray, RaySettings), ("batch", _batch_on_ray, RayBulkSettings)):
        parser = subparsers.choices[name]
        _add_ray_flags(parser, flags)
        parser.set_defaults(func=_dispatch(parser.get_default("func"), on_ray))
    p = subparsers.add_parser("ray", help="the OCR service on a Ray cluster (pip install 'ocrpipe[ray]')")
    sub = p.add_subparsers(dest="ray_command", required=True, metavar="ACTION")
    s = sub.add_parser("serve", help="the same as `ocrpipe serve --ray ADDRESS` (default address: auto)")
    server_cli.add_arguments(s)
    _add_ray_flags(s, RaySettings)
    s.set_defaults(func=_serve_on_ray)


def _add_ray_flags(parser: argparse.ArgumentParser, flags: type[ClusterSettings]) -> None:
    from ocrpipe.settings import add_flags

    add_flags(parser.add_argument_group("Ray cluster (pip install 'ocrpipe[ray]')"), flags)


def _dispatch(local: Command, on_ray: Command) -> Command:
    def run(args: argparse.Namespace) -> int:
        return on_ray(args) if getattr(args, "ray", None) else local(args)

    return run


def _require_ray(command: str) -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        print(f"ocrpipe {command} --ray: Ray is not installed (pip install 'ocrpipe[ray]')", file=sys.stderr)
        return False
    return True


def _serve_on_ray(args: argparse.Namespace) -> int:
    if not _require_ray("serve"):
        return 2
    from ocrpipe.cluster.serve import run

    return run(args)


def _batch_on_ray(args: argparse.Namespace) -> int:
    if not _require_ray("batch"):
        return 2
    from ocrpipe.cluster.data import run

    return run(args)
