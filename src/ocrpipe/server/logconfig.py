"""Structured JSON logs carrying the request id and job id of the current context.

Never pass recognised text or image bytes to a log call: records hold ids, sizes, codes and timings.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
job_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)

_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
_STD_ATTRS |= {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, job_id and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id_var.get()
        jid = getattr(record, "job_id", None) or job_id_var.get()
        if rid:
            out["request_id"] = rid
        if jid:
            out["job_id"] = jid
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(level: str = "INFO", json_logs: bool = True) -> None:
    """Route the root, ocrpipe and uvicorn loggers to stderr in JSON (or plain text)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_logs else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    from ocrpipe.server.logfilter import install as redact_content

    root.handlers[:] = [redact_content(handler)]  # defence in depth: no text/values/bytes in log lines
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # the app logs each request itself
