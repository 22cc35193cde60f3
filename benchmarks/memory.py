"""Memory does not grow: the server's RSS after 2,000 requests vs after the first 200.

    python benchmarks/memory.py [--requests 2000] [--warm 200] [--clients 4] [--recognizer NAME]

Starts a real ``ocrpipe serve`` and sends a mix of requests (OCR of a small page, line recognition,
detection, jobs and their results, bad inputs, metrics) from ``--clients`` threads. Prints the RSS after
``--warm`` requests and after all of them, and writes ``benchmarks/results/memory.json``; the target is
growth within 10%. Then the server idles for ``--idle-s`` seconds (RSS sampled every 5 s): the target is
an RSS back to at most 1.5x the idle baseline (RSS after start-up and 4 warm-up requests) within a minute
(the service trims the heap after ``OCRPIPE_IDLE_TRIM_S`` of idle and caps glibc arenas with
``OCRPIPE_MALLOC_ARENA_MAX``; ``--env`` passes other values to compare).
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batching import RESULTS, Service, make_page  # noqa: E402


def small_inputs() -> dict[str, bytes]:
    """A small page (4 lines), one line image and a truncated PNG, all generated here."""
    from PIL import Image

    page = Image.open(io.BytesIO(make_page(7, lines=4, size=(700, 230)))).convert("RGB")
    buf = io.BytesIO()
    page.save(buf, "PNG")
    line = io.BytesIO()
    page.crop((60, 45, 700, 95)).save(line, "PNG")
    return {"page": buf.getvalue(), "line": line.getvalue(), "bad": buf.getvalue()[:200]}


def request_mix(c: httpx.Client, i: int, data: dict[str, bytes], job_ids: list[str]) -> int:
    """Request ``i`` of the mix; returns the HTTP status."""
    kind = i % 10
    if kind in (0, 1, 2):
        r = c.post("/v1/ocr", files={"file": ("p.png", data["page"], "image/png")})
    elif kind in (3, 4):
        r = c.post("/v1/recognition", files=[("files", ("l.png", data["line"], "image/png"))])
    elif kind == 5:
        r = c.post("/v1/jobs", files={"file": ("j.png", data["page"], "image/png")})
        if r.status_code == 202:
            job_ids.append(r.json()["id"])
    elif kind == 6 and job_ids:
        jid = job_ids[i % len(job_ids)]
        r = c.get(f"/v1/jobs/{jid}/result")
    elif kind == 7:
        r = c.post("/v1/ocr", files={"file": ("bad.png", data["bad"], "image/png")})
    elif kind == 8:
        r = c.post("/v1/detection", files={"file": ("p.png", data["page"], "image/png")})
    else:
        r = c.get("/metrics")
    return r.status_code


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warm", type=int, default=200)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--recognizer", default="auto")
    ap.add_argument("--idle-s", type=float, default=60.0)
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server (repeatable)")
    ap.add_argument("--out", default=str(RESULTS / "memory.json"))
    args = ap.parse_args()

    data = small_inputs()
    extra_env = dict(e.split("=", 1) for e in args.env)
    svc = Service(["--recognizer", args.recognizer, "--workers", "2"], env={"OCRPIPE_THREADS": "1", **extra_env})
    counter = itertools.count()
    done = 0
    lock = threading.Lock()
    rss_at_warm: list[float] = []
    statuses: dict[int, int] = {}
    job_ids: list[str] = []
    start = time.perf_counter()
    idle: list[tuple[float, float]] = []
    try:
        rss_start = svc.rss_mb()
        with httpx.Client(base_url=svc.url, timeout=300) as c:  # warm-up: sessions and buffers exist
            for i in (0, 3, 8, 0):
                request_mix(c, i, data, job_ids)
        time.sleep(15)  # past the idle trim of the warm-up
        rss_idle = svc.rss_mb()

        def client(_: int) -> None:
            nonlocal done
            with httpx.Client(base_url=svc.url, timeout=300) as c:
                while (i := next(counter)) < args.requests:
                    status = request_mix(c, i, data, job_ids)
                    with lock:
                        statuses[status] = statuses.get(status, 0) + 1
                        done += 1
                        if done == args.warm:
                            rss_at_warm.append(svc.rss_mb())
                        if done % 200 == 0:
                            print(f"{done} requests, RSS {svc.rss_mb():.1f} MiB", flush=True)

        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(client, range(args.clients)))
        rss_end = svc.rss_mb()
        idle_start = time.monotonic()
        while (t := time.monotonic() - idle_start) < args.idle_s:
            time.sleep(5)
            idle.append((round(t, 1), round(svc.rss_mb(), 1)))
    finally:
        svc.stop()
    growth = (rss_end - rss_at_warm[0]) / rss_at_warm[0]
    result = {
        "benchmark": "memory", "requests": args.requests, "warm": args.warm, "clients": args.clients,
        "recognizer": args.recognizer, "rss_start_mib": round(rss_start, 1),
        "rss_after_warm_mib": round(rss_at_warm[0], 1), "rss_after_all_mib": round(rss_end, 1),
        "growth": round(growth, 4), "target_growth": 0.10, "within_target": abs(growth) <= 0.10,
        "rss_idle_baseline_mib": round(rss_idle, 1), "rss_while_idling_mib": idle,
        "rss_after_idle_mib": idle[-1][1] if idle else None,
        "after_idle_vs_baseline": round(idle[-1][1] / rss_idle, 3) if idle else None,
        "target_after_idle_vs_baseline": 1.5, "server_env": extra_env,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "wall_s": round(time.perf_counter() - start, 1),
    }
    print(f"RSS after {args.warm} requests: {result['rss_after_warm_mib']} MiB; after {args.requests}: "
          f"{result['rss_after_all_mib']} MiB; growth {growth * 100:+.1f}% (target within 10%)")
    print(f"idle baseline {result['rss_idle_baseline_mib']} MiB; after {args.idle_s:g} s idle "
          f"{result['rss_after_idle_mib']} MiB = {result['after_idle_vs_baseline']}x (target <= 1.5x)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
