"""The cluster options refuse what cannot work on a cluster before anything is deployed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from testsupport.server import child_env

from ocrpipe.cluster.settings import RaySettings


def test_serve_on_ray_refuses_sqlite_with_a_clear_message(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    res = subprocess.run([sys.executable, "-m", "ocrpipe", "serve", "--ray", "127.0.0.1:1", "--data-dir",
                          str(tmp_path)], capture_output=True, text=True, timeout=120, env=child_env())
    assert res.returncode == 2
    assert "a Ray cluster needs a job store every node reaches: pass --database-url postgresql" in res.stderr


def test_serve_proxy_options_bound_each_request() -> None:
    pytest.importorskip("ray")
    from ocrpipe.cluster.serve import http_options
    from ocrpipe.server.settings import ServiceSettings

    settings = ServiceSettings(header_timeout_s=10, body_timeout_s=120, sync_timeout_s=120, port=9000)
    assert http_options(settings, RaySettings()) == {"host": settings.host, "port": 9000,
                                                     "request_timeout_s": 310.0, "keep_alive_timeout_s": 5}
    assert http_options(settings, RaySettings(ray_request_timeout_s=30))["request_timeout_s"] == 30


def test_replicas_are_fixed_or_an_autoscaling_range() -> None:
    assert RaySettings(ray_detector_replicas=2).replicas(2) == {"num_replicas": 2}
    auto = RaySettings(ray_max_replicas=4, ray_target_ongoing=3).replicas(1)
    assert auto == {"autoscaling_config": {"min_replicas": 1, "initial_replicas": 1, "max_replicas": 4,
                                           "target_ongoing_requests": 3.0}}
    with pytest.raises(ValidationError, match="ray_max_replicas"):
        RaySettings(ray_recognizer_replicas=3, ray_max_replicas=2)


class _Response:
    """A DeploymentResponse's blocking side: its outcome, or (``None``) no replica ever answering."""

    def __init__(self, outcome: object) -> None:
        self.outcome = outcome
        self.waits: list[float | None] = []
        self.cancelled = False

    def result(self, timeout_s: float | None = None) -> object:
        self.waits.append(timeout_s)
        if self.outcome is None:
            raise TimeoutError(f"no result within {timeout_s} s")
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    def cancel(self) -> None:
        self.cancelled = True


def test_a_call_whose_replica_died_is_sent_again_and_replica_errors_keep_their_code() -> None:
    exceptions = pytest.importorskip("ray.exceptions")
    from ocrpipe.cluster import serve
    from ocrpipe.errors import ErrorCode, InputError, OcrError

    outcomes = [_Response(exceptions.RayActorError()), _Response(exceptions.NodeDiedError("gone")), _Response(7)]
    assert serve._call(lambda: outcomes.pop(0), serve.Patience(60), "detector") == 7 and not outcomes
    dead = [_Response(exceptions.RayActorError()) for _ in range(serve.RETRIES)]
    with pytest.raises(OcrError) as lost:  # every attempt's replica died: a clean, retryable 503
        serve._call(lambda: dead.pop(0), serve.Patience(60), "detector")
    assert lost.value.code == ErrorCode.REPLICA_LOST and not dead

    class Wrapped(Exception):  # what Ray raises for an exception inside the replica: the original as .cause
        cause = InputError(ErrorCode.CORRUPT_IMAGE, "bad")

    with pytest.raises(InputError) as err:
        serve._call(lambda: _Response(Wrapped()), serve.Patience(60), "detector")
    assert err.value.code == ErrorCode.CORRUPT_IMAGE


def test_no_wait_for_a_replica_is_without_end() -> None:
    """Serve's router holds a call while no replica is alive and none can be placed: each wait is bounded, the
    call is cancelled, and the error says whether a replica had died (503 replica_lost) or none answered in
    time (504 deadline_exceeded)."""
    exceptions = pytest.importorskip("ray.exceptions")
    from ocrpipe.cluster import serve
    from ocrpipe.errors import ErrorCode, OcrError

    never = _Response(None)
    with pytest.raises(OcrError) as late:
        serve._call(lambda: never, serve.Patience(40), "detector")
    assert late.value.code == ErrorCode.DEADLINE_EXCEEDED and "no detector replica answered within 40 s" in str(
        late.value.message)
    assert never.cancelled and len(never.waits) == 1 and 39 < (never.waits[0] or 0) <= 40

    died, unplaced = _Response(exceptions.ActorDiedError()), _Response(None)
    sends = [died, unplaced]
    patience = serve.Patience(100)
    with pytest.raises(OcrError) as lost:
        serve._call(lambda: sends.pop(0), patience, "recognizer")
    assert lost.value.code == ErrorCode.REPLICA_LOST and "no live recognizer replica" in lost.value.message
    assert unplaced.cancelled and 0 < (unplaced.waits[0] or 0) <= serve.RESEND_WAIT_S
    assert patience.left_s() <= serve.RESEND_WAIT_S  # the page's other crops get no more than the resend
