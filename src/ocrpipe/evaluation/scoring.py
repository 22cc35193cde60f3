"""Score documents against samples, aggregate a folder, and run an engine over a folder.

>>> from ocrpipe import Pipeline
>>> from ocrpipe.evaluation import evaluate_folder
>>> summary = evaluate_folder("../shared/data/ko_docs", Pipeline.default().run, limit=3)  # doctest: +SKIP
>>> summary["metrics"]["line_cer"]                                                         # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ocrpipe.document import Document, build_document
from ocrpipe.errors import OcrError
from ocrpipe.evaluation import metrics as m
from ocrpipe.evaluation.dataset import Dataset, Sample, load_dataset

COUNT_METRICS = ("page_cer", "cer", "wer", "line_cer")
MATCH_METRICS = ("word_f1", "detection", "e2e", "kor_e2e")


@dataclass(frozen=True)
class Prediction:
    """An engine's output for one image: the document plus, optionally, word boxes it reported itself."""

    doc: Document
    words: tuple[m.Region, ...] | None = None


RunFn = Callable[[Path], "Document | Prediction"]


def lines_of(doc: Document) -> list[m.Region]:
    """The first page's lines as regions (evaluation images are single pages)."""
    if not doc.pages:
        return []
    return [m.Region.of(line.box, line.text) for line in doc.pages[0].lines]


def score_document(sample: Sample, doc: Document | Prediction, *, casefold: bool = False) -> dict[str, Any]:
    """Every metric for one image; box metrics are ``None`` when the sample has no boxes.

    Counts (``edits``/``total``, ``tp``/``n_gt``/``n_pred``) are kept beside the ratios so that
    :func:`aggregate` can sum them over a folder.
    """
    pred = doc if isinstance(doc, Prediction) else Prediction(doc)
    text = pred.doc.text
    out: dict[str, Any] = {
        "page_cer": _count(m.page_cer(sample.text, text, casefold=casefold)),
        "cer": _count(m.cer(sample.text, text, casefold=casefold)),
        "wer": _count(m.wer(sample.text, text, casefold=casefold)),
        "word_f1": _match(m.word_f1(sample.text, text, casefold=casefold)),
        "line_cer": None,
        "detection": None,
        "e2e": None,
        "kor_e2e": None,
    }
    lines = lines_of(pred.doc)
    out["n_pred_lines"] = len(lines)
    out["calibration"] = [[round(c.confidence, 4), c.correct, round(c.accuracy, 4)]
                          for c in _calibration(sample, pred.doc, lines, casefold)]
    if sample.lines:
        ignore = sample.ignore_regions
        lc = m.line_cer(sample.lines, lines, ignore, casefold=casefold)
        out["line_cer"] = _count(lc.count) | {
            "groups": lc.groups,
            "unlinked_gt": lc.unlinked_gt,
            "unlinked_pred": lc.unlinked_pred,
            "ignored_pred": lc.ignored_pred,
        }
        out["detection"] = _match(m.detection(sample.lines, lines, ignore))
        out["e2e"] = _match(m.end_to_end(sample.lines, lines, ignore, casefold=casefold))
        gt_words = list(sample.word_boxes) or m.words_of(sample.lines)
        pred_words = list(pred.words) if pred.words is not None else m.words_of(lines)
        out["kor_e2e"] = _match(m.korean_e2e(gt_words, pred_words, casefold=casefold))
    return out


def _calibration(sample: Sample, doc: Document, lines: list[m.Region], casefold: bool) -> list[m.CalibrationPoint]:
    """Confidence points of one image: per line where it has line boxes; a single-line image without boxes
    (a word or line crop) gives one point for its one predicted line."""
    confs = [line.confidence for line in doc.pages[0].lines] if doc.pages else []
    if sample.lines:
        return m.line_calibration(sample.lines, lines, confs, casefold=casefold)
    if len(lines) == 1 and sample.text.strip() and "\n" not in sample.text.strip():
        return [m.calibration_point(confs[0], sample.text, lines[0].text, casefold=casefold)]
    return []


def _count(c: m.ErrorCount) -> dict[str, Any]:
    return {"edits": c.edits, "total": c.total, "rate": round(c.rate, 6)}


def _match(c: m.MatchCount) -> dict[str, Any]:
    return {
        "tp": c.tp,
        "n_gt": c.n_gt,
        "n_pred": c.n_pred,
        "precision": round(c.precision, 6),
        "recall": round(c.recall, 6),
        "f1": round(c.f1, 6),
    }


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Folder-level metrics from per-image rows (``score_document`` output plus ``seconds``).

    Rates are micro averages (summed counts); ``*_mean`` keys are per-image macro means. ``kor_e2e``
    reports ``accuracy_micro`` (correct words ÷ words) and ``accuracy_macro`` (mean per-image accuracy).
    """
    out: dict[str, Any] = {"images": len(rows), "errors": sum(1 for r in rows if r.get("error"))}
    for key in COUNT_METRICS:
        parts = [r[key] for r in rows if r.get(key) is not None]
        if not parts:
            out[key] = None
            continue
        errors = m.ErrorCount(sum(p["edits"] for p in parts), sum(p["total"] for p in parts))
        out[key] = round(errors.rate, 6)
        out[f"{key}_mean"] = round(sum(p["rate"] for p in parts) / len(parts), 6)
    for key in MATCH_METRICS:
        parts = [r[key] for r in rows if r.get(key) is not None]
        if not parts:
            out[key] = None
            continue
        matches = m.MatchCount(*(sum(p[k] for p in parts) for k in ("tp", "n_gt", "n_pred")))
        out[key] = _match(matches)
    if out.get("kor_e2e"):
        parts = [r["kor_e2e"] for r in rows if r.get("kor_e2e") is not None]
        out["kor_e2e"]["accuracy_micro"] = out["kor_e2e"]["recall"]
        out["kor_e2e"]["accuracy_macro"] = round(sum(p["recall"] for p in parts) / len(parts), 6)
    points = [m.CalibrationPoint(*p) for r in rows for p in r.get("calibration") or []]
    out["calibration"] = {
        "lines": len(points),
        "ece": _round(m.ece(points)),
        "ece_cer": _round(m.ece(points, target="accuracy")),
        "mean_confidence": _round(float(np.mean([p.confidence for p in points])) if points else None),
        "line_accuracy": _round(float(np.mean([p.correct for p in points])) if points else None),
    }
    secs = [r["seconds"] for r in rows if r.get("seconds") is not None]
    out["seconds_total"] = round(sum(secs), 3)
    out["seconds_per_image"] = round(sum(secs) / len(secs), 4) if secs else None
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def score_sample(run_fn: RunFn, sample: Sample, *, casefold: bool) -> tuple[dict[str, Any], Prediction | None]:
    """Run one image through ``run_fn`` and score it; a failure becomes an error row scored as empty."""
    row: dict[str, Any] = {"image": sample.name}
    start = time.perf_counter()
    try:
        result = run_fn(sample.image_path)
        pred = result if isinstance(result, Prediction) else Prediction(result)
        row["seconds"] = round(time.perf_counter() - start, 4)
        row["timings_ms"] = {k: round(v, 2) for k, v in pred.doc.timings_ms.items()}
    except Exception as exc:  # noqa: BLE001 -- one bad image must never stop a folder run
        row["seconds"] = round(time.perf_counter() - start, 4)
        code = exc.code.value if isinstance(exc, OcrError) else type(exc).__name__
        row["error"] = {"code": code, "message": str(exc)[:500]}
        pred = None
    scored = score_document(sample, pred or Prediction(build_document("error", ())), casefold=casefold)
    row.update(scored)
    return row, pred


def evaluate_dataset(
    dataset: Dataset,
    run_fn: RunFn,
    *,
    progress: bool = True,
    desc: str = "eval",
    keep: Callable[[Sample, dict[str, Any], Prediction | None], None] | None = None,
) -> dict[str, Any]:
    """Run ``run_fn`` on every sample of ``dataset``; returns ``{"metrics", "per_image", ...}``.

    ``keep(sample, row, prediction)`` is called after each image (the report uses it to keep the
    predictions of the worst images for drawing).
    """
    from tqdm import tqdm

    rows = []
    for sample in tqdm(dataset.samples, desc=desc, disable=not progress, unit="img"):
        row, pred = score_sample(run_fn, sample, casefold=dataset.casefold)
        rows.append(row)
        if keep is not None:
            keep(sample, row, pred)
    return {
        "dataset": str(dataset.root),
        "casefold": dataset.casefold,
        "metrics": aggregate(rows),
        "per_image": rows,
    }


def evaluate_folder(
    folder: str | Path,
    run_fn: RunFn,
    limit: int | None = None,
    *,
    casefold: bool | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Load ``folder`` (labels.jsonl), run ``run_fn(image_path) -> Document`` on each image, score it.

    Returns ``{"dataset", "casefold", "metrics": aggregate(...), "per_image": [...]}``.
    """
    dataset = load_dataset(folder, limit=limit, casefold=casefold)
    return evaluate_dataset(dataset, run_fn, progress=progress)
