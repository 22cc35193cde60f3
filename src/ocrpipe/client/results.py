"""Results as the client hands them on: a JSON document per printout, and the configurable result command
that loads it into the clinic's own program.

The result JSON (also written to ``<spool>/results/``)::

    {"job_id": "…", "status": "succeeded", "mode": "template", "template": "ark_v1", "reason": "",
     "device": "ARK-530", "exam_id": "", "valid": true, "source_file": "/watch/scan-001.png", "sha256": "…",
     "submitted_unix_ms": 1767000000000, "finished_unix_ms": 1767000000420, "error": null,
     "fields": [{"name": "r_sph", "type": "number", "value": "-1.25", "unit": "D", "valid": true,
                 "confidence": 0.99, "raw": "-1.25", "issues": []}, …],
     "result": { the server's full result document }}

``mode`` ``pipeline`` means no template matched (``reason`` says why; ``fields`` is empty and ``result`` is
the general OCR document); ``valid`` false means at least one field needs a person's review.

``status`` ``failed`` results (the server could not read the page) are handed on too, with ``error``
``{"code", "message"}``: the clinic program learns of every printout.

The command (``--on-result``) is split like a shell line but run without a shell (file names cannot inject
commands); ``{json_path}``, ``{job_id}``, ``{source}`` and ``{status}`` in it are replaced, the result JSON
is also on its standard input, and ``OCRPIPE_RESULT_JSON``/``OCRPIPE_JOB_ID``/``OCRPIPE_SOURCE_FILE`` are
set. Exit status 0 means handed on; anything else (or a time-out) is retried with back-off, and the
command's stderr is kept in ``<result>.stderr.txt`` (not in the log: it may quote field values).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocrpipe.protocol import ingest_pb2


def result_document(result: ingest_pb2.JobResult, *, source: str | None, sha256: str | None) -> dict[str, Any]:
    """The JSON-ready form of a finished ``JobResult`` (the server's full document parsed under ``result``)."""
    try:
        full: Any = json.loads(result.result_json) if result.result_json else None
    except ValueError:
        full = None
    fields = [{"name": f.name, "type": f.type, "value": f.value, "unit": f.unit, "valid": f.valid,
               "confidence": round(float(f.confidence), 4), "raw": f.raw, "issues": list(f.issues)}
              for f in result.fields]
    error = {"code": result.error_code, "message": result.error_message} if result.error_code else None
    return {"job_id": result.job_id, "status": result.status, "mode": result.mode, "template": result.template,
            "reason": result.reason, "device": result.device, "exam_id": result.exam_id, "valid": result.valid,
            "source_file": source, "sha256": sha256, "submitted_unix_ms": result.submitted_unix_ms,
            "finished_unix_ms": result.finished_unix_ms, "error": error, "fields": fields, "result": full}


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


@dataclass(frozen=True)
class HookOutcome:
    ok: bool
    code: str       # "ok", "exit_status", "timeout", "not_found", "os_error"
    message: str


@dataclass(frozen=True)
class ResultCommand:
    """The ``--on-result`` command line (a template) and how long one run may take."""

    template: str
    timeout_s: float = 60.0

    def argv(self, json_path: Path, job_id: str, source: str, status: str) -> list[str]:
        values = {"json_path": str(json_path), "job_id": job_id, "source": source, "status": status}
        return [_fill(part, values) for part in shlex.split(self.template)]

    def run(self, json_path: Path, doc: dict[str, Any]) -> HookOutcome:
        """Run once with the result JSON on stdin; never raises."""
        source = doc.get("source_file") or ""
        argv = self.argv(json_path, doc["job_id"], source, doc["status"])
        env = {**os.environ, "OCRPIPE_RESULT_JSON": str(json_path), "OCRPIPE_JOB_ID": doc["job_id"],
               "OCRPIPE_SOURCE_FILE": source}
        try:
            proc = subprocess.run(argv, input=dumps(doc).encode("utf-8"), capture_output=True,
                                  timeout=self.timeout_s, env=env, check=False)
        except subprocess.TimeoutExpired:
            return HookOutcome(False, "timeout", f"{argv[0]} did not finish within {self.timeout_s:g} s")
        except FileNotFoundError:
            return HookOutcome(False, "not_found", f"command {argv[0]!r} not found")
        except OSError as exc:
            return HookOutcome(False, "os_error", f"{argv[0]}: {exc}")
        if proc.returncode != 0:
            # Its messages may quote field values, so they go to a file beside the result, not to the log.
            err = json_path.with_suffix(".stderr.txt")
            err.write_bytes(proc.stderr[-20000:])
            return HookOutcome(False, "exit_status", f"{argv[0]} exited with {proc.returncode} (stderr in {err})")
        return HookOutcome(True, "ok", "")


def _fill(part: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        part = part.replace("{" + name + "}", value)
    return part
