"""Word boxes: a recogniser's word spans (fractions along the line crop) mapped back onto the page.

The line crop is the quad warped to an upright rectangle (:func:`ocrpipe.engine.crop.crop_quad`), so a span
``[start, end]`` of the crop's width is the part of the quad between the same fractions of its top and bottom
edges under the quad's perspective (the homography from the unit square to the quad). Resizing and padding
for the recogniser are undone by the recogniser itself, which reports spans of the unpadded crop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from ocrpipe.document import RecResult, Word, WordSpan, quad_to_box
from ocrpipe.engine.crop import is_vertical

_UNIT = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float32)


def span_quads(quad: np.ndarray, spans: Sequence[tuple[float, float]]) -> np.ndarray:
    """(K, 4, 2) quads, one per ``(start, end)`` fraction of the line's reading direction, in the quad's pixels.

    A vertical line (its crop was turned 90 degrees) reads top to bottom, so its spans cut the quad across.
    """
    q = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    if not spans:
        return np.zeros((0, 4, 2), np.float32)
    matrix = cv2.getPerspectiveTransform(_UNIT, q)
    corners: list[tuple[float, float]] = []
    for a, b in spans:
        if is_vertical(q):
            corners.extend([(0, a), (1, a), (1, b), (0, b)])
        else:
            corners.extend([(a, 0), (b, 0), (b, 1), (a, 1)])
    pts = cv2.perspectiveTransform(np.asarray(corners, np.float32).reshape(-1, 1, 2), matrix)
    return pts.reshape(-1, 4, 2)


def blank_columns(crop: np.ndarray) -> np.ndarray:
    """Columns of the crop with no ink: every pixel close to the background (the median border colour)."""
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    gray = gray.astype(np.float32)
    border = float(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])))
    ink = np.abs(gray - border).max(axis=0)
    return ink < max(0.35 * float(ink.max()), 1.0)


def true_runs(mask: np.ndarray, lo: int = 0, hi: int | None = None) -> list[tuple[int, int]]:
    """Runs ``[a, b)`` of True values of a 1-D mask inside ``[lo, hi)`` (default: all of it)."""
    part = np.asarray(mask[lo:hi], dtype=np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], part, [0]])))
    return [(lo + int(a), lo + int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _widest_run(blank: np.ndarray, lo: int, hi: int, near: float) -> float | None:
    """Centre of the widest run of blank columns in ``[lo, hi)`` (the one nearest ``near`` on a tie)."""
    best: tuple[int, float, float] | None = None
    for x, end in true_runs(blank, lo, hi):
        centre = (x + end) / 2
        key = (end - x, -abs(centre - near), centre)
        best = key if best is None or key[:2] > best[:2] else best
    return None if best is None else best[2]


def snap_to_gaps(spans: Sequence[WordSpan], crop: np.ndarray) -> tuple[WordSpan, ...]:
    """Spans cut at the widest blank gap near each estimated word boundary, then trimmed to their ink.

    A recogniser's positions are rough (CTC emits a symbol a few pixels off its ink, Tesseract's boxes are
    tight to its own binarisation), so the word gap seen in the crop decides; the search stays within about
    one character (the crop's height) of the estimate and between the two words' centres.
    """
    if not spans or crop.size == 0:
        return tuple(spans)
    width, height = crop.shape[1], crop.shape[0]
    blank = blank_columns(crop)
    cuts = [0.0]
    for left, right in zip(spans, spans[1:], strict=False):
        guess = (left.end + right.start) / 2 * width
        lo = int(max((left.start + left.end) / 2 * width, guess - height, cuts[-1] * width))
        hi = int(min((right.start + right.end) / 2 * width, guess + height, width))
        found = _widest_run(blank, max(lo, 0), max(hi, 0), guess) if hi > lo else None
        cuts.append((found if found is not None else guess) / width)
    cuts.append(1.0)
    return tuple(WordSpan(s.text, s.confidence, *_trim(blank, cuts[k], cuts[k + 1]))
                 for k, s in enumerate(spans))


def _trim(blank: np.ndarray, start: float, end: float, margin: int = 1) -> tuple[float, float]:
    """The part of ``[start, end]`` (fractions) from its first to its last inked column, plus ``margin``."""
    width = len(blank)
    lo, hi = int(math.floor(start * width)), int(math.ceil(end * width))
    inked = np.flatnonzero(~blank[lo:hi])
    if not inked.size:
        return start, end
    first, last = max(lo, lo + int(inked[0]) - margin), min(hi, lo + int(inked[-1]) + 1 + margin)
    return max(start, first / width), min(end, last / width)


def proportional_spans(text: str, confidence: float) -> tuple[WordSpan, ...]:
    """Word spans in proportion to character counts (a space counts as one character): for readings
    that come without positions."""
    words = text.split()
    total = max(1, sum(len(w) for w in words) + len(words) - 1)
    out, pos = [], 0
    for word in words:
        out.append(WordSpan(word, confidence, pos / total, (pos + len(word)) / total))
        pos += len(word) + 1
    return tuple(out)


def line_words(quad: np.ndarray, result: RecResult, text: str) -> tuple[Word, ...]:
    """The words of one line with boxes in the quad's pixels.

    ``text`` is the line's final text; the recogniser's spans are used when their words are its words,
    otherwise the line is split in proportion to character counts.
    """
    spans = result.words
    if [w.text for w in spans] != text.split():
        spans = proportional_spans(text, result.confidence)
    quads = span_quads(quad, [(w.start, w.end) for w in spans])
    return tuple(Word(w.text, float(w.confidence), quad_to_box(q)) for w, q in zip(spans, quads, strict=True))
