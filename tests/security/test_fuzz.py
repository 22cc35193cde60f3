"""Property-based fuzzing of the REST API from its own OpenAPI schema (schemathesis) against the real
server process with an all-scopes key: no 5xx, every status code, content type and body as documented.

Bounded for CI: a fixed number of examples per operation, derandomised so a failure reproduces.
"""

from __future__ import annotations

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

from .conftest import SecServer, create_keys  # noqa: E402

pytestmark = pytest.mark.integration

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = int(os.environ.get("OCRPIPE_FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecServer]:
    data = tmp_path_factory.mktemp("fuzz")
    keys = create_keys(data, {"fuzzer": {"scopes": "submit,read,admin", "rate_limit": 1e6}})
    srv = SecServer(data, "--max-wait-ms", "5", env={"OCRPIPE_MAX_UPLOAD_MB": "1", "OCRPIPE_MAX_PAGES": "3"})
    srv.key = keys["fuzzer"]  # type: ignore[attr-defined]
    srv.start()
    yield srv
    srv.stop()


def app_schema() -> dict[str, Any]:
    """The OpenAPI document the server publishes (built from the app without starting it)."""
    from ocrpipe.service.app import create_app

    return create_app().openapi()


schema = schemathesis.openapi.from_dict(app_schema())


def test_the_fuzzed_schema_is_the_one_the_server_serves(fuzz_server: SecServer) -> None:
    import httpx

    assert httpx.get(fuzz_server.url + "/openapi.json").json() == app_schema()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: Any, fuzz_server: SecServer) -> None:
    case.call_and_validate(base_url=fuzz_server.url, headers={"Authorization": f"Bearer {fuzz_server.key}"},  # type: ignore[attr-defined]
                           checks=CHECKS, timeout=60)
