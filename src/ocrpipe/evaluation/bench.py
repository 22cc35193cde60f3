"""``ocrpipe bench``: per-stage latency, throughput and peak memory of engines, against Tesseract measured
in the same run; with ``--server URL``, a load test of a running service (``/v1/ocr`` one document per
request vs ``/v1/batch_ocr``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from ocrpipe.evaluation.engines import ENGINE_HELP, Engine, make_engine

RENDER_DPI: dict[Path, float] = {}
"""Resolution stated by a dataset's labels (``render_dpi``), passed to engines that use it (Tesseract)."""
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".pdf"}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench",
        help="latency per stage, throughput and peak RSS vs Tesseract; or load-test a service",
        description="Benchmark engines on files or a dataset folder. Engines run one after another in this "
        "process; Tesseract whole-page is measured in the same run as the baseline. With --server, "
        "load-test a running `ocrpipe serve` instead.",
    )
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="FILE|DIR",
        help="images/PDFs or folders (labels.jsonl or plain); default: the bundled sample page",
    )
    p.add_argument(
        "--engine",
        action="append",
        dest="engines",
        metavar="NAME",
        help=f"engine(s) to measure (default ocrpipe): {ENGINE_HELP}",
    )
    p.add_argument("--no-baseline", action="store_true", help="skip the Tesseract whole-page baseline")
    p.add_argument("--limit", type=int, metavar="N", help="use at most N input files")
    p.add_argument("--repeat", type=int, default=1, metavar="R", help="passes over the inputs (default 1)")
    p.add_argument("--out", metavar="FILE.json", help="write the results as JSON")
    g = p.add_argument_group("service load test")
    g.add_argument("--server", metavar="URL", help="base URL of a running service, e.g. http://127.0.0.1:8000")
    g.add_argument("--docs", type=int, default=32, metavar="N", help="documents to send (default 32)")
    g.add_argument("--clients", type=int, default=4, metavar="C", help="concurrent clients (default 4)")
    g.add_argument("--batch-size", type=int, default=8, metavar="B", help="files per /v1/batch_ocr (default 8)")
    g.add_argument(
        "--api-key",
        default=os.environ.get("OCRPIPE_API_KEY"),
        help="bearer key for a service with API keys (default: $OCRPIPE_API_KEY)",
    )
    g.add_argument("--rounds", type=int, default=1, help="alternate the two modes R times, report medians")
    g.add_argument("--timeout", type=float, default=300.0, help="per-request timeout in seconds")
    p.set_defaults(func=cmd_bench)


def collect_inputs(inputs: list[str], limit: int | None = None) -> list[Path]:
    """Files from paths: a folder with labels.jsonl contributes its labelled images, others their images."""
    from ocrpipe.errors import ErrorCode, InputError

    files: list[Path] = []
    if not inputs:
        from ocrpipe.cli import SAMPLE

        inputs = [str(SAMPLE)]
    for raw in inputs:
        path = Path(raw)
        if path.is_dir() and (path / "labels.jsonl").is_file():
            from ocrpipe.evaluation.dataset import load_dataset

            for sample in load_dataset(path, limit=limit):
                files.append(sample.image_path)
                if sample.extra.get("render_dpi"):
                    RENDER_DPI[sample.image_path] = float(sample.extra["render_dpi"])
        elif path.is_dir():
            files += sorted(f for f in path.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(ErrorCode.FILE_NOT_FOUND, f"{path} not found")
    return files[:limit] if limit else files


# ---- memory ----------------------------------------------------------------------------------------------


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS counter (Linux ``clear_refs`` 5); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_mb() -> dict[str, float]:
    """Current and peak resident set size in MiB (``VmRSS``/``VmHWM``; ru_maxrss as a fallback)."""
    out: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                key = "rss_mb" if line.startswith("VmRSS") else "peak_rss_mb"
                out[key] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        import resource

        out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


# ---- local engines ---------------------------------------------------------------------------------------


def bench_engine(engine: Engine, files: list[Path], *, repeat: int = 1, progress: bool = True) -> dict[str, Any]:
    """Run ``engine`` over ``files`` (after one warm-up call); latency, stages, throughput, peak RSS."""
    from tqdm import tqdm

    reset_peak_rss()
    with contextlib.suppress(Exception):  # the measured pass below records any error
        engine(files[0], RENDER_DPI.get(files[0]))  # warm-up: lazy initialisation, caches
    walls: list[float] = []
    stages: dict[str, list[float]] = {}
    errors: list[dict[str, str]] = []
    start = time.perf_counter()
    for path in tqdm(
        [f for _ in range(repeat) for f in files],
        desc=f"bench/{engine.name}",
        disable=not progress,
        unit="doc",
    ):
        t0 = time.perf_counter()
        try:
            pred = engine(path, RENDER_DPI.get(path))
        except Exception as exc:  # noqa: BLE001 -- one bad file is a row, not a crash
            errors.append({"file": str(path), "error": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        walls.append(time.perf_counter() - t0)
        for stage, ms in pred.doc.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    elapsed = time.perf_counter() - start
    return {
        "engine": engine.name,
        "documents": len(walls),
        "errors": errors,
        "seconds_total": round(elapsed, 3),
        "throughput_docs_per_s": round(len(walls) / elapsed, 3) if elapsed > 0 else None,
        "latency_s": _latency(walls),
        "stages_ms_mean": {k: round(statistics.fmean(v), 1) for k, v in stages.items()},
        **rss_mb(),
    }


def _latency(walls: list[float]) -> dict[str, float | None]:
    if not walls:
        return {"mean": None, "p50": None, "p95": None, "max": None}
    ordered = sorted(walls)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {
        "mean": round(statistics.fmean(walls), 4),
        "p50": round(statistics.median(walls), 4),
        "p95": round(p95, 4),
        "max": round(ordered[-1], 4),
    }


def format_local(rows: list[dict[str, Any]], baseline: dict[str, Any] | None) -> str:
    """Table: engine, docs, mean/p95 latency, docs/s, peak RSS, speed vs Tesseract, then stages.

    Peak RSS is the process peak while that engine ran; engines measured earlier keep their models
    resident, so ``rss_before_mb`` (in the JSON) is what was already there.
    """
    head = (
        f"{'engine':<20} {'docs':>5} {'mean s':>8} {'p95 s':>8} {'docs/s':>8} {'peak MiB':>9} {'+MiB':>6} "
        f"{'vs tess':>8}"
    )
    out = [head, "-" * len(head)]
    base = baseline["latency_s"]["mean"] if baseline else None
    for r in rows:
        mean = r["latency_s"]["mean"]
        ratio = f"{base / mean:.2f}x" if base and mean else "-"
        out.append(
            f"{r['engine']:<20} {r['documents']:>5} {_f(mean, 3):>8} {_f(r['latency_s']['p95'], 3):>8} "
            f"{_f(r['throughput_docs_per_s'], 2):>8} {_f(r.get('peak_rss_mb'), 0):>9} "
            f"{_f(_grown(r), 0):>6} {ratio:>8}"
        )
    out.append("")
    out.append("mean ms per stage (Document.timings_ms):")
    for r in rows:
        out.append(f"  {r['engine']:<18} " + "  ".join(f"{k}={v:.0f}" for k, v in r["stages_ms_mean"].items()))
    out.append(
        "'vs tess' = Tesseract whole-page mean latency / engine mean latency (>1: faster than Tesseract); "
        "'+MiB' = peak RSS while the engine ran minus RSS before it was loaded"
    )
    return "\n".join(out)


def _grown(row: dict[str, Any]) -> float | None:
    """Peak RSS while the engine ran minus RSS before it was built (its models and buffers)."""
    if row.get("peak_rss_mb") is None or row.get("rss_before_mb") is None:
        return None
    return row["peak_rss_mb"] - row["rss_before_mb"]


def _f(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def cmd_bench(args: argparse.Namespace) -> int:
    files = collect_inputs(args.inputs, args.limit)
    if not files:
        print("ocrpipe bench: no input files", file=sys.stderr)
        return 2
    if args.server:
        from ocrpipe.evaluation.loadtest import format_load, load_test

        result = load_test(
            args.server,
            files,
            docs=args.docs,
            clients=args.clients,
            batch_size=args.batch_size,
            timeout=args.timeout,
            rounds=args.rounds,
            api_key=args.api_key,
        )
        print(format_load(result))
    else:
        result = run_local(files, args.engines or ["ocrpipe"], baseline=not args.no_baseline, repeat=args.repeat)
        print(format_local(result["engines"], result.get("baseline")))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def run_local(
    files: list[Path],
    engine_specs: list[str],
    *,
    baseline: bool = True,
    repeat: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Benchmark each engine, then (unless disabled) Tesseract whole page on the same files."""
    specs = list(engine_specs) + (["tesseract"] if baseline and "tesseract" not in engine_specs else [])
    rows = []
    for spec in specs:
        before = rss_mb().get("rss_mb", 0.0)
        row = bench_engine(make_engine(spec), files, repeat=repeat, progress=progress)
        row["rss_before_mb"] = before
        rows.append(row)
    base = None
    if baseline:
        base = next(r for r in rows if r["engine"] == "tesseract")
    if base and base["latency_s"]["mean"]:
        for r in rows:
            if r["latency_s"]["mean"]:
                r["speed_vs_tesseract"] = round(base["latency_s"]["mean"] / r["latency_s"]["mean"], 3)
    return {"files": [str(f) for f in files], "repeat": repeat, "engines": rows, "baseline": base}
