"""The client's side of the ``ocrpipe.v1.Ingest`` service: one channel (TLS by default, mutual TLS and the
API key through :func:`ocrpipe.protocol.channel.client_channel`), the three calls, and what each gRPC
status means for a queued file.

After a connection failure the channel is thrown away and the next call opens a fresh one. gRPC's own
reconnect back-off grows to two minutes; a fresh channel connects at once, so delivery resumes within the
client's own (shorter, jittered) back-off after the server comes back.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from ocrpipe.client.errors import ClientError
from ocrpipe.protocol import ingest_pb2, ingest_pb2_grpc
from ocrpipe.protocol.channel import client_channel, is_loopback


class Outcome(enum.Enum):
    """What a failed call means for the file it was about."""

    RETRY = "retry"            # the server is down, overloaded or restarting: try again later
    PERMANENT = "permanent"    # the server refused this file for good: never retry it
    SETUP = "setup"            # wrong key, scope or port: retry later, and tell the person in charge loudly


_PERMANENT = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
              grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.NOT_FOUND}
_SETUP = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNIMPLEMENTED}
# RESOURCE_EXHAUSTED is usually a rate limit or a full queue (retry), but these codes say the file itself is
# over the server's limits, which no retry changes.
_TOO_BIG = {"file_too_large", "image_too_large", "too_many_pages"}


def classify(status: grpc.StatusCode, code: str = "") -> Outcome:
    """RETRY for UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED (rate limit, full queue), INTERNAL …"""
    if status in _PERMANENT or code in _TOO_BIG:
        return Outcome.PERMANENT
    if status in _SETUP:
        return Outcome.SETUP
    return Outcome.RETRY


@dataclass(frozen=True)
class CallError:
    """A failed call: the gRPC status, the server's stable code (its ``ocrpipe-error-code`` trailer, else the
    status name in lower case), its message, and what it means for the file."""

    status: str
    code: str
    message: str
    outcome: Outcome

    @classmethod
    def of(cls, exc: grpc.RpcError) -> CallError:
        status = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
        details = (exc.details() if hasattr(exc, "details") else None) or str(exc)
        trailers = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
        code = next((str(v) for k, v in trailers or () if k == "ocrpipe-error-code"), status.name.lower())
        message = " ".join(details.split()).removeprefix(f"{code}: ")  # the server repeats its code there
        return cls(status.name, code, message[:500], classify(status, code))

    @property
    def tag(self) -> str:
        """``STATUS code`` for log lines, e.g. ``INVALID_ARGUMENT corrupt_image``."""
        return self.status if self.code == self.status.lower() else f"{self.status} {self.code}"


@dataclass(frozen=True)
class ServerOptions:
    """Where the server is and how to reach it safely."""

    target: str
    api_key: str | None = None
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    insecure: bool = False
    timeout_s: float = 20.0

    def check(self) -> None:
        """Refuse plaintext to another machine and half a client certificate (``ClientError``)."""
        host = self.target.rsplit(":", 1)[0] if ":" in self.target else self.target
        if self.insecure and not is_loopback(host):
            raise ClientError("insecure_remote", f"--insecure sends images in plaintext and is only allowed to "
                                                 f"this machine (localhost/127.0.0.1), not {self.target}; give "
                                                 f"the server's CA with --ca-file instead")
        if self.insecure and (self.ca_file or self.client_cert):
            raise ClientError("bad_option", "--insecure cannot be combined with --ca-file/--client-cert")
        if (self.client_cert is None) != (self.client_key is None):
            raise ClientError("bad_option", "mutual TLS needs both --client-cert and --client-key")
        for path in (self.ca_file, self.client_cert, self.client_key):
            if path is not None and not Path(path).is_file():
                raise ClientError("bad_option", f"TLS file {path} does not exist")


class Connection:
    """Thread-safe holder of the channel; every call raises ``grpc.RpcError`` on failure."""

    def __init__(self, options: ServerOptions) -> None:
        options.check()
        self.options = options
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._stub: ingest_pb2_grpc.IngestStub | None = None

    def stub(self) -> ingest_pb2_grpc.IngestStub:

        with self._lock:
            if self._stub is None:
                o = self.options
                self._channel = client_channel(o.target, api_key=o.api_key, tls=not o.insecure, ca_file=o.ca_file,
                                               cert_file=o.client_cert, key_file=o.client_key)
                self._stub = ingest_pb2_grpc.IngestStub(self._channel)
            return self._stub

    def reset(self) -> None:
        """Close the channel (cancelling calls on it); the next call connects afresh."""
        with self._lock:
            channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            channel.close()

    close = reset

    def submit(self, data: bytes, *, filename: str, key: str, device: str = "",
               exam_id: str = "") -> ingest_pb2.SubmitReply:
        request = ingest_pb2.SubmitRequest(image=data, filename=filename, device=device, exam_id=exam_id,
                                           idempotency_key=key)
        reply: ingest_pb2.SubmitReply = self.stub().Submit(request, timeout=self.options.timeout_s)
        return reply

    def get_result(self, job_id: str) -> ingest_pb2.JobResult:
        result: ingest_pb2.JobResult = self.stub().GetResult(ingest_pb2.GetResultRequest(job_id=job_id),
                                                             timeout=self.options.timeout_s)
        return result

    def watch(self, job_ids: list[str], timeout_s: float | None = None) -> Any:
        """A ``WatchResults`` stream for ``job_ids`` (those already finished come first): iterate it for
        ``JobResult`` messages, ``cancel()`` it from any thread; ``timeout_s`` bounds the whole stream."""
        return self.stub().WatchResults(ingest_pb2.WatchRequest(job_ids=job_ids), timeout=timeout_s)


TERMINAL = ("succeeded", "failed")
