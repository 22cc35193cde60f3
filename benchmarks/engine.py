"""Engine speed: ocrpipe's pipeline vs Tesseract whole-page (kor+eng, psm 3) on the same pages, same run.

    python benchmarks/engine.py [DATASET_DIR | FILES...] [--limit N] [--repeat R] [--recognizer NAME]
                                [--compare NAME ...] [--out FILE]

``--compare tesseract`` also times the pipeline with that recogniser (e.g. the Tesseract path: the same
detector, Tesseract reading the lines) on the same pages, and reports its time over the main pipeline's.

With no input it uses ../shared/data/ko_docs when present, else pages rendered from the bundled sample
text. Prints seconds per page for each engine and the ratio, and writes them to
benchmarks/results/engine.json. Each engine runs once on every page as warm-up before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ko_docs"


def load_pages(inputs: list[str], limit: int) -> tuple[list[np.ndarray], str]:
    from ocrpipe.engine.decode import load_pages as decode

    paths: list[Path] = []
    source = "files"
    if not inputs and DEFAULT_DATA.is_dir():
        inputs = [str(DEFAULT_DATA)]
    for item in inputs:
        p = Path(item)
        if (p / "labels.jsonl").is_file():
            rows = [json.loads(line) for line in (p / "labels.jsonl").read_text().splitlines() if line.strip()]
            paths += [p / r["image"] for r in rows]
            source = str(p)
        else:
            paths.append(p)
    if paths:
        return [decode(p)[0] for p in paths[:limit]], source
    from ocrpipe.samples import SAMPLE_LINES, render_page

    pages = [render_page(SAMPLE_LINES[i:] + SAMPLE_LINES[:i])[0] for i in range(min(limit, 6))]
    return pages, "rendered sample pages"


class TesseractPage:
    """Tesseract's own whole-page layout analysis and recognition (psm 3), at the source resolution."""

    def __init__(self, lang: str = "kor+eng") -> None:
        import tesserocr

        from ocrpipe.engine.recognize.tesseract import find_tessdata

        self.api = tesserocr.PyTessBaseAPI(path=find_tessdata(lang), lang=lang, psm=tesserocr.PSM.AUTO)

    def __call__(self, image: np.ndarray) -> str:
        from PIL import Image

        self.api.SetImage(Image.fromarray(image))
        return self.api.GetUTF8Text()


def time_engine(fn, pages: list[np.ndarray], repeat: int) -> list[float]:
    for page in pages:  # warm-up
        fn(page)
    times = []
    for _ in range(repeat):
        for page in pages:
            start = time.perf_counter()
            fn(page)
            times.append(time.perf_counter() - start)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="*")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--recognizer", default="auto")
    ap.add_argument("--compare", nargs="*", default=[], metavar="NAME",
                    help="other recognisers to time in the same pipeline on the same pages")
    ap.add_argument("--out", default=str(HERE / "results" / "engine.json"))
    args = ap.parse_args()

    from ocrpipe import Pipeline, PipelineConfig

    pages, source = load_pages(args.inputs, args.limit)
    pipeline = Pipeline(PipelineConfig(recognizer=args.recognizer))
    tesseract = TesseractPage()
    stage_totals: dict[str, float] = {}

    def run_ocrpipe(page: np.ndarray) -> None:
        doc = pipeline.run_image(page)
        for k, v in doc.timings_ms.items():
            stage_totals[k] = stage_totals.get(k, 0.0) + v

    ours = time_engine(run_ocrpipe, pages, args.repeat)
    baseline = time_engine(tesseract, pages, args.repeat)
    compared = {}
    for name in args.compare:
        other = Pipeline(PipelineConfig(recognizer=name))
        secs = statistics.mean(time_engine(other.run_image, pages, args.repeat))
        compared[other.engine_name] = {"s_per_page": secs, "ratio_over_ocrpipe": secs / statistics.mean(ours)}
    n_runs = 2 * len(pages) * args.repeat  # stage totals include the warm-up pass
    result = {
        "benchmark": "engine",
        "source": source,
        "pages": len(pages),
        "repeat": args.repeat,
        "engine": pipeline.engine_name,
        "ocrpipe_s_per_page": statistics.mean(ours),
        "tesseract_page_s_per_page": statistics.mean(baseline),
        "ratio_tesseract_over_ocrpipe": statistics.mean(baseline) / statistics.mean(ours),
        "ocrpipe_stage_ms_per_page": {k: v / n_runs for k, v in stage_totals.items()},
        "compared_pipelines": compared,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "threads": os.environ.get("OCRPIPE_THREADS", "auto"),
    }
    print(f"pages: {len(pages)} from {source}")
    print(f"{'engine':<40} {'s/page':>8}")
    print(f"{pipeline.engine_name:<40} {result['ocrpipe_s_per_page']:>8.3f}")
    print(f"{'tesseract kor+eng whole page (psm 3)':<40} {result['tesseract_page_s_per_page']:>8.3f}")
    for name, row in compared.items():
        print(f"{name:<40} {row['s_per_page']:>8.3f}  ({row['ratio_over_ocrpipe']:.2f}x the main pipeline's time)")
    print(f"ratio (tesseract time / ocrpipe time): {result['ratio_tesseract_over_ocrpipe']:.2f}x")
    print("ocrpipe per-stage ms/page:", {k: round(v, 1) for k, v in result["ocrpipe_stage_ms_per_page"].items()})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
