"""Polygon helpers for scoring: overlap tests, IoU matrices, reading order and word splitting.

Everything works on plain ``(N, 2)`` point arrays in original-image pixels; shapely does the area maths.
Invalid polygons (self-intersecting quads from a detector) are replaced by their convex hull, and
polygons with fewer than three points or zero area simply never overlap anything.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

Points = np.ndarray
"""A polygon as an ``(N, 2)`` float array, N >= 3 (quads have N = 4)."""


def to_polygon(points: Sequence[Sequence[float]] | np.ndarray) -> BaseGeometry:
    """A valid shapely polygon for ``points`` (convex hull if the ring self-intersects)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return Polygon()
    poly = Polygon(pts)
    if not poly.is_valid:
        poly = poly.convex_hull
    return poly


def polygons(items: Sequence[Sequence[Sequence[float]] | np.ndarray]) -> np.ndarray:
    """An object array of shapely polygons, one per item."""
    out = np.empty(len(items), dtype=object)
    for i, pts in enumerate(items):
        out[i] = to_polygon(pts)
    return out


def intersection_areas(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` matrix of intersection areas, computed only for pairs whose bounds touch."""
    inter = np.zeros((len(a), len(b)), dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return inter
    tree = shapely.STRtree(b)
    ia, ib = tree.query(a, predicate="intersects")
    if len(ia):
        inter[ia, ib] = shapely.area(shapely.intersection(a[ia], b[ib]))
    return inter


def areas(polys: np.ndarray) -> np.ndarray:
    """Areas of an object array of polygons."""
    if len(polys) == 0:
        return np.zeros(0, dtype=np.float64)
    return shapely.area(polys).astype(np.float64)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` intersection-over-union matrix."""
    inter = intersection_areas(a, b)
    union = areas(a)[:, None] + areas(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def half_of_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Boolean link matrix: intersection >= half of the smaller polygon's area (and > 0)."""
    inter = intersection_areas(a, b)
    smaller = np.minimum(areas(a)[:, None], areas(b)[None, :])
    return (inter > 0) & (inter >= 0.5 * smaller)


def covered_by_any(items: np.ndarray, regions: np.ndarray, fraction: float = 0.5) -> np.ndarray:
    """For each item: is at least ``fraction`` of its own area inside the union of ``regions``?"""
    if len(items) == 0:
        return np.zeros(0, dtype=bool)
    if len(regions) == 0:
        return np.zeros(len(items), dtype=bool)
    inter = intersection_areas(items, regions).sum(axis=1)
    own = areas(items)
    return (own > 0) & (inter >= fraction * own)


def bounds(points: np.ndarray) -> tuple[float, float, float, float]:
    """Axis-aligned ``(xmin, ymin, xmax, ymax)`` of a point array."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


def reading_order(boxes: Sequence[tuple[float, float, float, float]]) -> list[int]:
    """Indices of ``boxes`` in reading order: rows top-down, left to right inside a row.

    Boxes are taken by vertical centre; a box joins the current row when its vertical overlap with
    the row's band is at least half of the smaller height, otherwise it starts a new row.
    """
    order = sorted(range(len(boxes)), key=lambda i: ((boxes[i][1] + boxes[i][3]) / 2, boxes[i][0]))
    rows: list[list[int]] = []
    band = (0.0, 0.0)
    for i in order:
        _, y0, _, y1 = boxes[i]
        if rows:
            overlap = min(band[1], y1) - max(band[0], y0)
            if overlap >= 0.5 * min(band[1] - band[0], y1 - y0):
                rows[-1].append(i)
                band = (min(band[0], y0), max(band[1], y1))
                continue
        rows.append([i])
        band = (y0, y1)
    return [i for row in rows for i in sorted(row, key=lambda j: boxes[j][0])]


def split_words(points: np.ndarray, text: str) -> list[tuple[np.ndarray, str]]:
    """Split a line quad into word quads, each spanning its share of the characters.

    Used when an engine (or the ground truth) gives lines but a metric needs words: the top and bottom
    edges of the quad are cut at the character offsets of each space-separated token.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    tokens = _token_spans(text)
    if len(pts) != 4 or len(tokens) <= 1:
        return [(pts, tok) for tok, _, _ in tokens]
    tl, tr, br, bl = pts
    total = len(text)
    out = []
    for tok, start, end in tokens:
        s, e = start / total, end / total
        quad = np.array([tl + (tr - tl) * s, tl + (tr - tl) * e, bl + (br - bl) * e, bl + (br - bl) * s])
        out.append((quad, tok))
    return out


def _token_spans(text: str) -> list[tuple[str, int, int]]:
    spans, start = [], None
    for i, ch in enumerate(text + " "):
        if ch.isspace():
            if start is not None:
                spans.append((text[start:i], start, i))
                start = None
        elif start is None:
            start = i
    return spans
