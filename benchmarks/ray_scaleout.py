"""Scale-out on Ray, measured in one run on this machine: bulk throughput and online latency.

    python benchmarks/ray_scaleout.py [DATASET_DIR] [--pages 6] [--clients 2] [--requests 5] [--bulk-only]

Bulk (``ocrpipe batch`` over the first ``--pages`` images of the dataset, default ``../shared/data/ko_docs``): the
single-process local runner (``--jobs 1``, the baseline), then Ray Data with 1 and 2 detector actors and as many
recogniser actors (``--det-actors N --rec-actors N``; decode in Ray tasks) on a local two-node cluster
(:class:`ocrpipe.cluster.local.LocalCluster`: a head and a worker, separate ``ray start`` processes with one CPU
each — the machine's two cores). Pages per second of each whole command (start-up and model loading included) and
files per second from the first file done to the last (steady state); for both, the 2-replica speed-up over 1, its
efficiency (speed-up / 2) and the ratios to the local baseline.

Online (``POST /v1/ocr`` of the bundled sample page, ``--clients`` concurrent clients x ``--requests`` each,
after one warm-up request; ``--worker-nice 0`` for both): the single-process ``ocrpipe serve`` (SQLite) vs
``ocrpipe serve --ray`` (PostgreSQL, one ingress, two detector and one recogniser replica); p50/p99 latency and
requests per second.

Writes ``benchmarks/results/ray_scaleout.json`` (``--bulk-only``: replaces its bulk part, keeps the online one).
The machine is shared: read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLE = ROOT / "src" / "ocrpipe" / "assets" / "sample_ko.png"
ENV = {**os.environ, "OCRPIPE_THREADS": "1", "OMP_NUM_THREADS": "1"}
BULK_RAY = ["--ray-detector-cpus", "0.4", "--ray-recognizer-cpus", "0.3"]
SMALL_RAY = ["--ray-ingress-cpus", "0.2", "--ray-detector-cpus", "0.4", "--ray-recognizer-cpus", "0.3"]


def batch(src: Path, out: Path, *extra: str) -> dict[str, Any]:
    """One ``ocrpipe batch`` command to its end: wall seconds and pages per second."""
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "ocrpipe", "batch", str(src), "--out", str(out), *extra],
                         capture_output=True, text=True, env=ENV, timeout=1800)
    seconds = time.perf_counter() - start
    if res.returncode != 0:
        raise RuntimeError(f"ocrpipe batch {' '.join(extra)} failed:\n{res.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    pages = sum(len(json.loads(p.read_text(encoding="utf-8"))["pages"]) for p in out.rglob("*.json")
                if p.name != "summary.json")
    return {"command": "ocrpipe batch " + " ".join(extra), "files": summary["succeeded"], "pages": pages,
            "seconds": round(seconds, 2), "pages_per_s": round(pages / seconds, 4),
            "steady_files_per_s": summary["steady_files_per_s"]}


def load(url: str, clients: int, requests: int) -> dict[str, Any]:
    """``clients`` threads each posting the sample page ``requests`` times; latency percentiles."""
    import httpx

    page = SAMPLE.read_bytes()
    with httpx.Client(base_url=url, timeout=600) as client:
        warm = client.post("/v1/ocr", files={"file": ("page.png", page, "image/png")})
        warm.raise_for_status()

    def one_client(_: int) -> list[float]:
        out = []
        with httpx.Client(base_url=url, timeout=600) as client:
            for _ in range(requests):
                t = time.perf_counter()
                resp = client.post("/v1/ocr", files={"file": ("page.png", page, "image/png")})
                resp.raise_for_status()
                out.append(time.perf_counter() - t)
        return out

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        latencies = sorted(x for xs in pool.map(one_client, range(clients)) for x in xs)
    wall = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"requests": len(latencies), "p50_s": round(q[49], 3), "p99_s": round(q[98], 3),
            "mean_s": round(statistics.fmean(latencies), 3), "requests_per_s": round(len(latencies) / wall, 4)}


def serve(data_dir: Path, *extra: str, timeout: float = 600) -> tuple[subprocess.Popen[bytes], str]:
    """``ocrpipe serve`` without gRPC, one ONNX Runtime thread per session, once ready."""
    sys.path.insert(0, str(HERE))
    from service_load import start_server

    data_dir.mkdir(parents=True, exist_ok=True)
    return start_server(data_dir, ["--grpc-port", "0", *extra], env=ENV, timeout=timeout)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def pg_url() -> Any:
    sys.path.insert(0, str(ROOT / "tests"))
    from testsupport.databases import pg_database

    return pg_database()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", nargs="?", type=Path, default=ROOT.parent / "shared" / "data" / "ko_docs")
    parser.add_argument("--pages", type=int, default=6)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--bulk-only", action="store_true", help="measure bulk only; keep the file's online part")
    args = parser.parse_args()
    import signal

    from ocrpipe.cluster.local import LocalCluster

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed run still stops its cluster

    images = sorted(p for p in (args.dataset / "images").iterdir() if p.suffix == ".png")[: args.pages]
    result: dict[str, Any] = {"dataset": str(args.dataset), "pages": len(images), "cpus": os.cpu_count(),
                              "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "in"
        src.mkdir()
        for p in images:
            (src / p.name).symlink_to(p)
        bulk: dict[str, Any] = {"local_1_process": batch(src, tmp / "local1", "--jobs", "1")}
        print("bulk local --jobs 1:", bulk["local_1_process"], flush=True)
        with LocalCluster(workers=1, cpus_per_node=1, object_store_mb=200, env=ENV) as cluster:
            for n in (1, 2):
                bulk[f"ray_{n}_actor"] = batch(src, tmp / f"ray{n}", "--ray", cluster.address, "--det-actors",
                                               str(n), "--rec-actors", str(n), *BULK_RAY)
                print(f"bulk ray {n} detector + {n} recogniser actor(s):", bulk[f"ray_{n}_actor"], flush=True)
            for rate in ("pages_per_s", "steady_files_per_s"):  # whole command; first to last file done
                one, two = bulk["ray_1_actor"][rate], bulk["ray_2_actor"][rate]
                base = bulk["local_1_process"][rate]
                bulk[f"{rate}:ray_speedup_2_vs_1"] = round(two / one, 3)
                bulk[f"{rate}:ray_efficiency_2"] = round(two / one / 2, 3)
                bulk[f"{rate}:ray_2_vs_local_1"] = round(two / base, 3)
                bulk[f"{rate}:ray_1_vs_local_1"] = round(one / base, 3)
            result["bulk"] = bulk
            out = HERE / "results" / "ray_scaleout.json"
            if args.bulk_only:
                kept = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
                result = {**kept, **result, "online_from_an_earlier_run": "online" in kept}
                result["load_after"] = os.getloadavg()
                out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
                print(json.dumps(result["bulk"], indent=2))
                print(f"wrote {out}")
                return 0

            online: dict[str, Any] = {"clients": args.clients, "requests_per_client": args.requests}
            # --worker-nice 0 on both: the single-process server lowers its OCR threads' priority by default,
            # Ray's workers run at normal priority; on a shared machine that alone changes their CPU share
            proc, url = serve(tmp / "srv-local", "--worker-nice", "0")
            try:
                online["single_process"] = load(url, args.clients, args.requests)
            finally:
                stop(proc)
            print("online single process:", online["single_process"], flush=True)
            with pg_url() as db:
                proc, url = serve(tmp / "srv-ray", "--ray", cluster.address, "--database-url", db,
                                  "--ray-detector-replicas", "2", "--worker-nice", "0", *SMALL_RAY)
                try:
                    online["ray"] = load(url, args.clients, args.requests)
                finally:
                    stop(proc)
            print("online ray:", online["ray"], flush=True)
            online["p50_ratio_ray_vs_single"] = round(online["ray"]["p50_s"] / online["single_process"]["p50_s"], 3)
            online["p99_ratio_ray_vs_single"] = round(online["ray"]["p99_s"] / online["single_process"]["p99_s"], 3)
            result["online"] = online
    result["load_after"] = os.getloadavg()
    out = HERE / "results" / "ray_scaleout.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
