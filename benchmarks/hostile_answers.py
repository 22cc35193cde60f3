"""The answers of a real ``ocrpipe serve`` (SQLite, REST + gRPC, API keys on) to the hostile inputs of
issue 13, row by row, with the numbers the tests only bound: peak-memory growth, Retry-After under 32
clients, page-image times and wrong-key timings.

    python benchmarks/hostile_answers.py [--clients 32]

Ratios are against baselines measured in the same run: a page image of a 50-page PDF against one of a
1-page PDF, an unknown key id against a known id with a wrong secret. Writes
``benchmarks/results/hostile_answers.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from testsupport.databases import create_keys  # noqa: E402
from testsupport.hostile import MALFORMED, corpus, long_lines, pdf_pages  # noqa: E402
from testsupport.images import text_page  # noqa: E402
from testsupport.server import Server  # noqa: E402

from ocrpipe.protocol import ingest_pb2, ingest_pb2_grpc  # noqa: E402

ENV = {"OCRPIPE_MAX_UPLOAD_MB": "4", "OCRPIPE_MAX_PIXELS": "20000000", "OCRPIPE_MAX_PAGES": "50"}


CASES = {case.name: case for case in corpus()}


class BenchServer(Server):
    serve_grpc = True


def answer(resp: httpx.Response) -> str:
    """``STATUS code`` of a REST answer (a batch entry's own code for /v1/batch_ocr)."""
    try:
        body = resp.json()
    except ValueError:
        return f"{resp.status_code} <no JSON>"
    if "documents" in body:
        err = body["documents"][0].get("error") or {}
        return f"{resp.status_code} entry:{err.get('code', 'read')}"
    return f"{resp.status_code} {(body.get('error') or {}).get('code', 'ok')}"


def grpc_code(exc: grpc.RpcError) -> str | None:
    """The ``ocrpipe-error-code`` trailer of a failed call."""
    return dict(exc.trailing_metadata() or ()).get("ocrpipe-error-code")


def peak_growth_mb(srv: Server, work: Callable[[], Any]) -> tuple[float, Any]:
    """Peak resident memory above the resident memory before ``work`` (high-water mark reset first)."""
    assert srv.proc is not None
    proc = Path(f"/proc/{srv.proc.pid}")
    (proc / "clear_refs").write_text("5")

    def field(name: str) -> float:
        line = next(x for x in (proc / "status").read_text().splitlines() if x.startswith(name + ":"))
        return int(line.split()[1]) / 1024

    before = field("VmRSS")
    out = work()
    return round(field("VmHWM") - before, 1), out


def pdf_rows(srv: Server, c: httpx.Client) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for name, data in (("needle 36e6 x 0.001 pt", pdf_pages([(36_000_000, 0.001)])),
                       ("wide 1.8e8 x 100 pt", pdf_pages([(1.8e8, 100)]))):
        def send(data: bytes = data) -> dict[str, str]:
            up = ("p.pdf", data, "application/pdf")
            return {"/v1/ocr": answer(c.post("/v1/ocr", files={"file": up})),
                    "/v1/detection": answer(c.post("/v1/detection", files={"file": up})),
                    "/v1/recognition": answer(c.post("/v1/recognition", files={"files": up})),
                    "/v1/batch_ocr": answer(c.post("/v1/batch_ocr", files=[("files", up)])),
                    "/v1/jobs": answer(c.post("/v1/jobs", files={"file": up}))}
        growth, answers = peak_growth_mb(srv, send)
        rows[name] = {"answers": answers, "peak_rss_growth_mb": growth}
    return rows


def line_rows(c: httpx.Client) -> dict[str, str]:
    cases = [CASES["noise-4x20000"], CASES["noise-2x100000"], *long_lines()]
    return {case.name: answer(c.post("/v1/recognition", files={"files": (case.filename, case.data, "image/png")}))
            for case in cases}


def grpc_rows(srv: Server, key: str) -> dict[str, str]:
    md = [("authorization", f"Bearer {key}")]
    out = {}
    with grpc.insecure_channel(srv.target) as ch:
        stub = ingest_pb2_grpc.IngestStub(ch)
        for name, data in (("1x1 PNG", CASES["image-1x1"].data), ("0.5 x 0.5 pt PDF", CASES["pdf-thin-page"].data)):
            try:
                stub.Submit(ingest_pb2.SubmitRequest(image=data, filename="x"), metadata=md, timeout=60)
                out[f"Submit {name}"] = "accepted"
            except grpc.RpcError as exc:
                out[f"Submit {name}"] = f"{exc.code().name} {grpc_code(exc)}"
        try:
            for _ in stub.WatchResults(ingest_pb2.WatchRequest(since_unix_ms=2**62), metadata=md, timeout=5):
                pass
        except grpc.RpcError as exc:
            out["WatchResults since 2**62"] = f"{exc.code().name} {grpc_code(exc)}"
        try:
            ch.unary_unary("/ocrpipe.v1.Ingest/NoSuchMethod")(b"", metadata=md, timeout=10)
        except grpc.RpcError as exc:
            out["unknown method"] = exc.code().name
    return out


def jobs_rows(c: httpx.Client) -> dict[str, str]:
    return {name: answer(c.post("/v1/jobs", files={"file": (CASES[name].filename, CASES[name].data)}))
            for name in ("png-header-60000", "gif-corrupt", "gif-truncated")}


def multipart_rows(c: httpx.Client) -> dict[str, str]:
    return {name: answer(c.post("/v1/ocr", headers=headers, content=body))
            for name, (headers, body) in MALFORMED.items()}


def overload_rows(srv: Server, key: str, clients: int) -> dict[str, Any]:
    """``clients`` threads POST /v1/ocr at once, twice: the first wave meets a server that measured nothing
    yet, the second one the moving average of the first wave's request times."""
    page = text_page(["정상 요청 123", "Retry-After 확인"])
    waves = []
    for _ in range(2):
        def post(_: int) -> tuple[int, float, str | None]:
            start = time.monotonic()
            with httpx.Client(base_url=srv.url, timeout=600, headers={"Authorization": f"Bearer {key}"}) as c:
                r = c.post("/v1/ocr", files={"file": ("p.png", page, "image/png")})
            return r.status_code, time.monotonic() - start, r.headers.get("retry-after")
        with ThreadPoolExecutor(clients) as pool:
            res = list(pool.map(post, range(clients)))
        ok = sorted(t for s, t, _ in res if s == 200)
        waves.append({"statuses": dict(Counter(s for s, _, _ in res)),
                      "retry_after_s": dict(Counter(ra for s, _, ra in res if s == 429)),
                      "served_p50_s": round(statistics.median(ok), 2) if ok else None,
                      "served_max_s": round(max(ok), 2) if ok else None})
    return {"first wave": waves[0], "second wave": waves[1]}


def page_image_rows(srv: Server, c: httpx.Client) -> dict[str, Any]:
    def job(pages: int) -> str:
        r = c.post("/v1/jobs", files={"file": ("d.pdf", pdf_pages([(595, 842)] * pages), "application/pdf")})
        return str(r.json()["id"])

    def timed(job_id: str, index: int, n: int = 5) -> float:
        times = []
        for _ in range(n):
            start = time.perf_counter()
            assert c.get(f"/v1/jobs/{job_id}/pages/{index}").status_code == 200
            times.append(time.perf_counter() - start)
        return min(times)

    one, fifty = job(1), job(50)
    # The job workers read the same A4 pages meanwhile: one A4 page OCRed first has grown the engine's buffers
    # to that size, so the peak below is the page images' own.
    assert c.post("/v1/ocr", files={"file": ("a4.pdf", pdf_pages([(595, 842)]), "application/pdf")}).status_code == 200
    base = timed(one, 0)
    last = timed(fifty, 49)

    def twelve() -> list[int]:
        with ThreadPoolExecutor(12) as pool:
            return list(pool.map(lambda _: c.get(f"/v1/jobs/{fifty}/pages/49").status_code, range(12)))

    growth, statuses = peak_growth_mb(srv, twelve)
    return {"1-page PDF page 0 (baseline) ms": round(base * 1000, 1),
            "50-page PDF page 49 ms": round(last * 1000, 1), "ratio": round(last / base, 2),
            "12 at once": dict(Counter(statuses)), "12 at once peak_rss_growth_mb": growth}


def key_timing_rows(srv: Server, key: str) -> dict[str, Any]:
    key_id = key.split("_")[1]
    known = f"ocp_{key_id}_" + "x" * 43
    unknown = "ocp_ffffffffffff_" + "x" * 43
    times: dict[str, list[float]] = {"known id, wrong secret": [], "unknown id": []}
    pair = [("known id, wrong secret", known), ("unknown id", unknown)]
    for i in range(14):  # 28 bad keys: under the 30-a-minute throttle; the order alternates
        for name, token in pair if i % 2 else pair[::-1]:
            start = time.perf_counter()
            status = httpx.get(srv.url + "/v1/jobs", headers={"Authorization": f"Bearer {token}"}).status_code
            times[name].append(time.perf_counter() - start)
            assert status == 401, status
    best = {name: min(t) * 1000 for name, t in times.items()}
    return {**{f"{k} ms (best of 14)": round(v, 1) for k, v in best.items()},
            "ratio unknown/known": round(best["unknown id"] / best["known id, wrong secret"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        srv = BenchServer(Path(tmp) / "data", env=ENV)
        key = create_keys(srv.db_url, {"bench": {"scopes": "submit,read,admin", "rate_limit": 100000}})["bench"]
        srv.start()
        try:
            with httpx.Client(base_url=srv.url, timeout=600, headers={"Authorization": f"Bearer {key}"}) as c:
                # The key timings first, on a quiet server (no job running yet).
                results = {"wrong-key timing (HTTP)": key_timing_rows(srv, key),
                           "pdf page boxes": pdf_rows(srv, c), "line crops": line_rows(c),
                           "grpc": grpc_rows(srv, key), "jobs header checks": jobs_rows(c),
                           "malformed multipart": multipart_rows(c), "page images": page_image_rows(srv, c),
                           f"{args.clients} clients on /v1/ocr": overload_rows(srv, key, args.clients)}
                results["traceback in server log"] = "Traceback" in srv.log()
        finally:
            srv.stop()
    out = ROOT / "benchmarks" / "results" / "hostile_answers.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
