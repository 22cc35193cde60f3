"""Reading order: lines grouped into blocks/columns by recursive XY-cut, rows top-down, left to right.

At each region the widest whitespace gap is cut, horizontally (between bands of rows) or vertically
(between columns). A vertical cut is taken when the two sides are not row-aligned, or when both sides read as text
columns (several lines spanning most of their column); otherwise the sides are table cells or key/value
pairs, which are read row by row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ocrpipe.document import Line, Page, boxes_of


def _gaps(lo: np.ndarray, hi: np.ndarray) -> list[tuple[float, float]]:
    """Whitespace intervals between the union of [lo, hi] intervals."""
    order = np.argsort(lo, kind="stable")
    gaps, reach = [], hi[order[0]]
    for i in order[1:]:
        if lo[i] > reach:
            gaps.append((float(reach), float(lo[i])))
        reach = max(reach, hi[i])
    return gaps


def _rows(idx: list[int], bb: np.ndarray) -> list[list[int]]:
    """Group boxes into rows (vertical overlap ≥ half the smaller height), rows top-down, left to right."""
    rows: list[list[int]] = []
    for i in sorted(idx, key=lambda k: (bb[k, 1] + bb[k, 3]) / 2):
        y0, y1 = bb[i, 1], bb[i, 3]
        for row in rows:  # the row's median band, so a tall drop cap does not glue rows together
            r0, r1 = float(np.median(bb[row, 1])), float(np.median(bb[row, 3]))
            overlap = min(y1, r1) - max(y0, r0)
            if overlap >= 0.5 * min(y1 - y0, r1 - r0):
                row.append(i)
                break
        else:
            rows.append([i])
    rows.sort(key=lambda row: float(np.mean((bb[row, 1] + bb[row, 3]) / 2)))
    return [sorted(row, key=lambda k: bb[k, 0]) for row in rows]


def _aligned(left: list[int], right: list[int], bb: np.ndarray) -> float:
    """Fraction of the smaller side's boxes whose vertical centre matches a box on the other side
    (within a fifth of the line height): table cells share rows exactly, text columns drift apart."""
    small, big = (left, right) if len(left) <= len(right) else (right, left)
    centres = (bb[big, 1] + bb[big, 3]) / 2
    heights = bb[big, 3] - bb[big, 1]
    hits = 0
    for i in small:
        cy, h = (bb[i, 1] + bb[i, 3]) / 2, bb[i, 3] - bb[i, 1]
        if np.any(np.abs(centres - cy) <= 0.2 * np.minimum(h, heights)):
            hits += 1
    return hits / max(1, len(small))


def _column_like(side: list[int], bb: np.ndarray) -> bool:
    """A run of text lines set in a column: several long lines (many characters: width ≥ 8× height), most of
    them spanning most of the column's width (justified or ragged-right prose). Table cells and form labels
    are shorter and vary in width far more."""
    if len(side) < 3:
        return False
    widths = bb[side, 2] - bb[side, 0]
    heights = bb[side, 3] - bb[side, 1]
    if np.median(widths) < 8 * np.median(heights):  # short cells, not lines of prose
        return False
    extent = bb[side, 2].max() - bb[side, 0].min()
    return bool(np.mean(widths >= 0.7 * extent) >= 0.6)


def _split_at(idx: list[int], bb: np.ndarray, cuts: list[float]) -> list[list[int]]:
    """Boxes split into vertical strips at the given x positions (by box centre), left to right."""
    edges = sorted(cuts)
    pieces: list[list[int]] = [[] for _ in range(len(edges) + 1)]
    for i in idx:
        pieces[int(np.searchsorted(edges, (bb[i, 0] + bb[i, 2]) / 2))].append(i)
    return [p for p in pieces if p]


def _are_columns(pieces: list[list[int]], bb: np.ndarray) -> bool:
    """Strips are read one after another when most are prose columns, or when neighbours are not
    row-aligned; row-aligned strips of short cells are a table, read row by row."""
    if np.mean([_column_like(p, bb) for p in pieces]) >= 0.5:
        return True
    return all(_aligned(a, b, bb) < 0.5 for a, b in zip(pieces, pieces[1:], strict=False))


def _xycut(idx: list[int], bb: np.ndarray, med_h: float, out: list[list[int]]) -> None:
    if len(idx) <= 1:
        out.append(idx)
        return
    sub = bb[idx]
    # Shrink boxes a little so touching/slightly overlapping neighbours still leave a gap.
    pad_y = 0.1 * (sub[:, 3] - sub[:, 1])
    y_gaps = _gaps(sub[:, 1] + pad_y, sub[:, 3] - pad_y)
    x_gaps = [g for g in _gaps(sub[:, 0], sub[:, 2]) if g[1] - g[0] >= 0.4 * med_h]
    best_y = max(y_gaps, key=lambda g: g[1] - g[0], default=None)
    best_x = max(x_gaps, key=lambda g: g[1] - g[0], default=None)
    wide = best_x is not None and (best_y is None or (best_x[1] - best_x[0]) > (best_y[1] - best_y[0]))
    if wide:
        pieces = _split_at(idx, bb, [(a + b) / 2 for a, b in x_gaps])
        if len(pieces) >= 2 and min(len(p) for p in pieces) >= 2 and _are_columns(pieces, bb):
            for piece in pieces:
                _xycut(piece, bb, med_h, out)
            return
    if best_y is not None and (best_y[1] - best_y[0]) >= 0.3 * med_h:
        cut = (best_y[0] + best_y[1]) / 2
        top = [i for i in idx if (bb[i, 1] + bb[i, 3]) / 2 < cut]
        bottom = [i for i in idx if (bb[i, 1] + bb[i, 3]) / 2 >= cut]
        if top and bottom:
            _xycut(top, bb, med_h, out)
            _xycut(bottom, bb, med_h, out)
            return
    out.append([i for row in _rows(idx, bb) for i in row])


def reading_order(lines: Sequence[Line]) -> tuple[list[Line], tuple[tuple[int, ...], ...]]:
    """Lines in reading order, and the blocks (index tuples into the returned list)."""
    if not lines:
        return [], ()
    quads = boxes_of(lines)
    bb = np.stack([quads[:, :, 0].min(1), quads[:, :, 1].min(1), quads[:, :, 0].max(1), quads[:, :, 1].max(1)], 1)
    med_h = float(np.median(bb[:, 3] - bb[:, 1])) or 1.0
    leaves: list[list[int]] = []
    _xycut(list(range(len(lines))), bb.astype(np.float64), med_h, leaves)
    ordered: list[Line] = []
    blocks: list[tuple[int, ...]] = []
    pos = 0
    for leaf in leaves:
        ordered.extend(lines[i] for i in leaf)
        blocks.append(tuple(range(pos, pos + len(leaf))))
        pos += len(leaf)
    return ordered, tuple(blocks)


def ordered_page(index: int, width: int, height: int, lines: Sequence[Line]) -> Page:
    """A :class:`Page` of ``lines`` (in any order) put in reading order, with its blocks."""
    ordered, blocks = reading_order(lines)
    return Page(index=index, width=width, height=height, lines=tuple(ordered), blocks=blocks)
