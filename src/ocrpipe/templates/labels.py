"""Fields anchored to printed labels: find a label again on a registered page by reading its row.

A label (``PD``, a column header ``S``, a row name ``AVE``) is looked for in a band around its reference
place, wide by ``Label.search`` of the page: the band is cut from the scan through the registration, split
into ink blobs at the gaps between words, runs of neighbouring blobs about as wide as the label are read
in one batch by the primary recogniser, and the run whose text is closest to the label's (normalised,
similarity ≥ :data:`MIN_SIMILARITY`) wins, the nearest to its reference place on a tie. The offset from
its reference place moves the fields placed against it; a label that is not found leaves its fields
flagged, never read from a guessed place.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from rapidfuzz import fuzz

from ocrpipe.engine.recognize.base import Recognizer
from ocrpipe.templates.fields import normalize_text
from ocrpipe.templates.register import Registration, has_ink, warp_region
from ocrpipe.templates.schema import Label, Template

WINDOW_Y = 0.35
"""Label heights above and below its reference place a label is looked for (a taller window lets a
candidate's crop take in ink of the rows above and below: 0.6 lost more labels than it found on seed
27182)."""
MIN_SIMILARITY = 80.0
"""Lowest similarity (0–100) between a read run of blobs and the label text for the label to be found."""


_LOOKALIKES = str.maketrans({"l": "1", "i": "1", "|": "1", "o": "0"})


def _key(text: str) -> str:
    """The comparison key of a label text: normalised, lower case, no spaces, and the letters a reader
    confuses with digits (``l``, ``I``, ``|``, ``O``) written as those digits on both sides, so that ``1``
    read as ``l`` or ``ID`` read as ``1D`` is still the label; Hangul syllables decomposed into their
    letters (NFD), so that one misread letter (``이큼`` for ``이름``, ``차드번호`` for ``차트번호``) costs a
    letter's share of the similarity, not a whole syllable's."""
    return unicodedata.normalize("NFD", "".join(normalize_text(text).lower().split()).translate(_LOOKALIKES))


@dataclass(frozen=True)
class Found:
    """Where a label was found: offset (dx, dy) from its reference place, in reference pixels."""

    dx: int
    dy: int
    text: str
    score: float
    box: tuple[int, int, int, int] = (0, 0, 0, 0)
    """The label's ink box on the registered page (reference pixels)."""


def blobs(binary: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """Column runs (x0, x1) of ink separated by at least ``gap`` blank columns."""
    cols = np.nonzero(binary.any(axis=0))[0]
    if len(cols) == 0:
        return []
    runs, start, prev = [], int(cols[0]), int(cols[0])
    for x in cols[1:]:
        if x - prev > gap:
            runs.append((start, prev + 1))
            start = int(x)
        prev = int(x)
    runs.append((start, prev + 1))
    return runs


def _window(label: Label, tpl: Template) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """(the label's reference box, the search window around it), reference pixels."""
    x0, y0, x1, y1 = tpl.pixel_box(label.region)
    w, h = tpl.size
    mx, my = int(label.search * w), int(WINDOW_Y * (y1 - y0))
    return (x0, y0, x1, y1), (max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my))


def candidates(label: Label, tpl: Template, gray: np.ndarray, reg: Registration
               ) -> tuple[list[tuple[int, int, int, int]], list[np.ndarray]]:
    """Runs of neighbouring ink blobs in the label's search window, about as wide as the label: their
    boxes (reference pixels) and RGB crops."""
    (x0, y0, x1, y1), (sx0, sy0, sx1, sy1) = _window(label, tpl)
    crop = warp_region(gray, reg, (sx0, sy0, sx1, sy1))
    if not has_ink(crop):
        return [], []
    binary = cv2.threshold(cv2.GaussianBlur(crop, (3, 3), 0), 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)[1]
    height = y1 - y0
    rules = cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones((1, max(3, 3 * height)), np.uint8))
    edges = cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones((max(3, int(0.9 * crop.shape[0])), 1), np.uint8))
    ink = (binary > 0) & (cv2.dilate(cv2.bitwise_or(rules, edges), np.ones((3, 3), np.uint8)) == 0)  # rules, box edges
    runs = blobs(ink, max(2, int(0.45 * height)))
    width = x1 - x0
    boxes, crops = [], []
    for a in range(len(runs)):
        for b in range(a, min(a + 6, len(runs))):
            bx0, bx1 = runs[a][0], runs[b][1]
            if not 0.25 * width <= bx1 - bx0 <= 1.8 * width + height:
                continue
            rows = np.nonzero(ink[:, bx0:bx1].any(axis=1))[0]
            if len(rows) == 0:
                continue
            by0, by1 = int(rows[0]), int(rows[-1]) + 1
            pad = 4
            part = crop[max(0, by0 - pad):by1 + pad, max(0, bx0 - pad):bx1 + pad]
            boxes.append((sx0 + bx0, sy0 + by0, sx0 + bx1, sy0 + by1))
            crops.append(cv2.cvtColor(part, cv2.COLOR_GRAY2RGB))
    return boxes, crops


def _best(label: Label, tpl: Template, boxes: list[tuple[int, int, int, int]], texts: list[str]) -> Found | None:
    """The read run closest to the label's text (similarity ≥ :data:`MIN_SIMILARITY`), nearest on a tie."""
    (x0, y0, x1, y1), _ = _window(label, tpl)
    best: tuple[float, float, Found] | None = None
    want = _key(label.text)
    for box, text in zip(boxes, texts, strict=True):
        score = float(fuzz.ratio(_key(text), want))
        if score < MIN_SIMILARITY:
            continue
        dx, dy = box[0] - x0, (box[1] + box[3]) // 2 - (y0 + y1) // 2
        rank = (score, -abs(dx) - abs(dy))
        if best is None or rank > best[:2]:
            best = (rank[0], rank[1], Found(dx, dy, text, score, box))
    return None if best is None else best[2]


NEAR = 1.5
"""Label heights within which a candidate run counts as at its label's reference place (see
:func:`find_labels`)."""


def _near(label: Label, tpl: Template, box: tuple[int, int, int, int]) -> bool:
    x0, y0, x1, y1 = tpl.pixel_box(label.region)
    return abs(box[0] - x0) + abs((box[1] + box[3]) / 2 - (y0 + y1) / 2) <= NEAR * (y1 - y0)


def _read(recognizer: Recognizer, crops: list[np.ndarray]) -> list[str]:
    return [r.text for r in recognizer.recognize(crops)] if crops else []


def find_labels(labels: Sequence[Label], tpl: Template, gray: np.ndarray, reg: Registration,
                recognizer: Recognizer, second: Recognizer | None = None, second_from: float = 0.0,
                known: Mapping[Label, Found | None] | None = None) -> dict[Label, Found | None]:
    """Every label found on the registered page (None: not found).

    The candidates at a label's reference place are read first, in one batch: a label read there
    exactly is found (no candidate farther away could rank above it). Every other candidate of the
    labels still missing is read in a second batch and the best of all is taken. With ``second``, the
    candidates of the labels ``recognizer`` did not find are read again by it (one more batch, only on
    pages where a label was missed): a short label (``ID``, ``A``) is often read as a look-alike by one
    model and right by another. It reads only when ``recognizer`` found at least ``second_from`` of the
    labels (a share: a wrong layout's labels are not worth a second model's time).

    ``known`` is what this function returned without ``second`` for the same labels, page, registration
    and recognizer (matching reads the labels to confirm a layout): then ``recognizer`` reads nothing
    again and only ``second``'s pass runs, on the candidates of the labels missing from it."""
    uniq = list(dict.fromkeys(labels))
    if known is not None and all(lab in known for lab in uniq):
        out = {lab: known[lab] for lab in uniq}
        per = [(lab, *candidates(lab, tpl, gray, reg)) for lab in uniq if out[lab] is None]
    else:
        per = [(lab, *candidates(lab, tpl, gray, reg)) for lab in uniq]
        out = _first_reads(per, tpl, recognizer)
    missed = [(label, boxes, cs) for label, boxes, cs in per if out[label] is None and boxes]
    if second is not None and missed and len(uniq) - len(missed) >= second_from * len(uniq):
        again = _read(second, [c for _, _, cs in missed for c in cs])
        i = 0
        for label, boxes, _ in missed:
            out[label] = _best(label, tpl, boxes, again[i:i + len(boxes)])
            i += len(boxes)
    return out


_Candidates = tuple[Label, list[tuple[int, int, int, int]], list[np.ndarray]]


def _first_reads(per: list[_Candidates], tpl: Template, recognizer: Recognizer) -> dict[Label, Found | None]:
    """:func:`find_labels` by ``recognizer`` alone: the candidates at each label's place first, the others
    of the labels still missing after."""
    texts: dict[tuple[int, int], str] = {}
    near = [(i, j) for i, (label, boxes, _) in enumerate(per) for j, b in enumerate(boxes) if _near(label, tpl, b)]
    texts.update(zip(near, _read(recognizer, [per[i][2][j] for i, j in near]), strict=True))
    out: dict[Label, Found | None] = {}
    for i, (label, boxes, _) in enumerate(per):
        got = _best(label, tpl, [boxes[j] for (k, j) in near if k == i], [texts[(k, j)] for (k, j) in near if k == i])
        out[label] = got if got is not None and got.score >= 100 else None
    rest = [(i, j) for i, (label, boxes, _) in enumerate(per) if out[label] is None for j in range(len(boxes))
            if (i, j) not in texts]
    texts.update(zip(rest, _read(recognizer, [per[i][2][j] for i, j in rest]), strict=True))
    for i, (label, boxes, _) in enumerate(per):
        if out[label] is None:
            out[label] = _best(label, tpl, boxes, [texts[(i, j)] for j in range(len(boxes))])
    return out
