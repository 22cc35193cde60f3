"""Defence in depth for PHI-free logs: a filter on the log handler that redacts document content.

The service logs ids, sizes, codes and timings only. Should a future log call pass content anyway as an
``extra`` field under a content-like name (``text``, ``value``, ``file_name`` …) or as raw bytes/arrays,
this filter replaces it before the record is formatted, so recognised text, field values, file names
(which often carry patient names) and image bytes never reach the log.
"""

from __future__ import annotations

import logging

_STD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

CONTENT_KEYS = frozenset({
    "text", "texts", "line", "lines", "value", "values", "raw", "raw_text", "field_value", "fields",
    "file_name", "upload_name", "original_filename", "content", "body", "image", "data", "result", "results",
    "document", "page_text", "patient", "patient_id", "patient_name",
})
REDACTED = "[redacted]"


class PhiRedactingFilter(logging.Filter):
    """Redact content-like ``extra`` fields and any bytes/array values on a record (never drops it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in list(vars(record).items()):
            if key in _STD:
                continue
            if key in CONTENT_KEYS:
                setattr(record, key, REDACTED)
            elif isinstance(value, bytes | bytearray | memoryview):
                setattr(record, key, f"<{len(value)} bytes>")
            elif type(value).__name__ == "ndarray":
                setattr(record, key, f"<array {getattr(value, 'shape', '?')}>")
        return True


def install(handler: logging.Handler) -> logging.Handler:
    """Attach the filter to ``handler`` (idempotent); returns the handler."""
    if not any(isinstance(f, PhiRedactingFilter) for f in handler.filters):
        handler.addFilter(PhiRedactingFilter())
    return handler
