"""Property-based fuzzing of the REST API from its own OpenAPI schema (schemathesis) against the real
server process with an all-scopes key: no 5xx, every status code, content type and body as documented.

Bounded for CI: a fixed number of examples per operation, derandomised so a failure reproduces.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from testsupport.databases import create_keys, pg_database  # noqa: E402
from testsupport.server import Server  # noqa: E402

pytestmark = pytest.mark.integration

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = int(os.environ.get("OCRPIPE_FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fuzz_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server on SQLite, then on PostgreSQL (stricter about text: NUL bytes, lengths)."""
    data = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(pg_database()) if request.param == "postgres" else None
        args = ["--database-url", url] if url else []
        srv = Server(data, "--max-wait-ms", "5", *args, env={"OCRPIPE_MAX_UPLOAD_MB": "1", "OCRPIPE_MAX_PAGES": "3"})
        keys = create_keys(srv.db_url, {"fuzzer": {"scopes": "submit,read,admin", "rate_limit": 1e6}})
        srv.key = keys["fuzzer"]  # type: ignore[attr-defined]
        srv.start()
        stack.callback(srv.stop)
        yield srv


def app_schema() -> dict[str, Any]:
    """The OpenAPI document the server publishes (built from the app without starting it)."""
    from ocrpipe.server.app import create_app

    return create_app().openapi()


schema = schemathesis.openapi.from_dict(app_schema())


def test_the_fuzzed_schema_is_the_one_the_server_serves(fuzz_server: Server) -> None:
    import httpx

    assert httpx.get(fuzz_server.url + "/openapi.json").json() == app_schema()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: Any, fuzz_server: Server) -> None:
    case.call_and_validate(base_url=fuzz_server.url, headers={"Authorization": f"Bearer {fuzz_server.key}"},  # type: ignore[attr-defined]
                           checks=CHECKS, timeout=60)


def test_nul_bytes_found_by_fuzzing_are_refused_not_500(fuzz_server: Server) -> None:
    """Regression: on PostgreSQL a NUL in a job id was a 500 (its text cannot hold NUL)."""
    import httpx

    with fuzz_server.client(fuzz_server.key) as c:  # type: ignore[attr-defined]
        for method, path in [("GET", "/v1/jobs/%00"), ("DELETE", "/v1/jobs/a%00b"),
                             ("GET", "/v1/admin/audit?job_id=%00")]:
            resp = c.request(method, path)
            assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_argument", resp.text
    assert isinstance(httpx.get(fuzz_server.url + "/healthz").json(), dict)
