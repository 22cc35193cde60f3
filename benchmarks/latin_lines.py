"""Which reader for lines without Hangul: per-crop readings of ko_rec, the hybrid and PP-OCRv4, and routing rules
scored from them in seconds.

    python benchmarks/latin_lines.py runs/en_synth/tune ../shared/data/en_sroie     # collect + score
    python benchmarks/latin_lines.py --reuse runs/en_synth/tune                     # score saved readings

**Collect**: every page goes through the default page path once with ``ko_rec`` as recogniser
(``Pipeline.trace_page``); each crop is then read by ``ko_rec`` (``ko``), by today's default recogniser, the
``hybrid`` (``hy``: ko_rec with Tesseract re-reading doubtful lines), and by the PP-OCRv4 zh/en recogniser in
the model manifest (``pp``, ``ppocrv4_rec_ch``). Records go to
``benchmarks/results/latin_lines/<parent>_<dataset>.jsonl`` (kept local: for ``../shared/data`` folders they
hold evaluation text).

**Score**: each rule picks one reading per crop; the chosen texts are put back on the crops' boxes, ordered
like the pipeline and scored with :func:`ocrpipe.evaluation.scoring.score_document` (line CER where the folder
has line boxes, else page CER). Rules are designed on our own synthetic tuning pages only
(``ocrpipe.synth.pages``, seed 101); the held-out synthetic pages and ``../shared/data`` are checks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ocrpipe.document import Line, RecResult, build_document, quad_to_box
from ocrpipe.engine.order import ordered_page
from ocrpipe.engine.recognize import latin
from ocrpipe.engine.recognize.hybrid import has_hangul
from ocrpipe.evaluation.dataset import Dataset, load_dataset
from ocrpipe.evaluation.scoring import Prediction, aggregate, score_document

OUT = Path(__file__).resolve().parent / "results" / "latin_lines"


def collect(dataset: Dataset) -> list[dict[str, Any]]:
    """One record per crop of every page: its quad and the three readings."""
    from ocrpipe.engine.pipeline import Pipeline, PipelineConfig
    from ocrpipe.engine.recognize import load_recognizer

    pipeline = Pipeline(PipelineConfig(recognizer="ko_rec"))
    hy = load_recognizer("hybrid")
    pp = load_recognizer("ppocrv4_rec_ch")
    records: list[dict[str, Any]] = []
    for n, sample in enumerate(dataset.samples):
        with pipeline.open(sample.image_path) as source:
            image = source.render(0)
        trace = pipeline.trace_page(image)
        crops = list(trace.crops.images)
        ko = list(trace.readings.results)
        t0 = time.perf_counter()
        hy_res = hy.recognize(crops)
        t1 = time.perf_counter()
        pp_res = pp.recognize(crops)
        t2 = time.perf_counter()
        for i in range(len(crops)):
            records.append({
                "page": sample.name, "page_w": image.shape[1], "page_h": image.shape[0],
                "quad": np.round(trace.detection.quads[i], 1).tolist(),
                "ko": _rec(ko[i]), "hy": _rec(hy_res[i]), "pp": _rec(pp_res[i]),
            })
        print(f"  {dataset.name} {n + 1}/{len(dataset)}: {len(crops)} crops, hybrid {t1 - t0:.2f} s, "
              f"pp {t2 - t1:.2f} s", file=sys.stderr, flush=True)
    return records


def _rec(r: RecResult) -> dict[str, Any]:
    return {"text": r.text, "conf": round(float(r.confidence), 4)}


def _r(d: dict[str, Any]) -> RecResult:
    return RecResult(d["text"], d["conf"])


Rule = Callable[[dict[str, Any]], RecResult]


def _routed(min_conf: float) -> Rule:
    def rule(rec: dict[str, Any]) -> RecResult:
        return latin.choose(_r(rec["ko"]), _r(rec["hy"]), _r(rec["pp"]), min_conf=min_conf)

    return rule


RULES: dict[str, Rule] = {
    "ko_rec only": lambda rec: _r(rec["ko"]),
    "hybrid (today's default)": lambda rec: _r(rec["hy"]),
    "pp only": lambda rec: _r(rec["pp"]),
    "no Hangul (ko_rec) -> pp": lambda rec: _r(rec["pp"]) if not has_hangul(rec["ko"]["text"]) else _r(rec["hy"]),
    **{f"latin.choose min_conf={c}": _routed(c) for c in (0.0, 0.5, 0.7, 0.8, 0.9)},
}


def score(dataset: Dataset, records: list[dict[str, Any]], rule: Rule) -> dict[str, Any]:
    """The eval metric of ``rule`` over the saved crops of ``dataset``."""
    by_page: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_page.setdefault(rec["page"], []).append(rec)
    rows = []
    for sample in dataset.samples:
        recs = by_page.get(sample.name, [])
        lines = []
        for rec in recs:
            chosen = rule(rec)
            if chosen.text.strip():
                lines.append(Line(chosen.text.strip(), chosen.confidence, quad_to_box(np.asarray(rec["quad"]))))
        w, h = (recs[0]["page_w"], recs[0]["page_h"]) if recs else (1, 1)
        doc = build_document("rule", (ordered_page(0, w, h, lines),))
        rows.append(score_document(sample, Prediction(doc), casefold=dataset.casefold))
    agg = aggregate(rows)
    key = "line_cer" if agg.get("line_cer") is not None else "page_cer"
    return {"key": key, "cer": agg[key], "word_f1": agg["word_f1"]["f1"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--reuse", action="store_true", help="score the saved JSONL instead of re-reading")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    table = ["| dataset | rule | metric | CER | word F1 |", "|---|---|---|---:|---:|"]
    for folder in args.folders:
        dataset = load_dataset(folder, limit=args.limit)
        path = args.out / f"{folder.resolve().parent.name}_{dataset.name}.jsonl"  # runs/en_synth/tune: en_synth_tune
        if args.reuse and path.is_file():
            records = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        else:
            records = collect(dataset)
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        for name, rule in RULES.items():
            s = score(dataset, records, rule)
            table.append(f"| {dataset.name} | {name} | {s['key']} | {s['cer']:.4f} | {s['word_f1']:.4f} |")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
