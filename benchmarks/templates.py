"""Template mode on generated device printouts: accuracy on unseen seeds, and speed vs the full pipeline.

    python benchmarks/templates.py [--n 40] [--seed 2026] [--pipeline-pages 0] [--out FILE]
    python benchmarks/templates.py --layouts rm_slip_v1 ko_form_v1 --templates DIR --out FILE

With ``--templates`` (user templates, e.g. made by ``ocrpipe template new``) added to the built-ins and
``--layouts`` (e.g. the held-out ones of :mod:`ocrpipe.synth.printouts.heldout`), the same on those pages.
With ``--baseline-src DIR`` (the ``src`` folder of another checkout, e.g. a ``git worktree`` of an older
commit) template mode of that code runs too, in a worker process on the same page files, interleaved with
the other two (timed inside the worker: the pipe is not counted), and its time and the ratios to it are
reported.

Generates ``n`` printouts (all layouts in turn) with a seed the templates were not tuned on (they were
authored from the layout geometry and checked on seed 11), runs template mode on every page and scores it
(field accuracy, numeric fields silently wrong, template chosen), and runs ``Pipeline.default().run_image``
on the same pages (all, or the first ``--pipeline-pages``). The two are interleaved page by page (the
order alternating), so a change in background load hits both alike. Reports mean and median per-page
times, their ratios, and where template mode spends its time (match, crop, each reader).
Results: ``benchmarks/results/templates.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ocrpipe.synth.printouts import generate
from ocrpipe.templates.engine import Match, TemplateEngine, TemplateResult
from ocrpipe.templates.evaluate import Score, load_truths, score_page
from ocrpipe.templates.schema import template_set

RESULTS = Path(__file__).resolve().parent / "results" / "templates.json"

_WORKER = """
import json, sys, time
import numpy as np
from PIL import Image
from ocrpipe.templates.engine import TemplateEngine
from ocrpipe.templates.schema import template_set
args = json.loads(sys.argv[1])
engine = TemplateEngine(template_set(args["templates"])) if args["templates"] else TemplateEngine()
pages = [np.asarray(Image.open(p).convert("RGB")) for p in args["pages"]]
engine.run_image(pages[0])
print("ready", flush=True)
for line in sys.stdin:
    t0 = time.perf_counter()
    result, _ = engine.run_image(pages[int(line)])
    print(json.dumps({"ms": (time.perf_counter() - t0) * 1000, "stages": result.timings_ms if result else {}}),
          flush=True)
"""
"""Template mode of another checkout (``--baseline-src``): reads page indices, answers each page's time."""


class Baseline:
    """A worker process running :data:`_WORKER` with ``src`` first on its path."""

    def __init__(self, src: str, pages: list[Path], templates: list[str] | None) -> None:
        env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
        arg = json.dumps({"pages": [str(p) for p in pages], "templates": templates})
        self.proc = subprocess.Popen([sys.executable, "-c", _WORKER, arg], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"
        self.ms: list[float] = []
        self.stages: dict[str, list[float]] = defaultdict(list)

    def run(self, index: int) -> None:
        """Template mode on page ``index`` in the worker; its time (measured there) is kept."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{index}\n")
        self.proc.stdin.flush()
        got = json.loads(self.proc.stdout.readline())
        self.ms.append(got["ms"])
        for k, v in got["stages"].items():
            self.stages[k].append(v)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _commit(folder: str | Path) -> str | None:
    """The git commit checked out at ``folder`` (None outside a checkout)."""
    got = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return got.stdout.strip() if got.returncode == 0 else None


def _timed(fn: Any, *args: Any) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - t0) * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--pipeline-pages", type=int, default=0, help="pages for the full pipeline (0 = all)")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--layouts", nargs="*", help="layouts to generate (default: the built-in templates' ones)")
    ap.add_argument("--templates", action="append", metavar="PATH", help="user templates added to the built-ins")
    ap.add_argument("--strength", type=float, default=1.0, help="scan effects (1 = the generator's default)")
    ap.add_argument("--baseline-src", metavar="DIR", help="also time template mode of the code in DIR (a src folder)")
    args = ap.parse_args(argv)

    from ocrpipe import Pipeline

    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, args.n, args.seed, args.layouts, args.strength)
        pages = [(p, t, np.asarray(Image.open(p).convert("RGB"))) for p, t in load_truths(tmp)]
        baseline = Baseline(args.baseline_src, [p for p, _, _ in pages], args.templates) \
            if args.baseline_src else None

    engine = TemplateEngine(template_set(args.templates)) if args.templates else TemplateEngine()
    pipeline = Pipeline.default()
    engine.run_image(pages[0][2])  # warm-up: model sessions, Tesseract APIs
    pipeline.run_image(pages[0][2])

    score = Score()
    stages: dict[str, list[float]] = defaultdict(list)
    run_template = engine.run_image
    reads: dict[str, int] = defaultdict(int)
    def run(img: np.ndarray) -> tuple[TemplateResult | None, Match]:
        """``engine.run_image``, keeping each page's stage timings."""
        result, match = run_template(img)
        for k, v in (result.timings_ms if result else {}).items():
            stages[k].append(v)
        for k, n in (result.reads if result else {}).items():
            reads[k] += n
        return result, match

    engine.run_image = run  # type: ignore[method-assign, assignment]

    def template_page(path: Path, truth: dict[str, Any], image: np.ndarray) -> None:
        score_page(score, engine, image, truth, path.name)

    pipe_pages = args.pipeline_pages or len(pages)
    load_before = os.getloadavg()
    tpl_ms: list[float] = []
    pipe_ms: list[float] = []
    for i, (path, truth, image) in enumerate(pages):
        if baseline is not None and i % 2 == 1:
            baseline.run(i)
        if i >= pipe_pages:
            tpl_ms.append(_timed(template_page, path, truth, image))
        elif i % 2 == 0:
            tpl_ms.append(_timed(template_page, path, truth, image))
            pipe_ms.append(_timed(pipeline.run_image, image))
        else:
            pipe_ms.append(_timed(pipeline.run_image, image))
            tpl_ms.append(_timed(template_page, path, truth, image))
        if baseline is not None and i % 2 == 0:
            baseline.run(i)
    if baseline is not None:
        baseline.close()

    tpl_mean, pipe_mean = statistics.fmean(tpl_ms), statistics.fmean(pipe_ms)
    tpl_med, pipe_med = statistics.median(tpl_ms), statistics.median(pipe_ms)
    summary = score.summary()
    result = {
        "commit": _commit(Path(__file__).parent),
        "seed": args.seed, "layouts": args.layouts, "templates": args.templates, "strength": args.strength,
        "pages": len(pages), "pipeline_pages": len(pipe_ms),
        "template_ms_per_page": round(tpl_mean, 1), "pipeline_ms_per_page": round(pipe_mean, 1),
        "speedup": round(pipe_mean / tpl_mean, 2),
        "template_ms_median": round(tpl_med, 1), "pipeline_ms_median": round(pipe_med, 1),
        "speedup_median": round(pipe_med / tpl_med, 2),
        "template_stages_ms": {k: round(statistics.fmean(v), 2) for k, v in stages.items()},
        **({"baseline_src": args.baseline_src, "baseline_commit": _commit(args.baseline_src),
            "baseline_ms_per_page": round(statistics.fmean(baseline.ms), 1),
            "baseline_ms_median": round(statistics.median(baseline.ms), 1),
            "speedup_vs_baseline": round(statistics.fmean(baseline.ms) / tpl_mean, 2),
            "baseline_speedup": round(pipe_mean / statistics.fmean(baseline.ms), 2),
            "baseline_stages_ms": {k: round(statistics.fmean(v), 2) for k, v in baseline.stages.items()}}
           if baseline is not None else {}),
        "reads_per_page": {k: round(n / len(pages), 2) for k, n in reads.items()},
        "pipeline_engine": pipeline.engine_name,
        "template_readers": [engine.recognizer.name, engine.reader.name,
                             engine.arbiter.name if engine.arbiter else None],
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OCRPIPE_THREADS")},
        "load_average_1min": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        **{k: v for k, v in summary.items() if k != "ms_per_page_mean"},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"pages {len(pages)} (seed {args.seed}); template chosen correctly {summary['template_accuracy']:.1%}")
    print(f"field accuracy {summary['field_accuracy']:.2%} ({summary['fields']} fields), "
          f"correct and valid {summary['field_accuracy_valid']:.2%}, flagged {summary['flagged_rate']:.2%}")
    print(f"numeric accuracy {summary['numeric_accuracy']:.2%}; silently wrong: all {summary['silently_wrong']}, "
          f"numeric {summary['numeric_silently_wrong']}")
    print(f"template mode {tpl_mean:.0f} ms/page (median {tpl_med:.0f}) vs full pipeline {pipe_mean:.0f} ms/page "
          f"(median {pipe_med:.0f}): {pipe_mean / tpl_mean:.1f}x faster (medians {pipe_med / tpl_med:.1f}x)")
    if baseline is not None:
        b_mean = statistics.fmean(baseline.ms)
        print(f"baseline template mode ({args.baseline_src}) {b_mean:.0f} ms/page (median "
              f"{statistics.median(baseline.ms):.0f}): {pipe_mean / b_mean:.1f}x faster than the full pipeline; "
              f"this code {b_mean / tpl_mean:.2f}x faster than it")
        print("baseline stages (ms, mean): " + ", ".join(f"{k} {v}" for k, v in result["baseline_stages_ms"].items()))
    print("template stages (ms, mean): " + ", ".join(f"{k} {v}" for k, v in result["template_stages_ms"].items())
          + "; fields read per page: " + ", ".join(f"{k} {v}" for k, v in result["reads_per_page"].items()))
    print(f"wrote {args.out}")
    return 0 if summary["numeric_silently_wrong"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
