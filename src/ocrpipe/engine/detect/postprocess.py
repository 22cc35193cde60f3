"""Differentiable-Binarization post-processing in numpy/OpenCV: probability map → text quads.

Kept apart from the network code so it can be tested on synthetic probability maps without weights.
Steps: threshold the map, (optionally) dilate, find contours, fit a minimum-area rectangle, score it by the
mean probability inside the contour, expand it by the DB "unclip" offset (area × ratio / perimeter), and
scale it back to the original image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pyclipper


@dataclass(frozen=True)
class DBParams:
    thresh: float = 0.3
    box_thresh: float = 0.5
    unclip_ratio: float = 1.6
    min_size: float = 3.0
    max_candidates: int = 3000
    dilate: bool = True


def order_quad(points: np.ndarray) -> np.ndarray:
    """Order four points clockwise starting at the top-left (image coordinates, y down)."""
    pts = np.asarray(points, dtype=np.float32).reshape(4, 2)
    by_x = pts[np.argsort(pts[:, 0], kind="stable")]
    left, right = by_x[:2], by_x[2:]
    tl, bl = left[np.argsort(left[:, 1], kind="stable")]
    tr, br = right[np.argsort(right[:, 1], kind="stable")]
    return np.array([tl, tr, br, bl], dtype=np.float32)


def _min_rect(points: np.ndarray) -> tuple[np.ndarray, float]:
    rect = cv2.minAreaRect(points.reshape(-1, 1, 2).astype(np.float32))
    return order_quad(cv2.boxPoints(rect)), float(min(rect[1]))


def _mean_score(prob: np.ndarray, contour: np.ndarray) -> float:
    h, w = prob.shape
    pts = contour.reshape(-1, 2)
    x0, x1 = int(np.clip(np.floor(pts[:, 0].min()), 0, w - 1)), int(np.clip(np.ceil(pts[:, 0].max()), 0, w - 1))
    y0, y1 = int(np.clip(np.floor(pts[:, 1].min()), 0, h - 1)), int(np.clip(np.ceil(pts[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    shifted = (pts - np.array([x0, y0])).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(mask, [shifted], 1)
    return float(cv2.mean(prob[y0:y1 + 1, x0:x1 + 1], mask)[0])


def unclip(quad: np.ndarray, ratio: float) -> np.ndarray | None:
    """Expand a polygon outward by ``area * ratio / perimeter`` pixels (the DB label shrink, undone)."""
    poly = quad.reshape(-1, 2).astype(np.float64)
    area = abs(cv2.contourArea(poly.astype(np.float32)))
    perimeter = cv2.arcLength(poly.astype(np.float32), True)
    if perimeter <= 0:
        return None
    distance = area * ratio / perimeter
    offset = pyclipper.PyclipperOffset()
    offset.AddPath([tuple(p) for p in poly], pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    expanded = offset.Execute(distance)
    if len(expanded) != 1:
        return None
    return np.asarray(expanded[0], dtype=np.float32)


def boxes_from_map(prob: np.ndarray, dest_size: tuple[int, int], params: DBParams | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Text quads in destination pixels from a (H, W) probability map.

    ``dest_size`` is (width, height) of the image the boxes are reported in; the map is assumed to cover
    that image exactly (any resize in between is undone by scaling). Returns ``(quads (N,4,2), scores (N,))``.
    """
    params = params or DBParams()
    prob = np.asarray(prob, dtype=np.float32)
    map_h, map_w = prob.shape
    dest_w, dest_h = dest_size
    bitmap = (prob > params.thresh).astype(np.uint8)
    if params.dilate:
        bitmap = np.asarray(cv2.dilate(bitmap, np.ones((2, 2), np.uint8)), dtype=np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    sx, sy = dest_w / map_w, dest_h / map_h
    quads, scores = [], []
    for contour in contours[: params.max_candidates]:
        if len(contour) < 3:
            continue
        quad, short = _min_rect(contour)
        if short < params.min_size:
            continue
        score = _mean_score(prob, contour)
        if score < params.box_thresh:
            continue
        expanded = unclip(quad, params.unclip_ratio)
        if expanded is None:
            continue
        quad, short = _min_rect(expanded)
        if short < params.min_size + 2:
            continue
        quad[:, 0] = np.clip(quad[:, 0] * sx, 0, dest_w - 1)
        quad[:, 1] = np.clip(quad[:, 1] * sy, 0, dest_h - 1)
        quads.append(quad)
        scores.append(score)
    if not quads:
        return np.zeros((0, 4, 2), np.float32), np.zeros((0,), np.float32)
    return np.stack(quads).astype(np.float32), np.asarray(scores, np.float32)
