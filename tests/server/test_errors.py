"""One error-code enum, one exception mapping for REST and gRPC, and one documented table of codes."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest

from ocrpipe.errors import STATUSES, EngineError, ErrorCode, InputError, OcrError
from ocrpipe.server.errors import ServiceError, failure
from ocrpipe.server.scheduling.batcher import BatcherOverloaded

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `([a-z_]+)` \| (\d{3}) \| ([A-Z_]+) \| (.+) \|$")


def readme_table() -> dict[str, tuple[int, str]]:
    """The rows of the README's "Errors" table: code -> (HTTP status, gRPC status)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = ROW.match(line)
        if m:
            assert m.group(1) not in rows, f"{m.group(1)} is listed twice"
            rows[m.group(1)] = (int(m.group(2)), m.group(3))
    return rows


def test_every_code_is_documented_with_its_statuses() -> None:
    rows = readme_table()
    assert set(rows) == {c.value for c in ErrorCode}, "README Errors table and ErrorCode differ"
    for code in ErrorCode:
        assert rows[code.value] == (STATUSES[code].http, STATUSES[code].grpc), code


def test_every_code_has_valid_statuses() -> None:
    assert set(STATUSES) == set(ErrorCode)
    for code, status in STATUSES.items():
        assert 400 <= status.http < 600, code
        assert grpc.StatusCode[status.grpc] is not grpc.StatusCode.OK, code


@pytest.mark.parametrize(("exc", "http", "rpc", "code"), [
    (InputError(ErrorCode.CORRUPT_IMAGE, "bad"), 400, grpc.StatusCode.INVALID_ARGUMENT, ErrorCode.CORRUPT_IMAGE),
    (InputError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "x"), 415, grpc.StatusCode.INVALID_ARGUMENT,
     ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    (InputError(ErrorCode.IMAGE_TOO_LARGE, "x"), 413, grpc.StatusCode.RESOURCE_EXHAUSTED, ErrorCode.IMAGE_TOO_LARGE),
    (EngineError(ErrorCode.MODEL_NOT_FOUND, "x"), 500, grpc.StatusCode.INTERNAL, ErrorCode.MODEL_NOT_FOUND),
    (ServiceError(ErrorCode.JOB_NOT_FOUND, "x"), 404, grpc.StatusCode.NOT_FOUND, ErrorCode.JOB_NOT_FOUND),
    (ServiceError(ErrorCode.IDEMPOTENCY_CONFLICT, "x"), 409, grpc.StatusCode.ALREADY_EXISTS,
     ErrorCode.IDEMPOTENCY_CONFLICT),
    (ServiceError(ErrorCode.UNAUTHORIZED, "x"), 401, grpc.StatusCode.UNAUTHENTICATED, ErrorCode.UNAUTHORIZED),
    (ValueError("secret detail"), 500, grpc.StatusCode.INTERNAL, ErrorCode.INTERNAL_ERROR),
])
def test_failure_maps_each_exception_once_for_both_transports(exc: BaseException, http: int,
                                                             rpc: grpc.StatusCode, code: ErrorCode) -> None:
    f = failure(exc)
    assert (f.http_status, f.grpc_status, f.code) == (http, rpc, code)
    assert f.details().startswith(f"{code.value}: ")


def test_unexpected_exceptions_do_not_leak_their_message() -> None:
    f = failure(RuntimeError("/home/patient/scan.png"))
    assert "patient" not in f.message and "patient" not in str(f.body())


def test_retry_after_and_overload() -> None:
    f = failure(BatcherOverloaded("queue full", retry_after=0.2))  # the batcher's own error is an OcrError
    assert (f.http_status, f.grpc_status, f.code) == (503, grpc.StatusCode.UNAVAILABLE, ErrorCode.OVERLOADED)
    assert f.headers() == {"Retry-After": "1"}
    assert failure(ServiceError(ErrorCode.TOO_MANY_REQUESTS, "x", retry_after=30)).headers()["Retry-After"] == "30"
    assert "WWW-Authenticate" in failure(ServiceError(ErrorCode.UNAUTHORIZED, "x")).headers()


def test_an_http_status_override_keeps_the_code() -> None:
    f = failure(ServiceError(ErrorCode.INVALID_KEY_REQUEST, "name taken", http_status=409))
    assert (f.http_status, f.code, f.grpc_status) == (409, ErrorCode.INVALID_KEY_REQUEST,
                                                      grpc.StatusCode.INVALID_ARGUMENT)


def test_body_carries_code_message_and_stage() -> None:
    err = InputError(ErrorCode.CORRUPT_PDF, "cannot parse")
    assert failure(err).body() == err.to_dict() == {
        "error": {"code": "corrupt_pdf", "message": "cannot parse", "stage": "decode"}}
    assert isinstance(err, OcrError)


def test_openapi_lists_the_codes_as_an_enum() -> None:
    from ocrpipe.server.app import create_app

    schema = create_app().openapi()
    detail = schema["components"]["schemas"]["ErrorDetail"]["properties"]["code"]
    ref = detail.get("$ref") or detail["allOf"][0]["$ref"]
    enum = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]["enum"]
    assert set(enum) == {c.value for c in ErrorCode}
