"""Cross-request dynamic batching vs one crop at a time, and the time to acknowledge a job while busy.

    python benchmarks/batching.py [--clients 16] [--pages-per-client 2] [--recognizer NAME]
                                  [--batched 32:1024,32:2048,32:0,4:0] [--workers 2] [--threads 1]

For each configuration it starts a real ``ocrpipe serve`` (same neural CTC recogniser every time), lets
``--clients`` threads POST generated document pages to ``/v1/ocr`` at once, and measures pages/s:

* ``per_crop``: ``--no-batching`` with ``sequential_unit=crop`` — the recogniser sees one crop per call;
* ``per_page``: ``--no-batching`` with the recogniser's own per-page batching (the plain pipeline path);
* ``batched_bN_wW``: the dynamic batcher pooling crops of all concurrent requests, ``max_batch_size=N``
  and ``max_batch_width=W`` (padded width budget per batch; 0 = none).

During the first batched run another thread POSTs ``/v1/jobs`` every 100 ms and records how long each
acknowledgement (durable write + 202) takes. Prints ratios against ``per_crop`` measured in the same run
and writes ``benchmarks/results/batching.json``. Pages are drawn here (random Korean/English words).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
FONT = "/usr/share/fonts/truetype/nanum/NanumGothic.ttf"
_TEXT = ("신청인 서류 제출 민원실 검사 결과 시력 안압 교정 문서 인식 계약서 주소 서울특별시 강남구 테헤란로 "
         "2026년 11월 21일 금액 합계 부가세 영수증 invoice total amount payment due date customer ID "
         "tel. 02-123-4567 help@example.com 제1조 목적 본 계약은 당사자 간의 권리와 의무를 정한다")
WORDS = _TEXT.split()


def make_page(seed: int, lines: int = 24, size: tuple[int, int] = (1240, 1100)) -> bytes:
    """A synthetic document page (PNG bytes) with ``lines`` text lines of varying length."""
    from PIL import Image, ImageDraw, ImageFont

    rng = random.Random(seed)
    font = ImageFont.truetype(FONT, 26)
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    for i in range(lines):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9)))
        draw.text((70 + rng.randint(0, 40), 50 + i * 43), text, fill="black", font=font)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """``python -m ocrpipe serve`` on a free port with a temporary data dir."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="ocrpipe-bench-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "ocrpipe", "serve", "--port", str(self.port), "--data-dir", self.tmp.name,
               "--log-level", "WARNING", *args]
        self.log = open(Path(self.tmp.name) / "server.log", "wb")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(Path(self.log.name).read_text()[-3000:])
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("server did not start")

    def rss_mb(self) -> float:
        """Resident set size of the server process (MiB), from /proc."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
        raise RuntimeError("no VmRSS")

    def metric(self, name: str) -> float:
        for line in httpx.get(self.url + "/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return float("nan")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        self.tmp.cleanup()


def percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run_load(url: str, pages: list[bytes], clients: int, per_client: int) -> dict[str, Any]:
    """``clients`` threads each POST ``per_client`` pages to /v1/ocr; returns throughput and latency."""
    latencies: list[float] = []
    lines = 0
    lock = threading.Lock()

    def client(k: int) -> None:
        nonlocal lines
        with httpx.Client(base_url=url, timeout=600) as c:
            for j in range(per_client):
                body = pages[(k * per_client + j) % len(pages)]
                start = time.perf_counter()
                r = c.post("/v1/ocr", files={"file": (f"p{k}_{j}.png", body, "image/png")})
                r.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - start)
                    lines += len(r.json()["pages"][0]["lines"])

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - start
    n = clients * per_client
    return {"pages": n, "lines": lines, "wall_s": round(wall, 2), "pages_per_s": round(n / wall, 3),
            "p50_s": round(percentile(latencies, 50), 2), "p95_s": round(percentile(latencies, 95), 2)}


def measure_acks(url: str, body: bytes, stop: threading.Event, interval: float = 0.1) -> list[float]:
    """POST /v1/jobs every ``interval`` seconds until ``stop``; returns acknowledgement latencies (ms)."""
    out: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as c:
        while not stop.is_set():
            start = time.perf_counter()
            r = c.post("/v1/jobs", files={"file": ("ack.png", body, "image/png")})
            elapsed = (time.perf_counter() - start) * 1000.0
            if r.status_code == 202:
                out.append(elapsed)
            stop.wait(interval)
    return out


def micro(recognizer: str, pages: list[bytes], budgets: list[int], repeat: int = 2) -> dict[str, Any]:
    """The recogniser alone, in this process, on the crops of the generated pages: ms per crop when called
    one crop at a time vs on width-sorted batches closed by a padded-width budget (0 = 32 crops)."""
    import numpy as np
    from PIL import Image

    from ocrpipe.engine.pipeline import Pipeline, PipelineConfig
    from ocrpipe.server.scheduling.engine import crop_aspect, padded_cost
    from ocrpipe.server.scheduling.recognizers import input_height

    pipe = Pipeline(PipelineConfig(recognizer=recognizer))
    padded_width = padded_cost(input_height(pipe.recognizer))
    crops = []
    for body in pages[:4]:
        img = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
        prepared = pipe.preprocess(img)
        crops += pipe.crop(prepared.image, pipe.detect(prepared.image)).images
    crops.sort(key=crop_aspect)

    def batches(budget: int) -> list[list[Any]]:
        out: list[list[Any]] = [[]]
        for c in crops:
            trial = out[-1] + [c]
            if out[-1] and (len(trial) > 32 or (budget and padded_width(trial) > budget)):
                out.append([c])
            else:
                out[-1] = trial
        return out

    def timed(groups: list[list[Any]]) -> float:
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            for g in groups:
                pipe.recognize(g)
            best = min(best, time.perf_counter() - start)
        return best * 1000.0 / len(crops)

    pipe.recognize(crops[:4])
    one = timed([[c] for c in crops])
    out: dict[str, Any] = {"crops": len(crops), "per_crop_ms": round(one, 2)}
    for budget in budgets:
        groups = batches(budget)
        ms = timed(groups)
        out[f"budget_{budget}"] = {"ms_per_crop": round(ms, 2), "mean_batch": round(len(crops) / len(groups), 1),
                                   "speedup_vs_per_crop": round(one / ms, 3)}
    return out


def configs(batched: list[tuple[int, int]], per_page: bool) -> list[tuple[str, list[str], dict[str, str]]]:
    out = [("per_crop", ["--no-batching"], {"OCRPIPE_SEQUENTIAL_UNIT": "crop"})]
    if per_page:
        out.append(("per_page", ["--no-batching"], {"OCRPIPE_SEQUENTIAL_UNIT": "page"}))
    out += [(f"batched_b{n}_w{w}", ["--batching", "--max-batch-size", str(n), "--max-batch-width", str(w)], {})
            for n, w in batched]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--pages-per-client", type=int, default=2)
    ap.add_argument("--recognizer", default=None, help="default: ko_rec if shipped, else ppocrv4_rec_ch")
    ap.add_argument("--batched", default="32:1024,32:2048,32:0,4:0",
                    help="batched configurations as MAX_BATCH_SIZE:MAX_BATCH_WIDTH (0 = no width budget)")
    ap.add_argument("--no-per-page", action="store_true", help="skip the per-page sequential run")
    ap.add_argument("--max-wait-ms", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads per session")
    ap.add_argument("--micro-budgets", default="512,1024,2048,0",
                    help="padded-width budgets for the recogniser-only measurement ('' to skip)")
    ap.add_argument("--out", default=str(RESULTS / "batching.json"))
    args = ap.parse_args()

    from ocrpipe.engine.runtime import load_manifest

    recognizer = args.recognizer or ("ko_rec" if "ko_rec" in load_manifest() else "ppocrv4_rec_ch")
    pages = [make_page(seed) for seed in range(8)]
    batched = [(int(n), int(w)) for n, _, w in (x.partition(":") for x in args.batched.split(",") if x)]
    env = {"OCRPIPE_THREADS": str(args.threads), "OMP_NUM_THREADS": str(args.threads)}
    common = ["--recognizer", recognizer, "--workers", str(args.workers), "--max-wait-ms", str(args.max_wait_ms),
              "--job-workers", "1"]
    os.environ.update(env)
    budgets = [int(x) for x in args.micro_budgets.split(",") if x]
    micro_res = micro(recognizer, pages, budgets) if budgets else {}
    if micro_res:
        print(f"recogniser alone: {micro_res['per_crop_ms']} ms/crop one at a time; "
              + ", ".join(f"budget {b}: {micro_res[f'budget_{b}']['ms_per_crop']} ms/crop "
                          f"(batch {micro_res[f'budget_{b}']['mean_batch']})" for b in budgets), flush=True)
    results: dict[str, Any] = {}
    acks: list[float] = []
    for name, extra, extra_env in configs(batched, not args.no_per_page):
        svc = Service(common + extra, env={**env, **extra_env})
        try:
            run_load(svc.url, pages[:2], 2, 1)  # warm-up (sessions, arenas)
            stop = threading.Event()
            ack_thread = None
            ack_result: list[list[float]] = []
            if name.startswith("batched") and not acks:
                ack_thread = threading.Thread(target=lambda u=svc.url, s=stop, out=ack_result: out.append(
                    measure_acks(u, pages[0], s)))
                ack_thread.start()
            res = run_load(svc.url, pages, args.clients, args.pages_per_client)
            stop.set()
            if ack_thread is not None:
                ack_thread.join()
                acks = ack_result[0]
            batches = svc.metric("ocrpipe_batch_size_count")
            crops = svc.metric("ocrpipe_batch_size_sum")
            res["mean_batch"] = round(crops / batches, 2) if batches else None
            results[name] = res
            print(f"{name:>12}: {res['pages_per_s']:.3f} pages/s  (p50 {res['p50_s']} s, mean batch "
                  f"{res['mean_batch']})", flush=True)
        finally:
            svc.stop()

    base = results["per_crop"]["pages_per_s"]
    for res in results.values():
        res["speedup_vs_per_crop"] = round(res["pages_per_s"] / base, 3)
    best = max((k for k in results if k.startswith("batched")), key=lambda k: results[k]["pages_per_s"])
    ack = {"n": len(acks), "p50_ms": round(percentile(acks, 50), 1), "p95_ms": round(percentile(acks, 95), 1),
           "p99_ms": round(percentile(acks, 99), 1), "max_ms": round(max(acks), 1) if acks else None,
           "target_p99_ms": 100}
    summary = {
        "benchmark": "batching", "recognizer": recognizer, "clients": args.clients,
        "pages": args.clients * args.pages_per_client, "workers": args.workers, "ort_threads": args.threads,
        "max_wait_ms": args.max_wait_ms, "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "device": "cpu", "loadavg_at_end": [round(x, 2) for x in os.getloadavg()], "results": results,
        "best_batched": best,
        "best_speedup_vs_per_crop": results[best]["speedup_vs_per_crop"], "target_speedup": 1.3,
        "ack_latency_while_busy": ack, "recognizer_alone": micro_res,
    }
    print(f"\nbest batched ({best}) vs one crop at a time: {summary['best_speedup_vs_per_crop']:.2f}x "
          f"(target >= 1.3x)")
    print(f"POST /v1/jobs acknowledgement while busy: p50 {ack['p50_ms']} ms, p95 {ack['p95_ms']} ms, "
          f"p99 {ack['p99_ms']} ms over {ack['n']} jobs (target p99 < 100 ms)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
