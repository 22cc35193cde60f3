"""Working memory of the text detector per network input pixel, and what ONNX Runtime's memory pattern costs.

    python benchmarks/detect_memory.py [--runs 3]

Each case runs in a fresh process (an ONNX Runtime arena keeps its peak, so cases must not share one): the
PP-OCRv4 detector on one intra-op thread, as the service runs it, detecting a white page ``--runs`` times
while a thread samples RSS every 10 ms. ``bytes_per_input_pixel`` is the peak RSS growth over the page
image already in memory, divided by the pixels of the network input the page is resized to
(:meth:`TextDetector.target_size`): the figure :data:`ocrpipe.engine.detect.predictor.WORK_BYTES_PER_PIXEL`
rounds up, which the service's page scheduler counts against its memory budget for every page in detection.

The memory-pattern cases run an A4 page (200 dpi) with ONNX Runtime's memory pattern on (its default) and
off (what the detector uses): with it on, the second run of the same size allocates a planned block beside
the chunks of the first. Writes ``benchmarks/results/detect_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = {"a4_100dpi": (827, 1170), "a5_200dpi": (1169, 1654), "a4_200dpi": (1654, 2339)}


def rss_mb() -> float:
    """Resident set size of this process in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(width: int, height: int, runs: int, memory_pattern: bool) -> dict[str, Any]:
    """One case, in this process: peak and final RSS growth over ``runs`` detections of a white page."""
    import numpy as np

    from ocrpipe.engine import runtime
    from ocrpipe.engine.detect.predictor import TextDetector

    spec, session = runtime.load_model("ppocrv4_det", runtime.SessionSettings(threads=1),
                                       memory_pattern=memory_pattern)
    detector = TextDetector(spec, session)
    page = np.full((height, width, 3), 255, np.uint8)
    base = rss_mb()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        detector(page)
        seconds.append(round(time.perf_counter() - start, 2))
    done.set()
    sampler.join()
    in_w, in_h = detector.target_size(width, height)
    growth = peak[0] - base
    return {"page": [width, height], "input": [in_w, in_h], "memory_pattern": memory_pattern, "runs": runs,
            "seconds_per_run": seconds, "rss_base_mb": round(base, 1), "peak_growth_mb": round(growth, 1),
            "growth_after_mb": round(rss_mb() - base, 1),
            "bytes_per_input_pixel": round(growth * 2**20 / (in_w * in_h), 1)}


def case(name: str, runs: int, memory_pattern: bool) -> dict[str, Any]:
    """Run one case in a fresh interpreter."""
    w, h = SIZES[name]
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
            f"import detect_memory as m; print(json.dumps(m.measure({w}, {h}, {runs}, {memory_pattern})))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return {"case": name, **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS / "detect_memory.json"))
    args = ap.parse_args()
    cases = [case(name, args.runs, False) for name in SIZES]
    pattern = [case("a4_200dpi", args.runs, True), case("a4_200dpi", args.runs, False)]
    for c in cases + pattern:
        pattern_on = "on " if c["memory_pattern"] else "off"
        print(f"{c['case']} input {c['input'][0]}x{c['input'][1]} memory pattern {pattern_on}: "
              f"+{c['peak_growth_mb']} MB peak, +{c['growth_after_mb']} MB after {c['runs']} runs "
              f"({c['bytes_per_input_pixel']} B per input pixel), s/run {c['seconds_per_run']}", flush=True)
    out = {"benchmark": "detect_memory", "cpu_count": os.cpu_count(), "machine": platform.machine(),
           "sizes": cases, "memory_pattern_same_run": pattern,
           "max_bytes_per_input_pixel": max(c["bytes_per_input_pixel"] for c in cases),
           "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]}
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
