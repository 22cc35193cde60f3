"""Template mode on generated device printouts: accuracy on unseen seeds, and speed vs the full pipeline.

    python benchmarks/templates.py [--n 40] [--seed 2026] [--pipeline-pages 0]

Generates ``n`` printouts (all layouts in turn) with a seed the templates were not tuned on (they were
authored from the layout geometry and checked on seed 11), runs template mode on every page and scores it
(field accuracy, numeric fields silently wrong, template chosen), then runs ``Pipeline.default().run_image``
on the same pages (all, or the first ``--pipeline-pages``) and reports the per-page time ratio.
Results: ``benchmarks/results/templates.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ocrpipe.printouts import generate
from ocrpipe.templates.engine import TemplateEngine
from ocrpipe.templates.evaluate import Score, load_truths, score_page

RESULTS = Path(__file__).resolve().parent / "results" / "templates.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--pipeline-pages", type=int, default=0, help="pages for the full pipeline (0 = all)")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)

    from ocrpipe import Pipeline

    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, args.n, args.seed)
        pages = [(p, t, np.asarray(Image.open(p).convert("RGB"))) for p, t in load_truths(tmp)]

    engine = TemplateEngine()
    pipeline = Pipeline.default()
    engine.run_image(pages[0][2])  # warm-up: model sessions, Tesseract APIs
    pipeline.run_image(pages[0][2])

    score = Score()
    t0 = time.perf_counter()
    for path, truth, image in pages:
        score_page(score, engine, image, truth, path.name)
    template_s = time.perf_counter() - t0

    subset = pages[: args.pipeline_pages or len(pages)]
    t0 = time.perf_counter()
    for _, _, image in subset:
        pipeline.run_image(image)
    pipeline_s = time.perf_counter() - t0

    tpl_ms = 1000 * template_s / len(pages)
    pipe_ms = 1000 * pipeline_s / len(subset)
    summary = score.summary()
    result = {
        "seed": args.seed, "pages": len(pages), "pipeline_pages": len(subset),
        "template_ms_per_page": round(tpl_ms, 1), "pipeline_ms_per_page": round(pipe_ms, 1),
        "speedup": round(pipe_ms / tpl_ms, 2), "pipeline_engine": pipeline.engine_name,
        "template_recognizer": engine.recognizer.name,
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OCRPIPE_THREADS")},
        **{k: v for k, v in summary.items() if k != "ms_per_page_mean"},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"pages {len(pages)} (seed {args.seed}); template chosen correctly {summary['template_accuracy']:.1%}")
    print(f"field accuracy {summary['field_accuracy']:.2%} ({summary['fields']} fields), "
          f"correct and valid {summary['field_accuracy_valid']:.2%}, flagged {summary['flagged_rate']:.2%}")
    print(f"numeric accuracy {summary['numeric_accuracy']:.2%}; silently wrong: all {summary['silently_wrong']}, "
          f"numeric {summary['numeric_silently_wrong']}")
    print(f"template mode {tpl_ms:.0f} ms/page vs full pipeline {pipe_ms:.0f} ms/page: {pipe_ms / tpl_ms:.1f}x faster")
    print(f"wrote {args.out}")
    return 0 if summary["numeric_silently_wrong"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
