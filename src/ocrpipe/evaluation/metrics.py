"""OCR metrics, defined exactly as in ``shared/data/README.md`` ("How we score").

Every metric returns *counts* (edits and reference length, true positives and totals) rather than a bare
ratio, so that a folder is scored by summing counts over images (micro average) and per-image ratios are
still one property away. Summary of the definitions:

* **Normalisation** (:func:`normalize_text`): NFKC; ``ㆍ`` (U+318D, and its NFKC image U+119E) → ``·``;
  whitespace runs → one space; stripped; optionally case-folded (``casefold=True``, e.g. SROIE).
* **CER** (:func:`cer`): Levenshtein distance over characters ÷ reference length; ``spaces=False`` removes
  all spaces first (this is the README's *page CER*).
* **WER** (:func:`wer`): Levenshtein distance over space-separated tokens ÷ reference token count.
* **Word F1** (:func:`word_f1`): multiset of space-separated tokens; tp = Σ min(count_gt, count_pred).
* **Line CER** (:func:`line_cer`): box-matched, see its docstring.
* **Detection** (:func:`detection`): one-to-one greedy matching by IoU ≥ 0.5; ``###`` regions and ignore
  regions are don't-care (unmatched predictions on them are not counted).
* **End-to-end** (:func:`end_to_end`): as detection, but a match also needs the same normalised text
  (compared without spaces, like the line CER).
* **Korean-benchmark end-to-end accuracy** (:func:`korean_e2e`): a ground-truth word is correct when some
  prediction overlaps it with IoU > 0.1 and has the same normalised text.
* **Confidence calibration** (:func:`line_calibration`, :func:`ece`): each predicted line that alone makes up
  a line-CER group gives (its confidence, whether its space-free text equals the group's ground truth,
  1 - its CER capped at 0); the expected calibration error is the weighted mean gap between confidence and
  correctness (or 1 - CER) over 10 equal-width confidence bins.

A reference of length zero gives a rate of 0.0 when the prediction is also empty and 1.0 otherwise.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Levenshtein

from ocrpipe.evaluation import geometry

DONT_CARE = "###"
_WS = re.compile(r"\s+")
_MIDDLE_DOTS = str.maketrans({"\u318d": "\u00b7", "\u119e": "\u00b7"})


# ---- value types ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Region:
    """A polygon (``(N, 2)`` points in original-image pixels) with its text."""

    points: np.ndarray
    text: str

    @classmethod
    def of(cls, points: Sequence[Sequence[float]] | np.ndarray, text: str) -> Region:
        return cls(np.asarray(points, dtype=np.float64).reshape(-1, 2), text)

    @property
    def dont_care(self) -> bool:
        return self.text.strip() == DONT_CARE


@dataclass(frozen=True, slots=True)
class ErrorCount:
    """Edit distance against a reference: ``rate = edits / total``."""

    edits: int
    total: int

    @property
    def rate(self) -> float:
        if self.total == 0:
            return 0.0 if self.edits == 0 else 1.0
        return self.edits / self.total

    def __add__(self, other: ErrorCount) -> ErrorCount:
        return ErrorCount(self.edits + other.edits, self.total + other.total)


@dataclass(frozen=True, slots=True)
class MatchCount:
    """Matches between predictions and references: precision, recall and F1 (H-mean)."""

    tp: int
    n_gt: int
    n_pred: int

    @property
    def precision(self) -> float:
        return self.tp / self.n_pred if self.n_pred else (1.0 if self.n_gt == 0 else 0.0)

    @property
    def recall(self) -> float:
        return self.tp / self.n_gt if self.n_gt else (1.0 if self.n_pred == 0 else 0.0)

    @property
    def f1(self) -> float:
        denom = self.n_gt + self.n_pred
        return 2 * self.tp / denom if denom else 1.0

    def __add__(self, other: MatchCount) -> MatchCount:
        return MatchCount(self.tp + other.tp, self.n_gt + other.n_gt, self.n_pred + other.n_pred)


@dataclass(frozen=True, slots=True)
class LineCerResult:
    """Box-matched line CER of one image, with the bookkeeping behind it."""

    count: ErrorCount
    groups: int
    unlinked_gt: int
    unlinked_pred: int
    ignored_pred: int

    @property
    def rate(self) -> float:
        return self.count.rate


# ---- text --------------------------------------------------------------------------------------------


def normalize_text(text: str, *, casefold: bool = False) -> str:
    """NFKC, ``ㆍ``≡``·``, whitespace runs → one space, stripped; optionally case-folded."""
    text = unicodedata.normalize("NFKC", text).translate(_MIDDLE_DOTS)
    text = _WS.sub(" ", text).strip()
    return text.casefold() if casefold else text


def no_spaces(text: str, *, casefold: bool = False) -> str:
    """The normalised text with every space removed."""
    return normalize_text(text, casefold=casefold).replace(" ", "")


def tokens(text: str, *, casefold: bool = False) -> list[str]:
    """Space-separated tokens of the normalised text."""
    norm = normalize_text(text, casefold=casefold)
    return norm.split(" ") if norm else []


def cer(gt: str, pred: str, *, spaces: bool = True, casefold: bool = False) -> ErrorCount:
    """Character edit distance ÷ reference length; ``spaces=False`` is the README's page CER."""
    if spaces:
        a, b = normalize_text(gt, casefold=casefold), normalize_text(pred, casefold=casefold)
    else:
        a, b = no_spaces(gt, casefold=casefold), no_spaces(pred, casefold=casefold)
    return ErrorCount(Levenshtein.distance(a, b), len(a))


def page_cer(gt: str, pred: str, *, casefold: bool = False) -> ErrorCount:
    """Order-sensitive CER of whitespace-free page texts (README: *Page CER (no spaces)*)."""
    return cer(gt, pred, spaces=False, casefold=casefold)


def wer(gt: str, pred: str, *, casefold: bool = False) -> ErrorCount:
    """Token edit distance ÷ reference token count."""
    a, b = tokens(gt, casefold=casefold), tokens(pred, casefold=casefold)
    return ErrorCount(Levenshtein.distance(a, b), len(a))


def word_f1(gt: str, pred: str, *, casefold: bool = False) -> MatchCount:
    """Multiset token overlap (README: *Word F1*)."""
    a, b = Counter(tokens(gt, casefold=casefold)), Counter(tokens(pred, casefold=casefold))
    tp = sum((a & b).values())
    return MatchCount(tp, sum(a.values()), sum(b.values()))


# ---- box-matched line CER ----------------------------------------------------------------------------


def line_cer(
    gt: Sequence[Region],
    pred: Sequence[Region],
    ignore: Sequence[np.ndarray] = (),
    *,
    casefold: bool = False,
) -> LineCerResult:
    """Box-matched line CER, free of line granularity (README: *Line CER*).

    A ground-truth line and a predicted line are linked when their intersection is at least half of the
    smaller polygon's area. Connected components of links form groups; in each group the ground-truth
    texts and the predicted texts are each put in reading order (rows top-down, left to right), spaces
    removed, and compared by Levenshtein distance. Unlinked ground truth counts as deletions, unlinked
    predictions as insertions -- except predictions that would link (same rule) to a don't-care region
    (a ``###`` ground-truth line or one of ``ignore``), which are dropped. Predictions whose normalised
    text is empty are dropped too. Rate = total edits ÷ ground-truth characters (``###`` excluded).
    """
    gt_kept = [r for r in gt if not r.dont_care]
    care = [r.points for r in gt if r.dont_care] + [np.asarray(p, dtype=np.float64) for p in ignore]
    gt_text = [no_spaces(r.text, casefold=casefold) for r in gt_kept]
    pr_kept = [r for r in pred if no_spaces(r.text, casefold=casefold)]
    pr_text = [no_spaces(r.text, casefold=casefold) for r in pr_kept]
    gt_poly = geometry.polygons([r.points for r in gt_kept])
    pr_poly = geometry.polygons([r.points for r in pr_kept])
    links = geometry.half_of_smaller(gt_poly, pr_poly)

    groups = _components(links)
    edits = 0
    linked_pred = np.zeros(len(pr_kept), dtype=bool)
    for g_idx, p_idx in groups:
        linked_pred[p_idx] = True
        ref = "".join(gt_text[i] for i in _ordered(gt_kept, g_idx))
        hyp = "".join(pr_text[j] for j in _ordered(pr_kept, p_idx))
        edits += Levenshtein.distance(ref, hyp)
    linked_gt = links.any(axis=1) if len(pr_kept) else np.zeros(len(gt_kept), dtype=bool)
    edits += sum(len(gt_text[i]) for i in np.flatnonzero(~linked_gt))

    loose = np.flatnonzero(~linked_pred)
    ignored: np.ndarray = np.zeros(len(loose), dtype=bool)
    if len(loose) and care:
        ignored = geometry.half_of_smaller(pr_poly[loose], geometry.polygons(care)).any(axis=1)  # type: ignore[assignment]
    edits += sum(len(pr_text[j]) for j in loose[~ignored])
    return LineCerResult(
        count=ErrorCount(int(edits), sum(len(t) for t in gt_text)),
        groups=len(groups),
        unlinked_gt=int((~linked_gt).sum()),
        unlinked_pred=int((~ignored).sum()),
        ignored_pred=int(ignored.sum()),
    )


def _components(links: np.ndarray) -> list[tuple[list[int], list[int]]]:
    """Connected components of a bipartite link matrix that contain at least one link."""
    n_gt, n_pr = links.shape
    parent = list(range(n_gt + n_pr))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in zip(*np.nonzero(links), strict=True):
        ri, rj = find(int(i)), find(n_gt + int(j))
        if ri != rj:
            parent[ri] = rj
    members: dict[int, tuple[list[int], list[int]]] = {}
    linked_gt = links.any(axis=1)
    for i in np.flatnonzero(linked_gt):
        members.setdefault(find(int(i)), ([], []))[0].append(int(i))
    for j in np.flatnonzero(links.any(axis=0)):
        members.setdefault(find(n_gt + int(j)), ([], []))[1].append(int(j))
    return list(members.values())


def _ordered(regions: Sequence[Region], idx: Sequence[int]) -> list[int]:
    boxes = [geometry.bounds(regions[i].points) for i in idx]
    return [idx[k] for k in geometry.reading_order(boxes)]


# ---- detection and end-to-end ------------------------------------------------------------------------


def detection(
    gt: Sequence[Region], pred: Sequence[Region], ignore: Sequence[np.ndarray] = (), *, iou: float = 0.5
) -> MatchCount:
    """Detection precision/recall/H-mean: one-to-one greedy matching at IoU >= ``iou``.

    ``###`` ground truth and ``ignore`` regions are don't-care: they are not ground truth, and an
    unmatched prediction that overlaps one by half of the smaller area is not counted. A duplicate
    detection of a matched line is a false positive.
    """
    return _match(gt, pred, ignore, iou=iou, same_text=None)


def end_to_end(
    gt: Sequence[Region],
    pred: Sequence[Region],
    ignore: Sequence[np.ndarray] = (),
    *,
    iou: float = 0.5,
    casefold: bool = False,
) -> MatchCount:
    """End-to-end F1: like :func:`detection`, but a match also needs the same normalised text."""
    return _match(gt, pred, ignore, iou=iou, same_text=casefold)


def _match(
    gt: Sequence[Region],
    pred: Sequence[Region],
    ignore: Sequence[np.ndarray],
    *,
    iou: float,
    same_text: bool | None,
) -> MatchCount:
    gt_kept = [r for r in gt if not r.dont_care]
    care = [r.points for r in gt if r.dont_care] + [np.asarray(p, dtype=np.float64) for p in ignore]
    gt_poly = geometry.polygons([r.points for r in gt_kept])
    pr_poly = geometry.polygons([r.points for r in pred])
    ious = geometry.iou_matrix(gt_poly, pr_poly)
    ok = ious >= iou
    if same_text is not None and ok.any():
        gt_t = [no_spaces(r.text, casefold=same_text) for r in gt_kept]
        pr_t = [no_spaces(r.text, casefold=same_text) for r in pred]
        for i, j in zip(*np.nonzero(ok), strict=True):
            ok[i, j] = gt_t[i] == pr_t[j]
    matched_gt: set[int] = set()
    matched_pr: set[int] = set()
    pairs = sorted(zip(*np.nonzero(ok), strict=True), key=lambda p: -ious[p[0], p[1]])
    for i, j in pairs:
        if i not in matched_gt and j not in matched_pr:
            matched_gt.add(int(i))
            matched_pr.add(int(j))
    n_pred = len(pred)
    loose = np.array([j for j in range(len(pred)) if j not in matched_pr], dtype=int)
    if len(loose) and care:
        n_pred -= int(geometry.half_of_smaller(pr_poly[loose], geometry.polygons(care)).any(axis=1).sum())
    return MatchCount(len(matched_gt), len(gt_kept), n_pred)


def korean_e2e(
    gt_words: Sequence[Region], pred_words: Sequence[Region], *, iou: float = 0.1, casefold: bool = False
) -> MatchCount:
    """Korean-benchmark end-to-end accuracy: GT words with a same-text prediction at IoU > ``iou``.

    Returns ``MatchCount(correct, n_gt_words, n_pred_words)``; the accuracy is its ``recall``.
    ``###`` words are skipped. Any prediction may credit a word (no one-to-one constraint), as in the
    benchmark's definition.
    """
    gt_kept = [r for r in gt_words if not r.dont_care]
    if not gt_kept or not pred_words:
        return MatchCount(0, len(gt_kept), len(pred_words))
    ious = geometry.iou_matrix(
        geometry.polygons([r.points for r in gt_kept]), geometry.polygons([r.points for r in pred_words])
    )
    pr_t = [no_spaces(r.text, casefold=casefold) for r in pred_words]
    correct = 0
    for i, r in enumerate(gt_kept):
        want = no_spaces(r.text, casefold=casefold)
        if any(pr_t[j] == want for j in np.flatnonzero(ious[i] > iou)):
            correct += 1
    return MatchCount(correct, len(gt_kept), len(pred_words))


def words_of(lines: Sequence[Region]) -> list[Region]:
    """Word regions from line regions, by cutting each quad at its tokens' character offsets."""
    out: list[Region] = []
    for line in lines:
        text = normalize_text(line.text)
        out.extend(Region(q, t) for q, t in geometry.split_words(line.points, text))
    return out


# ---- confidence calibration --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CalibrationPoint:
    """One predicted line: its confidence, whether it is exactly right (0/1), and 1 - its CER (capped at 0)."""

    confidence: float
    correct: float
    accuracy: float


def calibration_point(confidence: float, gt: str, pred: str, *, casefold: bool = False) -> CalibrationPoint:
    """Score one reading against its reference (both compared space-free and normalised)."""
    ref, hyp = no_spaces(gt, casefold=casefold), no_spaces(pred, casefold=casefold)
    dist = Levenshtein.distance(ref, hyp)
    acc = max(0.0, 1.0 - dist / len(ref)) if ref else float(not hyp)
    return CalibrationPoint(float(confidence), float(dist == 0), acc)


def line_calibration(gt: Sequence[Region], pred: Sequence[Region], confidences: Sequence[float], *,
                     casefold: bool = False) -> list[CalibrationPoint]:
    """A :class:`CalibrationPoint` per predicted line that is alone in its line-CER group (linked by the same
    rule as :func:`line_cer`; the group's ground-truth lines joined in reading order are its reference).

    Lines sharing a group with other predictions, and unlinked lines, have no reference of their own and are
    left out.
    """
    gt_kept = [r for r in gt if not r.dont_care]
    keep = [j for j, r in enumerate(pred) if no_spaces(r.text, casefold=casefold)]
    if not gt_kept or not keep:
        return []
    links = geometry.half_of_smaller(geometry.polygons([r.points for r in gt_kept]),
                                     geometry.polygons([pred[j].points for j in keep]))
    out = []
    for g_idx, p_idx in _components(links):
        if len(p_idx) != 1:
            continue
        ref = "".join(gt_kept[i].text for i in _ordered(gt_kept, g_idx))
        j = keep[p_idx[0]]
        out.append(calibration_point(confidences[j], ref, pred[j].text, casefold=casefold))
    return out


def ece(points: Sequence[CalibrationPoint], *, bins: int = 10, target: str = "correct") -> float | None:
    """Expected calibration error: sum over equal-width confidence bins of (share of points) x |mean
    confidence - mean ``target``| (``correct``: exact line, ``accuracy``: 1 - CER). None without points."""
    if not points:
        return None
    conf = np.clip(np.array([p.confidence for p in points], dtype=np.float64), 0.0, 1.0)
    value = np.array([getattr(p, target) for p in points], dtype=np.float64)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.mean() * abs(conf[sel].mean() - value[sel].mean())
    return float(total)
