"""``ocrpipe eval`` and ``ocrpipe bench`` subcommands (registered through ``ocrpipe.cli``)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import platform
import sys
from pathlib import Path
from typing import Any

from ocrpipe.evaluation.engines import ENGINE_HELP, Engine, make_engine
from ocrpipe.evaluation.scoring import Prediction, evaluate_dataset


def register(subparsers: Any) -> None:
    """Add ``eval`` and ``bench`` to the ``ocrpipe`` command line."""
    p = subparsers.add_parser(
        "eval",
        help="score engines on labelled folders (labels.jsonl) and write a report",
        description="Run one or more engines on evaluation folders (labels.jsonl + images) and print "
        "CER/WER/word F1/line CER/detection/end-to-end metrics. Example: ocrpipe eval "
        "../shared/data/ko_docs --engine ocrpipe --engine tesseract --report out/ko_docs",
    )
    p.add_argument("datasets", nargs="+", metavar="DATASET_DIR", help="folder(s) holding labels.jsonl")
    p.add_argument(
        "--engine",
        action="append",
        dest="engines",
        metavar="NAME",
        help=f"engine to run, repeatable (default: ocrpipe): {ENGINE_HELP}",
    )
    p.add_argument("--report", metavar="DIR", help="write report.json, index.html, plots and predictions here")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N images of each folder")
    case = p.add_mutually_exclusive_group()
    case.add_argument(
        "--case-insensitive",
        dest="casefold",
        action="store_const",
        const=True,
        help="compare case-insensitively (default: auto, on when the GT has no lower case)",
    )
    case.add_argument("--case-sensitive", dest="casefold", action="store_const", const=False)
    p.add_argument("--worst", type=int, default=3, metavar="K", help="worst images drawn per engine (default 3)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_eval)

    from ocrpipe.evaluation.bench import register as register_bench

    register_bench(subparsers)


def cmd_eval(args: argparse.Namespace) -> int:
    from ocrpipe.evaluation import report

    engines = [make_engine(spec) for spec in (args.engines or ["ocrpipe"])]
    results = run_eval(
        [Path(d) for d in args.datasets],
        engines,
        limit=args.limit,
        casefold=args.casefold,
        progress=not args.no_progress,
        report_dir=Path(args.report) if args.report else None,
        worst=args.worst,
    )
    print(report.markdown_table(results) if args.markdown else report.format_table(results))
    if args.report:
        print(
            f"report: {Path(args.report) / 'index.html'}  (data: {Path(args.report) / 'report.json'})",
            file=sys.stderr,
        )
    errors = sum(e["metrics"]["errors"] for d in results["datasets"] for e in d["engines"])
    if errors:
        print(
            f"ocrpipe eval: {errors} image(s) failed; they are error rows scored as empty output",
            file=sys.stderr,
        )
    return 0


def run_eval(
    folders: list[Path],
    engines: list[Engine],
    *,
    limit: int | None = None,
    casefold: bool | None = None,
    progress: bool = True,
    report_dir: Path | None = None,
    worst: int = 3,
) -> dict[str, Any]:
    """Run every engine on every folder (sequentially, one process) and optionally write the report.

    Each timed engine first reads one image untimed (warm-up), so s/img excludes lazy initialisation.
    """
    from ocrpipe.evaluation.dataset import load_dataset

    results: dict[str, Any] = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "machine": platform.machine()},
        "datasets": [],
    }
    drawings: dict[tuple[str, str], list[dict]] = {}
    warmed: set[Engine] = set()
    for folder in folders:
        dataset = load_dataset(folder, limit=limit, casefold=casefold)
        dpis = {s.image_path: s.extra.get("render_dpi") for s in dataset}
        ds_out: dict[str, Any] = {
            "name": dataset.name,
            "path": str(folder),
            "casefold": dataset.casefold,
            "images": len(dataset),
            "engines": [],
        }
        for engine in engines:
            if engine.timed and engine not in warmed and dataset.samples:
                _warm_up(engine, dataset.samples[0].image_path)
                warmed.add(engine)
            kept: dict[str, tuple[Any, dict, Prediction | None]] = {}

            def keep(sample: Any, row: dict, pred: Prediction | None) -> None:
                kept[sample.name] = (sample, row, pred)  # noqa: B023 -- used within this iteration

            def run_fn(path: Path, engine: Engine = engine, dpis: dict = dpis) -> Prediction:
                return engine(path, dpis.get(path))

            summary = evaluate_dataset(
                dataset, run_fn, progress=progress, desc=f"{dataset.name}/{engine.name}", keep=keep
            )
            ds_out["engines"].append(
                {
                    "engine": engine.name,
                    "timed": engine.timed,
                    "models": engine.models(),
                    "metrics": summary["metrics"],
                    "per_image": summary["per_image"],
                }
            )
            if report_dir is not None:
                _save_predictions(report_dir, dataset.name, engine.name, kept)
                drawings[(dataset.name, engine.name)] = _draw_worst(report_dir, dataset.name, engine.name, kept, worst)
        results["datasets"].append(ds_out)
    if report_dir is not None:
        from ocrpipe.evaluation import report

        report.write_json(results, report_dir / "report.json")
        report.write_html(results, report_dir, drawings)
    return results


def _warm_up(engine: Engine, path: Path) -> None:
    """One untimed call, so lazy initialisation is not billed to the first image."""
    with contextlib.suppress(Exception):  # a failure shows up as an error row in the timed pass
        engine(path)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _save_predictions(report_dir: Path, ds: str, engine: str, kept: dict) -> None:
    """Predictions as ocrpipe JSON, laid out so ``--engine external:<that folder>`` re-scores them."""
    base = report_dir / "predictions" / _slug(ds) / _slug(engine)
    for name, (_, _, pred) in kept.items():
        if pred is None:
            continue
        path = base / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(pred.doc.to_dict(), ensure_ascii=False), encoding="utf-8")


def _draw_worst(report_dir: Path, ds: str, engine: str, kept: dict, k: int) -> list[dict]:
    from ocrpipe.evaluation.visual import draw_comparison

    if k <= 0 or not kept:
        return []
    key = "line_cer" if any(row.get("line_cer") for _, row, _ in kept.values()) else "page_cer"
    ranked = sorted(kept.values(), key=lambda t: -(t[1][key]["rate"] if t[1].get(key) else 0.0))
    out = []
    for sample, row, pred in ranked[:k]:
        png = Path("worst") / _slug(ds) / _slug(engine) / (_slug(sample.name) + ".png")
        label = f"{key.replace('_', ' ')} {row[key]['rate']:.3f}" if row.get(key) else ""
        if row.get("error"):
            label += f" (error: {row['error']['code']})"
        try:
            (report_dir / png).parent.mkdir(parents=True, exist_ok=True)
            draw_comparison(sample, pred).save(report_dir / png, optimize=True)
        except OSError as exc:  # an unreadable image still gets a line in the report
            label += f" (cannot draw: {exc})"
            png = Path("")
        out.append({"image": sample.name, "label": label, "png": str(png)})
    return out
