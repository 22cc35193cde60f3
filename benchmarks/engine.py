"""Engine speed: ocrpipe's pipeline vs Tesseract whole-page (kor+eng, psm 3) on the same pages, same run.

    python benchmarks/engine.py [DATASET_DIR | FILES...] [--limit N] [--repeat R] [--recognizer NAME]
                                [--compare NAME ...] [--out FILE]

``--compare tesseract`` also times the pipeline with that recogniser (e.g. the Tesseract path: the same
detector, Tesseract reading the lines) on the same pages, and reports its time over the main pipeline's;
``--compare REC@DETECTOR`` swaps the detector too (``auto@ppocrv4_det_int8``).

Every engine is timed in wall seconds and in CPU seconds of this process (all its threads: ONNX Runtime's and
Tesseract's pools included), the steadier figure on a shared machine; ``--cli`` adds the ``tesseract``
command (kor+eng, psm 3, ``OMP_THREAD_LIMIT=1``) on the same pages, its CPU time taken from the child's rusage (model
loading included, as a user running the command pays it). The main pipeline's CPU time is split by component
(detector network vs its pre/post-processing, each recogniser's network vs the rest, Tesseract's re-reads),
and the hybrid's routing is counted (lines, lines re-read by Tesseract, re-reads that changed the text).

With no input it uses ../shared/data/ko_docs when present, else pages rendered from the bundled sample
text. Prints seconds per page for each engine and the ratio, and writes them to
benchmarks/results/engine.json. Each engine runs once on every page as warm-up before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


class TesseractCLI:
    """The ``tesseract`` command on a page saved as PNG (kor+eng, psm 3); CPU time from the child's rusage."""

    def __init__(self, lang: str = "kor+eng") -> None:
        self.lang = lang
        self.dir = tempfile.TemporaryDirectory()
        self.child_cpu = 0.0

    def __call__(self, image: np.ndarray) -> str:
        from PIL import Image

        path = Path(self.dir.name) / "page.png"
        Image.fromarray(image).save(path)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        # One OpenMP thread: Debian's tesseract spins idle OpenMP workers, which on a shared 2-core machine
        # bills several times the CPU time of the work itself (4.6 vs 1.2 CPU s/page in one run).
        out = subprocess.run(["tesseract", str(path), "-", "-l", self.lang, "--psm", "3"], capture_output=True,
                             check=True, text=True, env={**os.environ, "OMP_THREAD_LIMIT": "1"}).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.child_cpu += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return out


def time_engine(fn, pages: list[np.ndarray], repeat: int) -> list[float]:
    return time_engine_cpu(fn, pages, repeat)[0]


def time_engine_cpu(fn, pages: list[np.ndarray], repeat: int,  # type: ignore[no-untyped-def]
                    child: TesseractCLI | None = None) -> tuple[list[float], list[float]]:
    """(wall seconds, CPU seconds) per timed page; each page runs once as warm-up first. ``child``: the CPU
    time is that of the child processes ``fn`` starts."""
    for page in pages:  # warm-up
        fn(page)
    times, cpus = [], []
    for _ in range(repeat):
        for page in pages:
            start, cpu0 = time.perf_counter(), child.child_cpu if child else time.process_time()
            fn(page)
            times.append(time.perf_counter() - start)
            cpus.append((child.child_cpu if child else time.process_time()) - cpu0)
    return times, cpus


class Timed:
    """A proxy that adds the process CPU seconds of each call of ``method`` to ``totals[key]``."""

    def __init__(self, target: Any, method: str, key: str, totals: dict[str, float]) -> None:
        self._target, self._method, self._key, self._totals = target, method, key, totals

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name != self._method:
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            cpu = time.process_time()
            try:
                return attr(*args, **kwargs)
            finally:
                self._totals[self._key] += time.process_time() - cpu
        return timed


def instrument(pipeline: Any, totals: dict[str, float], counts: dict[str, int]) -> None:
    """Wrap the pipeline's detector session and recognisers so their CPU time lands in ``totals``; count the
    hybrid's routing in ``counts``."""
    for stage in ("preprocess", "detect", "crop", "read", "order"):
        setattr(pipeline, stage, getattr(Timed(pipeline, stage, f"stage:{stage}", totals), stage))
    det = pipeline.detector
    det.session = Timed(det.session, "run", "detect_network", totals)
    rec = pipeline.recognizer
    readers = [("primary", rec)] if not hasattr(rec, "primary") else [
        ("primary", rec.primary), ("latin_first", rec.latin_first), ("secondary", rec.secondary),
        ("latin", rec.latin)]
    for role, reader in readers:
        if reader is None:
            continue
        label = f"{role}:{reader.name}"
        if hasattr(reader, "session"):
            reader.session = Timed(reader.session, "run", f"{label}:network", totals)
        if role == "primary" and reader is rec:
            continue
        setattr(rec, role, _counting(reader, label, totals, counts))
    if hasattr(rec, "primary"):
        _count_changes(rec, counts)


def _counting(reader: Any, label: str, totals: dict[str, float], counts: dict[str, int]) -> Any:
    proxy = Timed(reader, "recognize", f"{label}:total", totals)
    inner: Callable[..., Any] = proxy.recognize

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(proxy, name)

        def recognize(self, crops: Any) -> Any:
            counts[f"{label}:lines"] += len(crops)
            return inner(crops)
    return Counting()


def _count_changes(rec: Any, counts: dict[str, int]) -> None:
    """Count, per page, the lines Tesseract re-read and how many of those ended with another text than
    the one they would have had without the re-read."""
    from ocrpipe.engine.recognize import hybrid

    original = rec._recognize
    choose = hybrid.choose

    def _recognize(crops: Any) -> Any:
        seen: list[tuple[str, str]] = []

        def counting_choose(primary: Any, secondary: Any, third: Any = None, **kw: Any) -> Any:
            out = choose(primary, secondary, third, **kw)
            seen.append((primary.text, out.text))
            return out
        hybrid.choose = counting_choose
        try:
            return original(crops)
        finally:
            hybrid.choose = choose
            counts["reread_lines"] += len(seen)
            counts["reread_changed_text"] += sum("".join(a.split()) != "".join(b.split()) for a, b in seen)
    rec._recognize = _recognize


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="*")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--recognizer", default="auto")
    ap.add_argument("--compare", nargs="*", default=[], metavar="NAME",
                    help="other recognisers to time in the same pipeline on the same pages; REC@DETECTOR also "
                         "swaps the detector (e.g. hybrid_latin_int8@ppocrv4_det_int8)")
    ap.add_argument("--cli", action="store_true", help="also time the tesseract command on the same pages")
    ap.add_argument("--profile", action="store_true",
                    help="split the main pipeline's CPU time by component (adds a little overhead)")
    ap.add_argument("--out", default=str(HERE / "results" / "engine.json"))
    args = ap.parse_args()

    from ocrpipe import Pipeline, PipelineConfig

    pages, source = load_pages(args.inputs, args.limit)
    pipeline = Pipeline(PipelineConfig(recognizer=args.recognizer))
    tesseract = TesseractPage()
    stage_totals: dict[str, float] = {}
    cpu_parts: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    if args.profile:
        instrument(pipeline, cpu_parts, counts)

    def run_ocrpipe(page: np.ndarray) -> None:
        doc = pipeline.run_image(page)
        for k, v in doc.timings_ms.items():
            stage_totals[k] = stage_totals.get(k, 0.0) + v

    ours, ours_cpu = time_engine_cpu(run_ocrpipe, pages, args.repeat)
    baseline, baseline_cpu = time_engine_cpu(tesseract, pages, args.repeat)
    cli = TesseractCLI() if args.cli else None
    cli_wall, cli_cpu = time_engine_cpu(cli, pages, args.repeat, child=cli) if cli else ([], [])
    compared = {}
    for name in args.compare:
        rec_name, _, det_name = name.partition("@")
        other = Pipeline(PipelineConfig(recognizer=rec_name, **({"detector": det_name} if det_name else {})))
        walls, cpus = time_engine_cpu(other.run_image, pages, args.repeat)
        secs, cpu = statistics.mean(walls), statistics.mean(cpus)
        compared[other.engine_name] = {"s_per_page": secs, "ratio_over_ocrpipe": secs / statistics.mean(ours),
                                       "cpu_s_per_page": cpu, "cpu_ratio_over_ocrpipe": cpu / statistics.mean(ours_cpu)}
    n_runs = (1 + args.repeat) * len(pages)  # stage totals include the warm-up pass
    our_cpu, tess_cpu = statistics.mean(ours_cpu), statistics.mean(baseline_cpu)
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
        "ocrpipe_cpu_s_per_page": our_cpu,
        "tesseract_page_cpu_s_per_page": tess_cpu,
        "cpu_ratio_ocrpipe_over_tesseract": our_cpu / tess_cpu,
        "tesseract_cli_s_per_page": statistics.mean(cli_wall) if cli_wall else None,
        "tesseract_cli_cpu_s_per_page": statistics.mean(cli_cpu) if cli_cpu else None,
        "cpu_ratio_ocrpipe_over_tesseract_cli": our_cpu / statistics.mean(cli_cpu) if cli_cpu else None,
        "ocrpipe_cpu_ms_per_page_by_component": {k: 1000 * v / n_runs for k, v in sorted(cpu_parts.items())},
        "ocrpipe_routing_per_page": {k: v / n_runs for k, v in sorted(counts.items())},
        "compared_pipelines": compared,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "threads": os.environ.get("OCRPIPE_THREADS", "auto"),
    }
    print(f"pages: {len(pages)} from {source}")
    print(f"{'engine':<48} {'s/page':>8} {'CPU s/page':>11}")
    print(f"{pipeline.engine_name:<48} {result['ocrpipe_s_per_page']:>8.3f} {our_cpu:>11.3f}")
    print(f"{'tesseract kor+eng whole page (psm 3, tesserocr)':<48} {result['tesseract_page_s_per_page']:>8.3f} "
          f"{tess_cpu:>11.3f}")
    if cli_cpu:
        print(f"{'tesseract command (kor+eng, psm 3)':<48} {statistics.mean(cli_wall):>8.3f} "
              f"{statistics.mean(cli_cpu):>11.3f}")
    for name, row in compared.items():
        print(f"{name:<48} {row['s_per_page']:>8.3f} {row['cpu_s_per_page']:>11.3f}  "
              f"({row['cpu_ratio_over_ocrpipe']:.2f}x the main pipeline's CPU time)")
    print(f"ratio (tesseract time / ocrpipe time): {result['ratio_tesseract_over_ocrpipe']:.2f}x")
    print(f"CPU time ocrpipe / tesseract whole page: {result['cpu_ratio_ocrpipe_over_tesseract']:.2f}x"
          + (f"; / tesseract command: {result['cpu_ratio_ocrpipe_over_tesseract_cli']:.2f}x" if cli_cpu else ""))
    print("ocrpipe per-stage ms/page:", {k: round(v, 1) for k, v in result["ocrpipe_stage_ms_per_page"].items()})
    if args.profile:
        print("ocrpipe CPU ms/page by component:",
              {k: round(v, 1) for k, v in result["ocrpipe_cpu_ms_per_page_by_component"].items()})
        print("routing per page:", {k: round(v, 1) for k, v in result["ocrpipe_routing_per_page"].items()})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
