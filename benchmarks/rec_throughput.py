"""Recognition throughput: lines/s of a CTC recogniser at batch 1 and batch 32, and Tesseract per line,
on the same synthetic document lines in the same run.

    python benchmarks/rec_throughput.py [--model ko_rec | --onnx FILE] [--lines 256] [--out FILE]

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


def load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from ocrpipe.engine import runtime
    from ocrpipe.engine.recognize.ctc import CTCRecognizer

    if args.onnx:
        digest = hashlib.sha256(Path(args.onnx).read_bytes()).hexdigest()
        spec = runtime.ModelSpec(name=Path(args.onnx).stem, kind="recognizer", source=f"file:{args.onnx}",
                                 sha256=digest)
        return CTCRecognizer(spec, runtime.create_session(runtime.verified_path(spec)))
    return CTCRecognizer.from_name(args.model)


def rate(fn, lines: list[np.ndarray], batch: int, repeat: int) -> float:
    fn(lines[:batch])  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        for i in range(0, len(lines), batch):
            fn(lines[i:i + batch])
    return repeat * len(lines) / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ko_rec")
    ap.add_argument("--onnx")
    ap.add_argument("--lines", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "rec_throughput.json"))
    args = ap.parse_args()

    from ocrpipe.engine.recognize.tesseract import TesseractRecognizer

    rec = load(args)
    lines = make_lines(args.lines)
    rec.batch_size = 1
    b1 = rate(rec.recognize, lines, 1, args.repeat)
    rec.batch_size = 32
    b32 = rate(rec.recognize, lines, 32, args.repeat)
    tess = TesseractRecognizer("kor+eng")
    tess_rate = rate(tess.recognize, lines[:64], 32, 1)
    result = {
        "benchmark": "rec_throughput", "model": rec.name, "lines": len(lines),
        "mean_width_px": float(np.mean([ln.shape[1] for ln in lines])),
        "mean_height_px": float(np.mean([ln.shape[0] for ln in lines])),
        "lines_per_s_batch1": b1, "lines_per_s_batch32": b32, "tesseract_lines_per_s": tess_rate,
        "batch32_over_batch1": b32 / b1, "batch32_over_tesseract": b32 / tess_rate,
        "threads": os.environ.get("OCRPIPE_THREADS", "auto"), "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    print(f"{'recogniser':<28} {'lines/s':>9}")
    print(f"{rec.name + ' batch 1':<28} {b1:>9.1f}")
    print(f"{rec.name + ' batch 32':<28} {b32:>9.1f}")
    print(f"{'tesseract kor+eng per line':<28} {tess_rate:>9.1f}")
    print(f"batch 32 / batch 1: {b32 / b1:.2f}x   batch 32 / tesseract: {b32 / tess_rate:.1f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
