"""Recognition throughput: lines/s of CTC recognisers at batch 1 and batch 32, and Tesseract per line,
on the same synthetic document lines in the same run.

    python benchmarks/rec_throughput.py [--model ko_rec ...] [--onnx FILE ...] [--lines 256] [--out FILE]

``--model`` and ``--onnx`` repeat: every recogniser named is measured in the same run, interleaved (batch 1
of each, then batch 32 of each, ``--repeat`` rounds), and each is reported with its ratio to the first one,
in lines per wall second and, at batch 32, per CPU second of the process (the steadier figure when the machine
is shared: on an idle 2-core machine the wall rate is at most twice the CPU rate).

Lines are rendered from the bundled sample text with a system Korean font at detector-like sizes; results
go to benchmarks/results/rec_throughput.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make_lines(n: int) -> list[np.ndarray]:
    from ocrpipe.samples import SAMPLE_LINES, render_page

    rng = np.random.default_rng(0)
    lines: list[np.ndarray] = []
    while len(lines) < n:
        size = int(rng.integers(18, 34))
        page, truth = render_page(SAMPLE_LINES, size=size)
        for item in truth:
            (x0, y0), (x1, y1) = item["points"][0], item["points"][2]
            pad = int(rng.integers(2, 8))
            lines.append(np.ascontiguousarray(page[max(0, y0 - pad):y1 + pad, max(0, x0 - pad):x1 + pad]))
    return lines[:n]


def load(model: str | None = None, onnx: str | None = None):  # type: ignore[no-untyped-def]
    from ocrpipe.engine import runtime
    from ocrpipe.engine.recognize.ctc import CTCRecognizer

    if onnx:
        digest = hashlib.sha256(Path(onnx).read_bytes()).hexdigest()
        spec = runtime.ModelSpec(name=Path(onnx).stem, kind="recognizer", source=f"file:{onnx}", sha256=digest)
        return CTCRecognizer(spec, runtime.create_session(runtime.verified_path(spec)))
    return CTCRecognizer.from_name(model or "ko_rec")


def rate(fn, lines: list[np.ndarray], batch: int, repeat: int) -> float:
    return rates(fn, lines, batch, repeat)[0]


def rates(fn, lines: list[np.ndarray], batch: int, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(lines per wall second, lines per CPU second of this process): on a loaded shared machine the CPU
    figure is the steadier measure of cost."""
    fn(lines[:batch])  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        for i in range(0, len(lines), batch):
            fn(lines[i:i + batch])
    n = repeat * len(lines)
    return n / (time.perf_counter() - start), n / max(time.process_time() - cpu, 1e-9)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="a recogniser from the model manifest (repeatable)")
    ap.add_argument("--onnx", action="append", help="an exported CTC model file (repeatable)")
    ap.add_argument("--lines", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "rec_throughput.json"))
    args = ap.parse_args()

    from ocrpipe.engine.recognize.tesseract import TesseractRecognizer

    recs = [load(model=m) for m in args.model or []] + [load(onnx=f) for f in args.onnx or []]
    recs = recs or [load()]
    lines = make_lines(args.lines)
    b1 = {r.name: 0.0 for r in recs}
    b32 = {r.name: 0.0 for r in recs}
    cpu32 = {r.name: 0.0 for r in recs}
    for _ in range(args.repeat):  # interleaved, so a change of machine load touches every model alike
        for rec in recs:
            rec.batch_size = 1
            b1[rec.name] += rate(rec.recognize, lines, 1, 1) / args.repeat
        for rec in recs:
            rec.batch_size = 32
            wall, cpu = rates(rec.recognize, lines, 32, 1)
            b32[rec.name] += wall / args.repeat
            cpu32[rec.name] += cpu / args.repeat
    tess = TesseractRecognizer("kor+eng")
    tess_rate = rate(tess.recognize, lines[:64], 32, 1)
    first = recs[0].name
    rows = [{"model": r.name, "params": r.session.get_modelmeta().custom_metadata_map.get("params"),
             "lines_per_s_batch1": b1[r.name], "lines_per_s_batch32": b32[r.name],
             "lines_per_cpu_s_batch32": cpu32[r.name], f"cpu_batch32_over_{first}": cpu32[r.name] / cpu32[first],
             "batch32_over_batch1": b32[r.name] / b1[r.name], "batch32_over_tesseract": b32[r.name] / tess_rate,
             f"batch32_over_{first}": b32[r.name] / b32[first]} for r in recs]
    result = {
        "benchmark": "rec_throughput", "model": first, "lines": len(lines),
        "mean_width_px": float(np.mean([ln.shape[1] for ln in lines])),
        "mean_height_px": float(np.mean([ln.shape[0] for ln in lines])),
        "lines_per_s_batch1": b1[first], "lines_per_s_batch32": b32[first], "tesseract_lines_per_s": tess_rate,
        "models": rows,
        "threads": os.environ.get("OCRPIPE_THREADS", "auto"), "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    print(f"{'recogniser':<34} {'lines/s':>9} {'vs ' + first:>12} {'lines/CPU-s':>12} {'vs ' + first:>12}")
    for r in rows:
        print(f"{r['model'] + ' batch 1':<34} {r['lines_per_s_batch1']:>9.1f}")
        print(f"{r['model'] + ' batch 32':<34} {r['lines_per_s_batch32']:>9.1f} {r[f'batch32_over_{first}']:>11.2f}x "
              f"{r['lines_per_cpu_s_batch32']:>12.1f} {r[f'cpu_batch32_over_{first}']:>11.2f}x")
    print(f"{'tesseract kor+eng per line':<34} {tess_rate:>9.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
