"""Load-test a running ocrpipe service: one document per ``POST /v1/ocr`` vs ``POST /v1/batch_ocr``.

Both modes send the same N documents with C concurrent clients (threads, one HTTP connection each).
``429 Too Many Requests`` answers are retried after their ``Retry-After``; other failures are counted.
"""

from __future__ import annotations

import mimetypes
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _payload(files: list[Path], docs: int) -> list[tuple[str, bytes, str]]:
    """``docs`` uploads cycling through ``files``: (file name, bytes, content type)."""
    blobs = [(f.name, f.read_bytes(), mimetypes.guess_type(f.name)[0] or "application/octet-stream") for f in files]
    return [blobs[i % len(blobs)] for i in range(docs)]


def _post(client: Any, url: str, files: list[tuple[str, tuple[str, bytes, str]]], timeout: float) -> int:
    """POST with retries on 429; returns the final HTTP status."""
    deadline = time.monotonic() + timeout
    while True:
        resp = client.post(url, files=files, timeout=timeout)
        if resp.status_code != 429 or time.monotonic() > deadline:
            return int(resp.status_code)
        time.sleep(min(5.0, float(resp.headers.get("retry-after", "1") or 1)))


def _run_clients(
    clients: int, jobs: list[Any], work: Callable[[Any, Any], int], headers: dict[str, str]
) -> dict[str, Any]:
    import httpx

    todo: queue.SimpleQueue = queue.SimpleQueue()
    for job in jobs:
        todo.put(job)
    statuses: list[int] = []
    lock = threading.Lock()

    def client_loop() -> None:
        with httpx.Client(headers=headers) as client:
            while True:
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    status = work(client, job)
                except httpx.HTTPError:
                    status = 0
                with lock:
                    statuses.append(status)

    start = time.perf_counter()
    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(max(1, clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "seconds": round(elapsed, 3),
        "requests": len(statuses),
        "failed_requests": sum(1 for s in statuses if s != 200),
    }


def load_test(
    server: str,
    files: list[Path],
    *,
    docs: int = 32,
    clients: int = 4,
    batch_size: int = 8,
    timeout: float = 300.0,
    rounds: int = 1,
    api_key: str | None = None,
) -> dict[str, Any]:
    """Time N documents through ``/v1/ocr`` (one per request) and through ``/v1/batch_ocr``.

    ``api_key`` is sent as ``Authorization: Bearer <key>`` (needed once the service has keys).
    With ``rounds`` > 1 the two modes alternate and the median round of each is reported (the lower
    middle one for an even count).
    """
    import httpx

    base = server.rstrip("/")
    uploads = _payload(files, docs)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(headers=headers) as client:  # warm-up: models loaded, connections open
        status = _post(client, f"{base}/v1/ocr", [("file", uploads[0])], timeout)
        if status != 200:
            hint = " (the service wants an API key: --api-key or OCRPIPE_API_KEY)" if status == 401 else ""
            raise RuntimeError(f"warm-up POST {base}/v1/ocr answered HTTP {status}{hint}")

    def one(client: Any, upload: tuple[str, bytes, str]) -> int:
        return _post(client, f"{base}/v1/ocr", [("file", upload)], timeout)

    def many(client: Any, chunk: list[tuple[str, bytes, str]]) -> int:
        return _post(client, f"{base}/v1/batch_ocr", [("files", u) for u in chunk], timeout)

    chunks = [uploads[i : i + batch_size] for i in range(0, len(uploads), batch_size)]
    seq_runs, bat_runs = [], []
    for _ in range(max(1, rounds)):
        seq_runs.append(_run_clients(clients, uploads, one, headers))
        bat_runs.append(_run_clients(clients, chunks, many, headers))
    sequential = _median_run(seq_runs)
    batched = _median_run(bat_runs)
    saving = 1.0 - batched["seconds"] / sequential["seconds"] if sequential["seconds"] else None
    return {
        "server": base,
        "rounds": max(1, rounds),
        "documents": docs,
        "clients": clients,
        "batch_size": batch_size,
        "files": [str(f) for f in files],
        "sequential": sequential | {"docs_per_s": round(docs / sequential["seconds"], 3)},
        "batched": batched | {"docs_per_s": round(docs / batched["seconds"], 3)},
        "saving": None if saving is None else round(saving, 4),
    }


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return ordered[(len(ordered) - 1) // 2] | {"all_seconds": [r["seconds"] for r in runs]}


def format_load(r: dict[str, Any]) -> str:
    """The load-test table: documents N, time sequential, time batched, saving."""
    seq, bat = r["sequential"], r["batched"]
    saving = "-" if r["saving"] is None else f"{100 * r['saving']:.1f}%"
    rows = [
        ("documents", str(r["documents"])),
        ("concurrent clients", str(r["clients"])),
        ("files per batch request", str(r["batch_size"])),
        (
            "time sequential (/v1/ocr)",
            f"{seq['seconds']:.2f} s  ({seq['docs_per_s']:.2f} docs/s, "
            f"{seq['requests']} requests, {seq['failed_requests']} failed)",
        ),
        (
            "time batched (/v1/batch_ocr)",
            f"{bat['seconds']:.2f} s  ({bat['docs_per_s']:.2f} docs/s, "
            f"{bat['requests']} requests, {bat['failed_requests']} failed)",
        ),
        ("saving", saving),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
