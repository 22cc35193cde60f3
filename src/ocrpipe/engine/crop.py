"""Crop and rectify: perspective-warp each detected quad into a horizontal line image."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

VERTICAL_RATIO = 1.5
"""A crop this many times taller than wide is treated as a vertical line and turned horizontal."""


def _side_lengths(q: np.ndarray) -> tuple[int, int]:
    width = int(round(max(np.linalg.norm(q[0] - q[1]), np.linalg.norm(q[3] - q[2]))))
    height = int(round(max(np.linalg.norm(q[0] - q[3]), np.linalg.norm(q[1] - q[2]))))
    return max(width, 1), max(height, 1)


def is_vertical(quad: np.ndarray) -> bool:
    """Is this quad a vertical line (its crop is turned 90 degrees so that the column reads left to right)?"""
    width, height = _side_lengths(np.asarray(quad, dtype=np.float32).reshape(4, 2))
    return height >= VERTICAL_RATIO * width and height > 8


def crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Warp one quad (clockwise from top-left) to an upright rectangle; vertical lines are rotated 90°."""
    q = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    width, height = _side_lengths(q)
    dst = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(q, dst)
    crop = cv2.warpPerspective(image, matrix, (width, height), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)
    if is_vertical(q):
        crop = np.ascontiguousarray(np.rot90(crop))  # top of the column ends up on the left
    return crop


def crop_lines(image: np.ndarray, quads: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """One rectified crop per quad, in the same order."""
    return [crop_quad(image, q) for q in quads]
