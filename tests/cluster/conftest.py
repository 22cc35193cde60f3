"""A real local Ray cluster for the ``ray`` tests: a head and a worker node, each its own ``ray start``
process on loopback with one CPU and a small object store (:class:`ocrpipe.cluster.local.LocalCluster`).

Skipped, with the reason, where Ray is not installed or cannot start; with ``OCRPIPE_REQUIRE_RAY=1`` (CI)
either is a failure instead."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest


def _unavailable(reason: str) -> None:
    if os.environ.get("OCRPIPE_REQUIRE_RAY") == "1":
        pytest.fail(f"OCRPIPE_REQUIRE_RAY=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    try:
        import ray  # noqa: F401
    except ImportError:
        _unavailable("Ray is not installed (pip install 'ocrpipe[ray]')")
    from ocrpipe.cluster.local import LocalCluster

    local = LocalCluster(workers=1, cpus_per_node=1, object_store_mb=100,
                         env={"OCRPIPE_THREADS": "1", "OMP_NUM_THREADS": "1"})
    try:
        local.start()
    except RuntimeError as exc:
        local.stop()
        _unavailable(f"a local Ray cluster cannot start here: {exc}")
    try:
        yield local
    finally:
        local.stop()
