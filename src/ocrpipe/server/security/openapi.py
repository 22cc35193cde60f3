"""Make the generated OpenAPI document tell the truth about auth and errors.

FastAPI documents a ``422 HTTPValidationError`` that this service never sends (its handler answers 400
or 415 with the ``{"error": {...}}`` shape) and knows nothing about API keys. This adds the bearer
security scheme and documents the JSON error responses every ``/v1`` operation can give, so clients and
the schema-driven fuzzer (schemathesis) can rely on the schema.
"""

from __future__ import annotations

from typing import Any

from ocrpipe.errors import ErrorCode

ERROR_SCHEMA: dict[str, Any] = {
    "title": "ErrorBody",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string", "enum": [c.value for c in ErrorCode]},
                           "message": {"type": "string"},
                           "stage": {"type": ["string", "null"]}},
            "additionalProperties": True,
        },
    },
}

_DESCRIPTIONS = {
    "400": "Invalid request (bad parameter, missing field, undecodable input)",
    "401": "Missing, invalid or revoked API key",
    "403": "The API key lacks the scope this operation needs",
    "404": "Unknown job or resource (also: another tenant's job)",
    "409": "Conflict (job not finished, idempotency key reused, key name taken)",
    "413": "Upload too large (bytes, pixels, pages or files)",
    "415": "Unsupported media type",
    "422": "The job failed; the body carries its error code and stage",
    "429": "Rate limit or concurrency limit reached; see Retry-After",
    "503": "Overloaded or not ready; see Retry-After",
}
_UPLOAD_CODES = ("413", "415", "503")


def _error(code: str) -> dict[str, Any]:
    return {"description": _DESCRIPTIONS[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the security scheme and error responses to a generated OpenAPI document (in place)."""
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {}).setdefault("ErrorBody", ERROR_SCHEMA)  # the service's own wins
    components.setdefault("securitySchemes", {})["bearerAuth"] = {
        "type": "http", "scheme": "bearer",
        "description": "API key from `ocrpipe keys create` (required once any key exists)"}
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            _document_operation(path, method, op)
    return schema


def _document_operation(path: str, method: str, op: dict[str, Any]) -> None:
    responses: dict[str, Any] = op["responses"]
    if "HTTPValidationError" in str(responses.get("422", "")):
        del responses["422"]  # FastAPI's default: never sent (see module docstring)
    codes = ["400", "409", "429", "503"]
    if path.startswith("/v1/"):
        op["security"] = [{"bearerAuth": []}, {}]
        codes += ["401", "403", "404"]
    if method == "post" and "requestBody" in op:
        codes += list(_UPLOAD_CODES)
    if path.startswith("/v1/jobs/{job_id}/result"):
        codes.append("422")
    for code in codes:
        responses.setdefault(code, _error(code))


def install(app: Any) -> None:
    """Wrap ``app.openapi`` so the cached document is post-processed once."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(original())
        return app.openapi_schema

    app.openapi = openapi
