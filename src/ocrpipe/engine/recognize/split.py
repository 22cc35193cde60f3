"""Line crops longer than a recogniser reads well are cut into pieces at their word gaps, read in one batch with
the other crops, and joined back into one reading of the whole line.

Each recogniser scales a crop to its input height; past a width-to-height ratio (``max_aspect``: the CTC
models' 3,200 px input cap over their input height, Tesseract's :data:`~ocrpipe.engine.recognize.tesseract
.MAX_ASPECT`) the crop used to be squeezed to fit, which turns a long line into garbage. :func:`read_split`
(used by the CTC and the Tesseract recognisers' ``recognize``, hence by every composed recogniser: the hybrid,
ko_rec, PP-OCR, Tesseract) plans the pieces of every crop over the limit with :func:`plan_pieces`, passes all
pieces of all crops to the recogniser's own batched path in one call, and joins each crop's readings with
:func:`join_readings`. Crops within the limit are passed through unchanged (same array, same result).

Cut points: ``n = ceil(width / (FILL * limit))`` pieces of about equal width; each cut is the centre of the
run of ink-free columns nearest its ideal place within a quarter of a piece's width (a word gap before a letter
gap; no piece exceeds the limit). A run at least :data:`WORD_GAP` of the crop's height wide is a word gap (the texts are
joined with a space), a narrower one a letter gap (joined without one). Where no column is free of ink the cut
is a plain one at the ideal place, the two pieces overlapping by :data:`OVERLAP` of the height; a letter read
on both sides of such a cut is kept once.

Joined reading: the texts in order; the confidence is the mean of the pieces' confidences weighted by their
number of non-space characters (a piece that reads nothing counts as one character of its confidence); the
word spans are mapped from each piece's width back onto the whole crop's, and the two halves of a word cut
without a gap become one word.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ocrpipe.document import RecResult, WordSpan
from ocrpipe.engine.words import blank_columns, true_runs

FILL = 0.75
"""Pieces aim at this share of the limit, so that cuts have room to move to a gap."""
WORD_GAP = 0.2
"""Width of a blank run, as a share of the crop height, from which a cut there is a word break."""
OVERLAP = 0.25
"""How far (share of the crop height) each piece reaches across a plain cut (no blank column near it)."""


@dataclass(frozen=True, slots=True)
class Piece:
    """Columns ``[start, end)`` of a crop, and how the cut before it was made (``"word"``, ``"letter"``,
    ``"plain"``; ``""`` for the first piece)."""

    start: int
    end: int
    cut: str = ""


def plan_pieces(crop: np.ndarray, max_aspect: float) -> list[Piece]:
    """The pieces ``crop`` is read in: one (the whole crop) when its width is within ``max_aspect`` times its
    height, else cuts at the widest blank gaps near equal divisions (see the module docstring)."""
    height, width = crop.shape[:2]
    limit = int(max_aspect * max(height, 1))
    if width <= limit or limit < 2:
        return [Piece(0, width)]
    n = math.ceil(width / (FILL * limit))
    step = width / n
    blank = blank_columns(crop)
    overlap = max(1, round(OVERLAP * height))
    pieces: list[Piece] = []
    start, kind = 0, ""
    for k in range(1, n):
        target = k * step
        lo = max(start + 1, int(target - step / 4))
        hi = min(int(target + step / 4), start + limit)
        runs = true_runs(blank, lo, hi) if hi > lo else []
        if runs:
            a, b = max(runs, key=lambda r: (r[1] - r[0] >= WORD_GAP * height, -abs((r[0] + r[1]) / 2 - target)))
            cut = (a + b) // 2
            pieces.append(Piece(start, cut, kind))
            start, kind = cut, "word" if b - a >= WORD_GAP * height else "letter"
        else:
            cut = min(int(target), start + limit - overlap)
            pieces.append(Piece(start, cut + overlap, kind))
            start, kind = max(cut - overlap, 0), "plain"
    pieces.append(Piece(start, width, kind))
    return pieces


def _confidence(readings: Sequence[RecResult]) -> float:
    """Mean confidence weighted by each reading's non-space characters (at least one)."""
    weights = [max(1, len("".join(r.text.split()))) for r in readings]
    return sum(w * r.confidence for w, r in zip(weights, readings, strict=True)) / sum(weights)


def join_readings(pieces: Sequence[Piece], readings: Sequence[RecResult], width: int) -> RecResult:
    """One reading of a crop ``width`` px wide from the readings of its ``pieces`` (module docstring)."""
    if len(readings) == 1:
        return readings[0]
    text = ""
    words: list[WordSpan] = []
    for piece, read in zip(pieces, readings, strict=True):
        part = read.text.strip()
        span = piece.end - piece.start
        mapped = [WordSpan(w.text, w.confidence, (piece.start + w.start * span) / width,
                           (piece.start + w.end * span) / width) for w in read.words]
        if piece.cut == "plain" and text and part and text[-1] == part[0]:
            part = part[1:]  # the letter read on both sides of an overlapping cut
            if mapped:
                mapped[0] = WordSpan(mapped[0].text[1:], mapped[0].confidence, mapped[0].start, mapped[0].end)
        glue = " " if piece.cut == "word" and text and part else ""
        if not glue and text and part and words and mapped:  # one word cut in two
            first, last = mapped.pop(0), words.pop()
            words.append(WordSpan(last.text + first.text, min(last.confidence, first.confidence), last.start,
                                  first.end))
        words.extend(w for w in mapped if w.text)
        text = text + glue + part if part else text
    least = [r.least for r in readings if r.least is not None]
    spans = tuple(words) if [w.text for w in words] == text.split() else ()
    return RecResult(text, _confidence(readings), spans, min(least) if least else None)


def read_split(read: Callable[[list[np.ndarray]], list[RecResult]], crops: Sequence[np.ndarray],
               max_aspect: float) -> list[RecResult]:
    """``read`` (a recogniser's batched path) applied to ``crops``, each crop over ``max_aspect`` read in
    pieces (all pieces of all crops in one call) and joined: one result per crop, in order."""
    plans = [plan_pieces(c, max_aspect) if c.ndim >= 2 and c.size else [Piece(0, 0)] for c in crops]
    if all(len(p) == 1 for p in plans):
        return read(list(crops))
    images: list[np.ndarray] = []
    for crop, plan in zip(crops, plans, strict=True):
        images.extend([crop] if len(plan) == 1 else [crop[:, p.start:p.end] for p in plan])
    results = read(images)
    out: list[RecResult] = []
    k = 0
    for crop, plan in zip(crops, plans, strict=True):
        out.append(join_readings(plan, results[k:k + len(plan)], crop.shape[1]))
        k += len(plan)
    return out
