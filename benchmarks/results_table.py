"""The README results table: ocrpipe vs Tesseract whole page vs RapidOCR on every evaluation folder.

    python benchmarks/results_table.py [--data ../shared/data] [--engine NAME ...] [--limit N]
                                       [--limit-folder rec_iiit5k=200] [--report DIR]

Runs ``ocrpipe eval`` (same code) on each folder that holds a labels.jsonl, engines one after another in
this process, prints a Markdown table (line CER, page CER, word F1, s/img) and writes
``benchmarks/results/results_table.{json,md}`` plus the full HTML report under ``--report``
(default ``out/eval_report``, git-ignored because it draws the dataset's images). CPU-heavy: about half an
hour on 2 cores with the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data"
ENGINES = ["ocrpipe", "tesseract", "rapidocr"]
COLUMNS = ("images", "line CER", "page CER", "word F1", "kor e2e", "s/img")


def main(argv: list[str] | None = None) -> int:
    from ocrpipe.evaluation import report
    from ocrpipe.evaluation.cli import run_eval
    from ocrpipe.evaluation.engines import make_engine

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="folder of evaluation folders")
    p.add_argument("--engine", action="append", dest="engines", help=f"default: {' '.join(ENGINES)}")
    p.add_argument("--limit", type=int, help="first N images of every folder")
    p.add_argument(
        "--limit-folder",
        action="append",
        default=["rec_iiit5k=200"],
        metavar="NAME=N",
        help="per-folder limit (default rec_iiit5k=200: the word-crop set is large)",
    )
    p.add_argument("--only", action="append", metavar="NAME", help="only these folders")
    p.add_argument(
        "--report",
        default=str(HERE.parent / "out" / "eval_report"),
        help="HTML reports (default out/eval_report: git-ignored, it shows dataset images)",
    )
    p.add_argument("--out", default=str(HERE / "results" / "results_table"))
    args = p.parse_args(argv)

    data = Path(args.data)
    folders = sorted((d for d in data.iterdir() if (d / "labels.jsonl").is_file()), key=_priority)
    if args.only:
        folders = [d for d in folders if d.name in args.only]
    if not folders:
        print(f"no evaluation folders (with labels.jsonl) under {data}", file=sys.stderr)
        return 2
    per_folder = dict(item.split("=", 1) for item in args.limit_folder)
    engines = [make_engine(e) for e in (args.engines or ENGINES)]
    merged: dict | None = None
    out = Path(args.out)
    for folder in folders:
        limit = int(per_folder[folder.name]) if folder.name in per_folder else args.limit
        res = run_eval([folder], engines, limit=limit, report_dir=Path(args.report) / folder.name, worst=3)
        for ds in res["datasets"]:  # keep the summary small: per-image rows stay in the HTML reports
            for eng in ds["engines"]:
                eng.pop("per_image", None)
        if merged is None:
            merged = res
        else:
            merged["datasets"] += res["datasets"]
        print(report.markdown_table(res, COLUMNS), flush=True)
        _write(merged, out)  # after every folder, so a long run leaves partial results
    assert merged is not None
    print("\n" + report.markdown_table(merged, COLUMNS))
    print(f"\nwrote {out.with_suffix('.json')} and {out.with_suffix('.md')}; reports under {args.report}")
    return 0


def _priority(folder: Path) -> tuple[int, str]:
    """Korean documents first (the headline), the large word-crop set last."""
    order = ["ko_docs", "ko_product_images", "en_sroie", "en_funsd", "en_tesseract_pages", "rec_iiit5k"]
    return (order.index(folder.name) if folder.name in order else len(order), folder.name)


def _write(merged: dict, out: Path) -> None:
    from ocrpipe.evaluation import report

    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(merged, indent=1, ensure_ascii=False), encoding="utf-8")
    out.with_suffix(".md").write_text(report.markdown_table(merged, COLUMNS) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
