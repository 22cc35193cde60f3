"""Fit a recogniser's confidence calibration on tuning material and check it on held-out material.

    ocrpipe eval runs/en_synth/tune runs/ko_synth/tune runs/en_synth/heldout ../shared/data/ko_docs ... \
        --engine ocrpipe:hybrid_latin --report runs/eval
    python benchmarks/calibrate.py --fit runs/eval/report.json --tune runs/en_synth/tune --tune runs/ko_synth/tune \
        --engine ocrpipe:hybrid_latin --recognizer hybrid_latin [--check other/report.json] [--write]

The line confidence points ``ocrpipe eval`` keeps per image (``calibration``: confidence, exactly right, 1 -
CER) of the ``--tune`` folders of the ``--fit`` report are pooled and fitted by isotonic regression
(:func:`ocrpipe.engine.recognize.calibration.fit_isotonic`); the ECE of every folder (tuning, then the report's
other folders and those of ``--check``, all held out) is printed before and after the map. ``--write`` stores
the table in ``src/ocrpipe/models/manifest.json`` under ``calibration.<recognizer>``. Fit only on material you
made (never ``../shared/data``); the eval must run with no table for that recogniser yet (raw confidences).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ocrpipe.engine.recognize.calibration import Calibration, fit_isotonic
from ocrpipe.engine.runtime import MANIFEST
from ocrpipe.evaluation import metrics as m


def points(report: dict[str, Any], engine: str) -> dict[str, list[m.CalibrationPoint]]:
    """Per folder (its path: two folders may share a name): the calibration points of ``engine``."""
    out = {}
    for ds in report["datasets"]:
        for eng in ds["engines"]:
            if eng["engine"] == engine:
                out[ds["path"]] = [m.CalibrationPoint(*p) for row in eng["per_image"]
                                   for p in row.get("calibration") or []]
    return out


def mapped(pts: list[m.CalibrationPoint], cal: Calibration) -> list[m.CalibrationPoint]:
    return [m.CalibrationPoint(cal(p.confidence), p.correct, p.accuracy) for p in pts]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fit", type=Path, required=True, help="report.json with the tuning folders")
    ap.add_argument("--tune", action="append", required=True,
                    help="a tuning folder as given to ocrpipe eval (repeatable); the report's other folders are "
                         "held out")
    ap.add_argument("--check", type=Path, action="append", default=[], help="report.json of held-out folders")
    ap.add_argument("--engine", required=True, help="engine name in the reports, e.g. ocrpipe:hybrid_latin")
    ap.add_argument("--recognizer", required=True, help="manifest key for the table, e.g. hybrid_latin")
    ap.add_argument("--knots", type=int, default=20)
    ap.add_argument("--write", action="store_true", help="store the table in the model manifest")
    args = ap.parse_args(argv)
    fit_report = json.loads(args.fit.read_text(encoding="utf-8"))
    every = points(fit_report, args.engine)
    tune = {k: v for k, v in every.items() if k in args.tune}
    if set(args.tune) - set(tune):
        raise SystemExit(f"not in the report: {sorted(set(args.tune) - set(tune))}")
    pooled = [p for pts in tune.values() for p in pts]
    cal = fit_isotonic([p.confidence for p in pooled], [p.correct for p in pooled], knots=args.knots,
                       fitted_on=f"{len(pooled)} lines of {', '.join(sorted(tune))} ({args.engine}, ocrpipe eval)")
    rows = ["| material | folder | lines | ECE before | ECE after | ECE(1-CER) before | ECE(1-CER) after |",
            "|---|---|---:|---:|---:|---:|---:|"]
    held = {k: v for k, v in every.items() if k not in tune}
    sets = [("tuning", tune), ("held-out", held)] + [
        ("held-out", points(json.loads(c.read_text(encoding="utf-8")), args.engine)) for c in args.check]
    for kind, by_folder in sets:
        for folder, pts in by_folder.items():
            after = mapped(pts, cal)
            rows.append(f"| {kind} | {folder} | {len(pts)} | {_f(m.ece(pts))} | {_f(m.ece(after))} | "
                        f"{_f(m.ece(pts, target='accuracy'))} | {_f(m.ece(after, target='accuracy'))} |")
    print("\n".join(rows))
    print(json.dumps(cal.to_dict()))
    if args.write:
        manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
        manifest.setdefault("calibration", {})[args.recognizer] = cal.to_dict()
        MANIFEST.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote calibration.{args.recognizer} to {MANIFEST}", file=sys.stderr)
    return 0


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    sys.exit(main())
