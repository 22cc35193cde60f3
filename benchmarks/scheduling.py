"""Fair and bounded page scheduling, measured on a real ``ocrpipe serve``.

    python benchmarks/scheduling.py [--pdf-pages 50] [--batch-files 4] [--repeat 3] [--skip-rss]
        [--baseline-src DIR] [--request-threads 0 2]

(a) Latency of a 1-page ``/v1/ocr`` request alone (median of ``--repeat``) vs while a ``--pdf-pages``-page
    PDF is being processed (target: at most 3x). The long PDF is sent to ``/v1/ocr`` (the sync page cap is
    raised for the run) — the case of issue 12, where the 1-page request waited 104 s vs 2.6 s alone.
(b) ``/v1/batch_ocr`` with ``--batch-files`` PDFs of ``--pdf-pages`` blank A4 pages (200 dpi: 11.6 MB each
    once rendered): RSS growth of the server during the request, sampled every 0.1 s for ``--rss-window-s``
    (target < 600 MB); a blank A4 page takes seconds to detect on a shared 2-core machine, so the window
    may end before the 200 pages do (the JSON says how many were processed, and the pages per second).
    ``--request-threads`` runs (b) once per value (``OCRPIPE_REQUEST_THREADS``; 0 = the default, one page
    thread per request with 2 workers; 2 lets the batch detect two pages at once unless the memory budget
    stops it). ``--baseline-src`` also runs every (b) case on a server from another source tree (e.g. an
    export of the previous commit's ``src``), in the same run, for before/after figures.

Pages are generated here (the sample page of the package, blank PDFs drawn with Pillow). Writes
``benchmarks/results/scheduling.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batching import RESULTS, Service  # noqa: E402


def blank_pdf(pages: int, width: int, height: int, dpi: int = 200) -> bytes:
    """A PDF of white pages that render to ``width`` x ``height`` pixels at ``dpi``."""
    from PIL import Image

    buf = io.BytesIO()
    frames = [Image.new("1", (width, height), 1) for _ in range(pages)]
    frames[0].save(buf, "PDF", save_all=True, append_images=frames[1:], resolution=float(dpi))
    return buf.getvalue()


def one_page(url: str, page: bytes) -> float:
    """Seconds for one synchronous OCR of ``page``."""
    with httpx.Client(base_url=url, timeout=900) as c:
        start = time.perf_counter()
        r = c.post("/v1/ocr", files={"file": ("page.png", page, "image/png")})
        r.raise_for_status()
        return time.perf_counter() - start


def fairness(svc: Service, page: bytes, pdf: bytes, repeat: int) -> dict[str, Any]:
    """(a): the 1-page latency alone and with the long PDF in flight."""
    one_page(svc.url, page)  # warm-up
    alone = [one_page(svc.url, page) for _ in range(repeat)]
    done = threading.Event()
    long_s: list[float] = []

    def long_request() -> None:
        with httpx.Client(base_url=svc.url, timeout=1800) as c:
            start = time.perf_counter()
            c.post("/v1/ocr", files={"file": ("long.pdf", pdf, "application/pdf")}).raise_for_status()
            long_s.append(time.perf_counter() - start)
        done.set()

    t = threading.Thread(target=long_request)
    t.start()
    time.sleep(3.0)
    loaded = []
    for _ in range(repeat):
        if done.is_set():
            break
        loaded.append(one_page(svc.url, page))
    overlapped = not done.is_set()
    t.join()
    ratio = statistics.median(loaded) / statistics.median(alone) if loaded else float("nan")
    return {"alone_s": [round(x, 2) for x in alone], "with_pdf_in_flight_s": [round(x, 2) for x in loaded],
            "alone_median_s": round(statistics.median(alone), 2),
            "with_pdf_median_s": round(statistics.median(loaded), 2) if loaded else None,
            "ratio": round(ratio, 2), "target_ratio": 3.0, "all_overlapped_the_pdf": overlapped,
            "pdf_wall_s": round(long_s[0], 1) if long_s else None}


def batch_rss(svc: Service, pdf: bytes, files: int, window_s: float) -> dict[str, Any]:
    """(b): RSS growth while one /v1/batch_ocr of ``files`` long PDFs runs, sampled for ``window_s``
    seconds (or until it ends): the eager decoder of issue 12 grew 2.6 GB within the first 5 s. One A4 page
    is OCRed first and its own growth recorded: the working set of detection on a page that size (ONNX
    Runtime keeps its arena), so the batch's growth beyond it is what the scheduler adds."""
    one_before = svc.rss_mb()
    one_peak = one_before
    single = threading.Thread(target=lambda: httpx.post(
        svc.url + "/v1/ocr", files={"file": ("one.pdf", blank_pdf(1, 1654, 2339), "application/pdf")},
        timeout=600))
    single.start()
    while single.is_alive():
        one_peak = max(one_peak, svc.rss_mb())
        time.sleep(0.1)
    before = svc.rss_mb()
    pages_before = svc.metric('ocrpipe_stage_duration_seconds_count{stage="detect"}')
    result: dict[str, Any] = {}

    def post() -> None:
        try:
            with httpx.Client(base_url=svc.url, timeout=3600) as c:
                body = [("files", (f"f{i}.pdf", pdf, "application/pdf")) for i in range(files)]
                r = c.post("/v1/batch_ocr", files=body)
                result["status"] = r.status_code
        except httpx.HTTPError as exc:
            result["error"] = type(exc).__name__

    t = threading.Thread(target=post, daemon=True)
    start = time.perf_counter()
    t.start()
    peak = before
    while t.is_alive() and time.perf_counter() - start < window_s:
        peak = max(peak, svc.rss_mb())
        time.sleep(0.1)
    pages = svc.metric('ocrpipe_stage_duration_seconds_count{stage="detect"}') - pages_before
    window = time.perf_counter() - start
    return {"files": files,
            "pages_processed_in_window": int(pages), "window_s": round(window, 1),
            "pages_per_s": round(pages / window, 3),
            "finished_in_window": not t.is_alive(), "rss_before_mb": round(before, 1),
            "rss_peak_mb": round(peak, 1), "rss_growth_mb": round(peak - before, 1), "target_growth_mb": 600,
            "one_a4_page_first": {"rss_before_mb": round(one_before, 1), "rss_peak_mb": round(one_peak, 1),
                                  "rss_growth_mb": round(one_peak - one_before, 1)},
            "rss_growth_from_before_the_first_a4_page_mb": round(peak - one_before, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pdf-pages", type=int, default=50)
    ap.add_argument("--batch-files", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--skip-fairness", action="store_true")
    ap.add_argument("--rss-window-s", type=float, default=90.0,
                    help="how long (b) samples RSS before the server is stopped (blank A4 pages take seconds each)")
    ap.add_argument("--request-threads", type=int, nargs="+", default=[0])
    ap.add_argument("--baseline-src", help="also run (b) on a server from this source tree (before/after)")
    ap.add_argument("--before-first", action="store_true", help="run the baseline tree first in each pair")
    ap.add_argument("--out", default=str(RESULTS / "scheduling.json"))
    args = ap.parse_args()

    page = (resources.files("ocrpipe") / "assets" / "sample_ko.png").read_bytes()
    env = {"OCRPIPE_THREADS": "1", "OMP_NUM_THREADS": "1", "OCRPIPE_MAX_SYNC_PAGES": str(args.pdf_pages),
           "OCRPIPE_MAX_PAGES": str(args.pdf_pages), "OCRPIPE_SYNC_TIMEOUT_S": "3600"}
    common = ["--workers", str(args.workers), "--job-workers", "1"]
    out: dict[str, Any] = {"benchmark": "scheduling", "workers": args.workers, "cpu_count": os.cpu_count(),
                           "machine": platform.machine(), "pdf_pages": args.pdf_pages}
    if not args.skip_fairness:
        for tree, src in [("after", None)] + ([("before", args.baseline_src)] if args.baseline_src else []):
            svc = Service(common, env={**env, **({"PYTHONPATH": src} if src else {})})
            try:
                f = fairness(svc, page, blank_pdf(args.pdf_pages, 827, 1170), args.repeat)
            finally:
                svc.stop()
            out["fairness" if tree == "after" else "fairness_before"] = {"src": src or "this tree", **f}
            print(f"(a) {tree}: 1-page request: {f['alone_median_s']} s alone, {f['with_pdf_median_s']} s with a "
                  f"{args.pdf_pages}-page PDF in flight: {f['ratio']}x (target <= 3x)", flush=True)
    if not args.skip_rss:
        pdf = blank_pdf(args.pdf_pages, 1654, 2339)
        trees = [("after", None)] + ([("before", args.baseline_src)] if args.baseline_src else [])
        if args.before_first:
            trees.reverse()
        runs = []
        for threads in args.request_threads:
            for tree, src in trees:
                extra = {"PYTHONPATH": src} if src else {}
                svc = Service(common, env={**env, **extra, "OCRPIPE_REQUEST_THREADS": str(threads)})
                try:
                    b = {"tree": tree, "src": src or "this tree", "request_threads": threads,
                         **batch_rss(svc, pdf, args.batch_files, args.rss_window_s)}
                finally:
                    svc.stop()
                b["pages_total"] = args.batch_files * args.pdf_pages
                runs.append(b)
                print(f"(b) {tree}, request threads {threads}: /v1/batch_ocr {args.batch_files} x "
                      f"{args.pdf_pages}-page A4 PDFs: RSS {b['rss_before_mb']} -> peak {b['rss_peak_mb']} MB "
                      f"(+{b['rss_growth_mb']} MB; target < 600) over {b['window_s']} s, "
                      f"{b['pages_processed_in_window']} pages ({b['pages_per_s']}/s); one A4 page before it: "
                      f"+{b['one_a4_page_first']['rss_growth_mb']} MB", flush=True)
        out["batch_rss"] = runs
    out["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
