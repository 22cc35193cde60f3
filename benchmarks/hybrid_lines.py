"""Per-line readings of both hybrid readers, so selection rules can be compared in seconds.

    python benchmarks/hybrid_lines.py ../shared/data/ko_docs ../shared/data/en_sroie          # collect + score
    python benchmarks/hybrid_lines.py --reuse ../shared/data/ko_docs ../shared/data/en_sroie  # score saved data

**Collect** (skipped with ``--reuse`` when the JSONL exists): for every page of each dataset folder the
``hybrid`` pipeline's page path runs once (``Pipeline.trace_page`` with the primary as recogniser: its step
record gives the crops, their quads and the ``ko`` readings), and every line crop is read by the hybrid's
own recogniser objects through their public methods:

* ``ko``      -- the primary (``ko_rec``, confidence = mean symbol probability);
* ``tess``    -- the secondary (``TesseractRecognizer('kor+eng')``), its routed reading (what
  ``secondary.recognize`` returns: ``kor`` first, ``eng`` too when the line looks Latin or unsure);
* ``tess_kor`` / ``tess_eng`` -- that recogniser's single-language readings, with the seconds each took
  (``tess`` is derived from these two by the recogniser's own routing, see :func:`routed`; ``--verify``
  checks it against ``secondary.recognize`` on the first dataset);
* ``ko_bin``  -- ``ko_rec`` on the Otsu-binarised crop (a cheap third opinion).

Each crop is linked to ground-truth lines with the evaluation's own rule (intersection ≥ half of the smaller
polygon, :func:`ocrpipe.evaluation.geometry.half_of_smaller`); ``gt`` is the linked lines' text in reading
order (``null`` when the dataset has no line boxes or nothing links) and ``gt_crops`` how many crops share
those lines. One JSON object per crop goes to ``benchmarks/results/hybrid_lines/<dataset>.jsonl``. Those files
hold the evaluation sets' ground-truth text and readings of their images: keep them local, never commit them
(``shared/data/README.md``); only ``summary.md`` is committed.

**Score**: each rule picks one reading per crop; the chosen texts are put back on the crops' boxes, ordered
like the pipeline does (:func:`ocrpipe.engine.order.reading_order`) and scored with
:func:`ocrpipe.evaluation.scoring.score_document` -- the same numbers ``ocrpipe eval`` prints (line CER where
the dataset has line boxes, else page CER). ``tess%`` is the share of crops a rule sends to Tesseract and
``tess s/pg`` the Tesseract seconds per page that costs (measured single-thread, per crop). ``oracle`` takes,
per crop, the reading closer to its ``gt`` (line-box datasets only). The table is also written to
``benchmarks/results/hybrid_lines/summary.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rapidfuzz.distance import Levenshtein

from ocrpipe.document import Line, RecResult, build_document, quad_to_box
from ocrpipe.engine.order import ordered_page
from ocrpipe.engine.recognize import hybrid
from ocrpipe.engine.recognize.tesseract import latin_share
from ocrpipe.evaluation import geometry
from ocrpipe.evaluation import metrics as m
from ocrpipe.evaluation.dataset import Dataset, load_dataset
from ocrpipe.evaluation.scoring import Prediction, aggregate, score_document

OUT = Path(__file__).resolve().parent / "results" / "hybrid_lines"


# ---- collection ---------------------------------------------------------------------------------------


def routed(kor: RecResult, eng: RecResult, tess: Any) -> RecResult:
    """What ``TesseractRecognizer.recognize`` returns given its two single-language readings."""
    return tess.routed(kor, [eng])


def _tess_one(tess: Any, crop: np.ndarray) -> dict[str, Any]:
    out = {}
    for lang in ("kor", "eng"):
        t0 = time.perf_counter()
        r = tess.read_line(crop, lang)
        out[lang] = {"text": r.text, "conf": round(r.confidence, 4), "s": round(time.perf_counter() - t0, 4)}
    return out


def _rec(r: RecResult) -> dict[str, Any]:
    return {"text": r.text, "conf": round(float(r.confidence), 4)}


def collect(dataset: Dataset, pipeline: Any, *, verify: bool = False) -> list[dict[str, Any]]:
    """One record per crop of every page (see the module docstring)."""
    rec = pipeline.recognizer
    ko_rec, tess = rec.primary, rec.secondary
    records: list[dict[str, Any]] = []
    pool = ThreadPoolExecutor(max_workers=tess.threads)
    for n, sample in enumerate(dataset.samples):
        with pipeline.open(sample.image_path) as source:
            image = source.render(0)
        trace = pipeline.trace_page(image, recognize=ko_rec.recognize)  # the page path, read by ko_rec alone
        det, crops, ko = trace.detection, list(trace.crops.images), list(trace.readings.results)
        quads = det.quads
        ko_bin = ko_rec.recognize([hybrid.binarise(c) for c in crops])
        per_lang = list(pool.map(lambda c: _tess_one(tess, c), crops))
        if verify:
            direct = tess.recognize(crops)
            for d, p in zip(direct, per_lang, strict=True):
                mine = routed(RecResult(p["kor"]["text"], p["kor"]["conf"]),
                              RecResult(p["eng"]["text"], p["eng"]["conf"]), tess)
                if d.text != mine.text:
                    print(f"  routing mismatch: {d.text!r} vs {mine.text!r}", file=sys.stderr)
        gt_text, gt_crops = _link(sample, quads)
        for i, crop in enumerate(crops):
            p = per_lang[i]
            kor = RecResult(p["kor"]["text"], p["kor"]["conf"])
            eng = RecResult(p["eng"]["text"], p["eng"]["conf"])
            records.append({
                "dataset": dataset.name, "page": sample.name, "page_w": image.shape[1], "page_h": image.shape[0],
                "idx": i, "quad": np.round(quads[i], 1).tolist(), "det_score": round(float(det.scores[i]), 4),
                "h": int(crop.shape[0]), "w": int(crop.shape[1]),
                "gt": gt_text[i], "gt_crops": gt_crops[i],
                "ko": _rec(ko[i]), "ko_bin": _rec(ko_bin[i]), "tess": _rec(routed(kor, eng, tess)),
                "tess_kor": p["kor"], "tess_eng": p["eng"],
            })
        print(f"  {dataset.name} {n + 1}/{len(dataset)}: {len(crops)} crops", file=sys.stderr, flush=True)
    return records


def _link(sample: Any, quads: np.ndarray) -> tuple[list[str | None], list[int]]:
    """Per crop: the text of the ground-truth lines it links to (reading order), and how many crops share them."""
    n = len(quads)
    gt = [r for r in sample.lines if not r.dont_care]
    if not gt or not n:
        return [None] * n, [0] * n
    links = geometry.half_of_smaller(geometry.polygons([r.points for r in gt]),
                                     geometry.polygons([q for q in quads]))
    texts: list[str | None] = []
    shared: list[int] = []
    for j in range(n):
        idx = [int(i) for i in np.flatnonzero(links[:, j])]
        if not idx:
            texts.append(None)
            shared.append(0)
            continue
        boxes = [geometry.bounds(gt[i].points) for i in idx]
        texts.append(" ".join(gt[idx[k]].text for k in geometry.reading_order(boxes)))
        shared.append(int(links[idx].any(axis=0).sum()))
    return texts, shared


# ---- rules --------------------------------------------------------------------------------------------


def _r(d: dict[str, Any]) -> RecResult:
    return RecResult(d["text"], d["conf"])


@dataclass(frozen=True)
class Rule:
    """``ask(ko)``: does the crop go to Tesseract; ``choose(ko, tess, rec)``: the reading kept (``rec`` = record)."""

    name: str
    ask: Callable[[RecResult], bool]
    choose: Callable[[RecResult, RecResult, dict[str, Any]], RecResult]
    langs: tuple[str, ...] = ("kor", "eng")
    """Which Tesseract reads an asked crop costs (for the seconds estimate): routed = kor (+ eng when routed)."""


def _more_confident(ko: RecResult, t: RecResult, rec: dict[str, Any]) -> RecResult:
    return t if t.confidence > ko.confidence else ko


def _by_script(ko: RecResult, rec: dict[str, Any]) -> RecResult:
    """The Tesseract reading the hybrid gets: ``eng`` alone when ko_rec read no Hangul, else routed kor+eng."""
    return _r(rec["tess_eng"]) if not hybrid.has_hangul(ko.text) else _r(rec["tess"])


def _calibrated(weight: float, *, script: bool, third: bool) -> Callable[[RecResult, RecResult, dict[str, Any]],
                                                                           RecResult]:
    def choose(ko: RecResult, t: RecResult, rec: dict[str, Any]) -> RecResult:
        alt = _by_script(ko, rec) if script else t
        return hybrid.choose(ko, alt, _r(rec["ko_bin"]) if third else None, weight=weight)

    return choose


def _latin_prefers_tesseract(ko: RecResult, t: RecResult, rec: dict[str, Any]) -> RecResult:
    """No Hangul in either reading: Tesseract (eng) unless its confidence is below 0.5; else the old rule."""
    eng = _r(rec["tess_eng"])
    if not hybrid.has_hangul(ko.text) and not hybrid.has_hangul(t.text):
        return eng if eng.confidence >= 0.5 and eng.text else ko
    return _more_confident(ko, t, rec)


def _ask(threshold: float) -> Callable[[RecResult], bool]:
    return lambda ko: hybrid.should_ask(ko, threshold)


RULES: list[Rule] = [
    Rule("ko_rec only", lambda ko: False, lambda ko, t, rec: ko),
    Rule("tesseract only (the Tesseract path)", lambda ko: True, lambda ko, t, rec: t),
    Rule("old: conf<0.95, more confident wins", _ask(0.95), _more_confident),
    Rule("implemented: hybrid.should_ask + hybrid.choose", lambda ko: hybrid.should_ask(ko),
         _calibrated(hybrid.WEIGHT, script=True, third=True), ("script",)),
]


def extra_rules() -> list[Rule]:
    """Candidate rules tried while designing ``hybrid.choose`` on ko_docs + en_sroie (kept for the record)."""
    return [
        Rule("A: conf<0.95, agree / calibrated w=0.3, routed tess", _ask(0.95),
             _calibrated(0.3, script=False, third=False)),
        Rule("A': as A, w=0.5", _ask(0.95), _calibrated(0.5, script=False, third=False)),
        Rule("A'': as A, w=0.2", _ask(0.95), _calibrated(0.2, script=False, third=False)),
        Rule("B: A + Tesseract by ko_rec's script (eng if no Hangul)", _ask(0.95),
             _calibrated(0.3, script=True, third=False), ("script",)),
        Rule("C: B + binarised ko_rec third opinion (= implemented)", _ask(0.95),
             _calibrated(0.3, script=True, third=True), ("script",)),
        Rule("C@0.98: C asking below 0.98", _ask(0.98), _calibrated(0.3, script=True, third=True), ("script",)),
        Rule("C@0.99: C asking below 0.99", _ask(0.99), _calibrated(0.3, script=True, third=True), ("script",)),
        Rule("D: Latin lines -> Tesseract eng unless conf<0.5, else old", _ask(0.95), _latin_prefers_tesseract,
             ("kor", "eng")),
    ]


# ---- scoring ------------------------------------------------------------------------------------------


def _seconds(rec: dict[str, Any], langs: tuple[str, ...]) -> float:
    """Tesseract seconds of one asked crop: ``("kor", "eng")`` = the routed reading, ``("script",)`` = ``eng``
    alone when ko_rec's reading has no Hangul, else the routed reading."""
    kor, eng = rec["tess_kor"], rec["tess_eng"]
    if langs == ("script",) and not hybrid.has_hangul(rec["ko"]["text"]):
        return eng["s"]
    if langs in (("kor", "eng"), ("script",)):
        if kor["conf"] < 0.8 or latin_share(kor["text"]) >= 0.4:
            return kor["s"] + eng["s"]
        return kor["s"]
    return sum(rec[f"tess_{lang}"]["s"] for lang in langs)


def score(dataset: Dataset, records: list[dict[str, Any]], rule: Rule, *, oracle: bool = False) -> dict[str, Any]:
    """Eval metrics of ``rule`` over the saved crops of ``dataset``, plus its Tesseract share and seconds."""
    by_page: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_page.setdefault(rec["page"], []).append(rec)
    rows = []
    asked = 0
    seconds = 0.0
    for sample in dataset.samples:
        lines = []
        recs = by_page.get(sample.name, [])
        for rec in recs:
            ko, t = _r(rec["ko"]), _r(rec["tess"])
            if oracle:
                chosen = _oracle(ko, t, rec, dataset.casefold)
            elif rule.ask(ko):
                asked += 1
                seconds += _seconds(rec, rule.langs)
                chosen = rule.choose(ko, t, rec)
            else:
                chosen = ko
            text = chosen.text.strip()
            if text:
                lines.append(Line(text, float(chosen.confidence), quad_to_box(np.asarray(rec["quad"]))))
        w, h = (recs[0]["page_w"], recs[0]["page_h"]) if recs else (1, 1)
        doc = build_document(rule.name, (ordered_page(0, w, h, lines),))
        rows.append(score_document(sample, Prediction(doc), casefold=dataset.casefold))
    agg = aggregate(rows)
    key = "line_cer" if agg.get("line_cer") is not None else "page_cer"
    return {"key": key, "cer": agg[key], "tess_share": asked / max(1, len(records)),
            "tess_s_per_page": seconds / max(1, len(dataset))}


def _oracle(ko: RecResult, t: RecResult, rec: dict[str, Any], casefold: bool) -> RecResult:
    if rec["gt"] is None:
        return ko if len(m.no_spaces(ko.text)) <= len(m.no_spaces(t.text)) else t
    gt = m.no_spaces(rec["gt"], casefold=casefold)
    d_ko = Levenshtein.distance(gt, m.no_spaces(ko.text, casefold=casefold))
    d_t = Levenshtein.distance(gt, m.no_spaces(t.text, casefold=casefold))
    return t if d_t < d_ko else ko


def load_records(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--reuse", action="store_true", help="score the saved JSONL instead of re-reading")
    ap.add_argument("--verify", action="store_true", help="check the derived routed reading on the first dataset")
    ap.add_argument("--candidates", action="store_true", help="also score benchmarks/hybrid_rules.py")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    pipeline = None
    rules = RULES + (extra_rules() if args.candidates else [])
    table: list[tuple[str, str, dict[str, Any]]] = []
    for k, folder in enumerate(args.folders):
        dataset = load_dataset(folder)
        path = args.out / f"{dataset.name}.jsonl"
        if args.reuse and path.is_file():
            records = load_records(path)
        else:
            if pipeline is None:
                from ocrpipe.engine.pipeline import Pipeline, PipelineConfig

                pipeline = Pipeline(PipelineConfig(recognizer="hybrid"))
            t0 = time.perf_counter()
            records = collect(dataset, pipeline, verify=args.verify and k == 0)
            print(f"{dataset.name}: {len(records)} crops in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            with path.open("w", encoding="utf-8") as fh:
                for rec in records:
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        table.append((dataset.name, "oracle (best of two per line)", score(dataset, records, RULES[0], oracle=True)))
        for rule in rules:
            table.append((dataset.name, rule.name, score(dataset, records, rule)))
    lines = [
        "Selection rules of the ko_rec + Tesseract hybrid, scored from saved per-crop readings "
        "(`python benchmarks/hybrid_lines.py --reuse --candidates FOLDER...`). CER = what `ocrpipe eval` reports "
        "(line CER with line boxes, else page CER). Rules were designed on ko_docs + en_sroie; the other folders "
        "are checks. `tess %`: share of crops sent to Tesseract; `tess s/page`: single-thread Tesseract seconds "
        "that costs (measured on a shared, loaded 2-core machine: compare within a dataset only).",
        "",
        "| dataset | rule | metric | CER | tess % | tess s/page |", "|---|---|---|---:|---:|---:|"]
    for name, rule_name, s in table:
        oracle = rule_name.startswith("oracle")
        if oracle and s["key"] != "line_cer":
            continue
        share = "-" if oracle else f"{100 * s['tess_share']:.0f}"
        secs = "-" if oracle else f"{s['tess_s_per_page']:.3f}"
        lines.append(f"| {name} | {rule_name} | {s['key']} | {s['cer']:.4f} | {share} | {secs} |")
    text = "\n".join(lines)
    print(text)
    (args.out / "summary.md").write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
