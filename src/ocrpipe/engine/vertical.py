"""Vertical lines whose characters stand upright (Korean signs, packaging, book spines).

A tall quad is cut and turned by 90 degrees (:func:`~ocrpipe.engine.crop.crop_quad`), which is right for a
horizontal line printed sideways but lays each upright syllable of a top-to-bottom column on its side, so
a recogniser trained on horizontal lines reads garbage. :func:`stack_column` lays such a column out as a
horizontal line instead: the column is cut between its characters (ink-free rows) and the characters are
set side by side. The pipeline reads both and keeps the more confident reading.
"""

from __future__ import annotations

import cv2
import numpy as np

from ocrpipe.engine.words import true_runs

CELL_SLACK = 1.2
"""Pieces are merged into one character while together they stay within this many column widths high
(a syllable such as 를 or 흐 has ink-free rows between its parts)."""

EDGE_SLIVER = 0.4
"""A character piece lower than this many column widths that touches the crop's top or bottom edge is
dropped (the detector's box ends inside the next character)."""

GAP = 0.2
"""Blank between two characters set side by side, in column widths."""


def _ink(gray: np.ndarray) -> np.ndarray:
    """Ink mask (Otsu; the darker class, or the lighter one on a dark background)."""
    binary = cv2.threshold(cv2.GaussianBlur(gray, (3, 3), 0), 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1] > 0
    light = binary.mean()
    return ~binary if light >= 0.5 else binary


def character_cells(column: np.ndarray) -> list[tuple[int, int]]:
    """Row ranges [top, bottom) of the characters of an upright column crop (grey or RGB), top to bottom:
    runs of inked rows, neighbours merged while they fit in :data:`CELL_SLACK` column widths."""
    gray = cv2.cvtColor(column, cv2.COLOR_RGB2GRAY) if column.ndim == 3 else column
    ink = _ink(gray)
    rows = ink.sum(axis=1) > max(1, int(0.02 * gray.shape[1]))
    cells: list[tuple[int, int]] = []
    limit = CELL_SLACK * gray.shape[1]
    for top, bottom in true_runs(rows):
        if cells and bottom - cells[-1][0] <= limit:
            cells[-1] = (cells[-1][0], bottom)
        else:
            cells.append((top, bottom))
    # a low piece cut by the crop's top or bottom edge is a sliver of the neighbouring character
    sliver = EDGE_SLIVER * gray.shape[1]
    return [(t, b) for t, b in cells if b - t >= sliver or (t > 1 and b < gray.shape[0] - 1)]


def stack_column(column: np.ndarray) -> np.ndarray | None:
    """The characters of an upright column crop set side by side, left to right, as one horizontal line
    image (same dtype and channels); None when the column has fewer than two characters."""
    cells = character_cells(column)
    if len(cells) < 2:
        return None
    w = column.shape[1]
    height = max(max(b - t for t, b in cells), w)
    gap = max(2, int(GAP * w))
    background = np.median(column.reshape(-1, *column.shape[2:]), axis=0).astype(column.dtype)
    out = np.empty((height + 2 * gap, len(cells) * (w + gap) + gap, *column.shape[2:]), column.dtype)
    out[:] = background
    x = gap
    for top, bottom in cells:
        y = gap + (height - (bottom - top)) // 2
        out[y:y + bottom - top, x:x + w] = column[top:bottom]
        x += w + gap
    return out
