"""What a bulk run reads and writes: the input plan, atomic per-file outputs, error records, the summary.

Layout of ``--out DIR``: for each input ``KEY`` (its path relative to the input folder, or to the common
folder of a list's files) ``DIR/KEY.json`` holds the Document JSON (the same as ``ocrpipe ocr --format
json``) and, when the file could not be read, ``DIR/KEY.error.json`` holds ``{"file", "code", "message",
"stage"}``. Both are written to a temporary file in the same folder and renamed into place, so a file is
either done or not, whatever kills the run. A rerun skips every input whose ``KEY.json`` exists (and, unless
told otherwise, tries the failed ones again). ``DIR/summary.json`` is rebuilt from the folder at the end of
every run, so it counts each input exactly once however many runs or retries it took.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocrpipe.document import Document
from ocrpipe.errors import ErrorCode, OcrError

SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".avif", ".pdf"})
"""The inputs a folder contributes (a list file names its inputs explicitly, whatever their suffix)."""
SUMMARY = "summary.json"
ERROR_SUFFIX = ".error.json"


@dataclass(frozen=True)
class Item:
    """One input file and the name of its outputs under ``--out``."""

    path: Path
    key: str
    """The input's path relative to the run's root, with ``/`` separators: ``scans/a.pdf``."""

    def output(self, out: Path) -> Path:
        return out / f"{self.key}.json"

    def error_output(self, out: Path) -> Path:
        return out / f"{self.key}{ERROR_SUFFIX}"


def plan(source: Path) -> list[Item]:
    """The inputs of a run: a folder's images and PDFs (recursively, hidden files skipped, sorted), or the
    files a list names (one path per line, relative to the list's folder; blank lines and ``#`` comments
    skipped; duplicates once)."""
    if source.is_dir():
        root = source.resolve()
        paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                       and not any(part.startswith(".") for part in p.relative_to(root).parts))
        return [Item(p, p.relative_to(root).as_posix()) for p in paths]
    if not source.is_file():
        raise OcrError(ErrorCode.FILE_NOT_FOUND, f"no such folder or list file: {source}")
    base = source.resolve().parent
    listed = [line.strip() for line in source.read_text(encoding="utf-8").splitlines()]
    paths = list(dict.fromkeys((base / p).resolve() for p in listed if p and not p.startswith("#")))
    if not paths:
        return []
    root = Path(os.path.commonpath([p.parent for p in paths]))
    return [Item(p, p.relative_to(root).as_posix()) for p in paths]


def is_done(item: Item, out: Path) -> bool:
    """The input's Document is written (an earlier run or attempt finished it)."""
    return item.output(out).is_file()


def pending(items: Iterable[Item], out: Path, *, retry_failed: bool = True) -> list[Item]:
    """The inputs still to run: not done, and (with ``retry_failed`` off) not failed before either."""
    return [i for i in items if not is_done(i, out) and (retry_failed or not i.error_output(out).is_file())]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, fsync'd, then renamed: a
    reader (or a rerun) sees the old state or the whole new file, never part of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_temporaries(out: Path) -> int:
    """Delete what attempts killed half-way left behind (``.NAME.json.*.tmp``); returns how many. Called at the
    start and end of a run: one run per output folder at a time."""
    stale = [p for p in out.rglob(".*.tmp") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def write_document(item: Item, out: Path, doc: Document) -> None:
    """The input's Document JSON (as ``ocrpipe ocr --format json`` prints it); clears an earlier error."""
    from ocrpipe.export.render import to_json

    write_atomic(item.output(out), to_json(doc))
    item.error_output(out).unlink(missing_ok=True)


def error_record(item: Item, exc: BaseException) -> dict[str, Any]:
    """``{"file", "code", "message", "stage"}`` of a failed input: the error's own stable code, or
    ``internal_error`` for an unexpected exception (its type only; details stay in the log)."""
    if isinstance(exc, OcrError):
        stage = exc.stage.value if exc.stage is not None else None
        return {"file": item.key, "code": str(exc.code), "message": exc.message, "stage": stage}
    return {"file": item.key, "code": str(ErrorCode.INTERNAL_ERROR), "message": type(exc).__name__, "stage": None}


def write_error(item: Item, out: Path, record: dict[str, Any]) -> None:
    write_atomic(item.error_output(out), json.dumps(record, ensure_ascii=False))


def summarize(items: list[Item], out: Path, *, seconds: float, runner: str,
              steady_files_per_s: float | None = None) -> dict[str, Any]:
    """The summary of the whole folder (every input of the plan, from what is on disk), written to
    ``summary.json``. ``seconds`` is this run's wall time (start-up and model loading included);
    ``steady_files_per_s`` its rate from the first file finished to the last."""
    done, failed, missing = [], [], []
    for item in items:
        if is_done(item, out):
            done.append(item.key)
        elif item.error_output(out).is_file():
            failed.append(json.loads(item.error_output(out).read_text(encoding="utf-8")))
        else:
            missing.append(item.key)
    summary = {"inputs": len(items), "succeeded": len(done), "failed": len(failed), "not_done": len(missing),
               "runner": runner, "seconds": round(seconds, 3),
               "steady_files_per_s": None if steady_files_per_s is None else round(steady_files_per_s, 4),
               "errors": failed, "not_done_files": missing}
    write_atomic(out / SUMMARY, json.dumps(summary, ensure_ascii=False, indent=2))
    return summary


def line_rows(items: Iterable[Item], out: Path) -> Iterator[dict[str, Any]]:
    """One row per recognised line of every done input: file, page, line (reading order), text,
    confidence, box (four ``[x, y]`` corners)."""
    for item in items:
        if not is_done(item, out):
            continue
        doc = json.loads(item.output(out).read_text(encoding="utf-8"))
        for page in doc["pages"]:
            for n, line in enumerate(page["lines"]):
                yield {"file": item.key, "page": page["index"], "line": n, "text": line["text"],
                       "confidence": line["confidence"], "box": line["box"]}


def write_lines(items: list[Item], out: Path, *, jsonl: bool, parquet: bool) -> list[Path]:
    """``lines.jsonl`` and/or ``lines.parquet`` of every done input (Parquet needs pyarrow)."""
    written = []
    if jsonl:
        path = out / "lines.jsonl"
        write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in line_rows(items, out)))
        written.append(path)
    if parquet:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise OcrError(ErrorCode.INVALID_ARGUMENT,
                           "--parquet needs pyarrow (pip install pyarrow, or ocrpipe[ray])") from exc
        path = out / "lines.parquet"
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(pa.Table.from_pylist(list(line_rows(items, out))), tmp)
        os.replace(tmp, path)
        written.append(path)
    return written
