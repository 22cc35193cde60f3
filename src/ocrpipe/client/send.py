"""``ocrpipe client send FILE``: upload one file (retrying while the server is down, up to a deadline) and
optionally wait for its result. The idempotency key is the content's sha256, as for ``watch``, so sending
the same file again returns the same job instead of a second one."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from ocrpipe.client.backoff import Backoff
from ocrpipe.client.connection import TERMINAL, CallError, Connection, Outcome
from ocrpipe.client.errors import ClientError
from ocrpipe.protocol import ingest_pb2

log = logging.getLogger("ocrpipe.client")


@dataclass(frozen=True)
class Sent:
    """What ``send`` achieved: the server's reply, or the call error that stopped it, and the result."""

    reply: ingest_pb2.SubmitReply | None
    error: CallError | None
    result: ingest_pb2.JobResult | None = None


def send_file(connection: Connection, path: Path, *, device: str = "", exam_id: str = "", wait: bool = False,
              timeout_s: float = 60.0, backoff: Backoff | None = None) -> Sent:
    """Submit ``path``; with ``wait``, also wait for the job to finish (all within ``timeout_s``)."""
    backoff = backoff or Backoff(base_s=0.5, cap_s=5.0)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ClientError("unreadable_file", f"cannot read {path}: {exc}") from exc
    deadline = time.monotonic() + timeout_s
    key = hashlib.sha256(data).hexdigest()
    failures = 0
    while True:
        try:
            reply = connection.submit(data, filename=path.name, key=key, device=device, exam_id=exam_id)
            break
        except grpc.RpcError as exc:
            err = CallError.of(exc)
            failures += 1
            if err.outcome is not Outcome.RETRY or time.monotonic() >= deadline:
                return Sent(None, err)
            delay = min(backoff.delay(failures), max(0.0, deadline - time.monotonic()))
            log.warning("server %s unreachable [%s]: %s; retry %d in %.1f s", connection.options.target, err.tag,
                        err.message, failures, delay)
            connection.reset()
            time.sleep(delay)
    if not wait:
        return Sent(reply, None)
    result, wait_error = wait_result(connection, reply.job_id, deadline, backoff)
    return Sent(reply, wait_error, result)


def wait_result(connection: Connection, job_id: str, deadline: float,
                backoff: Backoff) -> tuple[ingest_pb2.JobResult | None, CallError | None]:
    """The finished ``JobResult`` of ``job_id`` from a ``WatchResults`` stream, falling back to ``GetResult``
    when the stream breaks; ``(None, error)`` when the deadline passes first."""
    failures = 0
    last: CallError | None = None
    while time.monotonic() < deadline:
        try:
            current = connection.get_result(job_id)
            if current.status in TERMINAL:
                return current, None
            for result in connection.watch([job_id], timeout_s=max(0.1, deadline - time.monotonic())):
                if result.job_id == job_id and result.status in TERMINAL:
                    return result, None
        except grpc.RpcError as exc:
            last = CallError.of(exc)
            if last.outcome is not Outcome.RETRY:
                return None, last
        failures += 1
        time.sleep(min(backoff.delay(failures), max(0.0, deadline - time.monotonic())))
    return None, CallError("DEADLINE_EXCEEDED", "deadline_exceeded", f"job {job_id} did not finish in time"
                           + (f" (last error [{last.code}])" if last else ""), Outcome.RETRY)

