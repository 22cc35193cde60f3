"""Optional whole-page preprocessing: denoise, contrast, deskew.

Each step is off by default (clean digital pages need none). Deskew rotates the page, so ``apply`` also
returns the 2x3 affine matrix from original to prepared pixels; the pipeline maps detected boxes back with
its inverse so that reported boxes are always in original-image pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class PreprocessConfig:
    denoise: bool = False
    contrast: bool = False
    deskew: bool = False
    max_skew_deg: float = 10.0


@dataclass(frozen=True)
class Prepared:
    image: np.ndarray
    matrix: np.ndarray
    """2x3 affine: original pixel (x, y, 1) → prepared pixel."""
    elapsed_ms: float = 0.0

    def to_original(self, quads: np.ndarray) -> np.ndarray:
        """Map (N, 4, 2) quads from prepared back to original pixels."""
        if quads.size == 0 or np.allclose(self.matrix, IDENTITY):
            return quads
        inverse = cv2.invertAffineTransform(self.matrix)
        pts = quads.reshape(-1, 2).astype(np.float64)
        mapped = pts @ inverse[:, :2].T + inverse[:, 2]
        return mapped.reshape(quads.shape).astype(np.float32)


IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def apply(image: np.ndarray, config: PreprocessConfig) -> Prepared:
    """Run the enabled steps on an RGB page."""
    start = time.perf_counter()
    out = image
    if config.denoise:
        out = cv2.medianBlur(out, 3)
    if config.contrast:
        out = enhance_contrast(out)
    matrix = IDENTITY
    if config.deskew:
        angle = estimate_skew(out, config.max_skew_deg)
        if abs(angle) >= 0.1:
            out, matrix = rotate(out, angle)
    return Prepared(out, matrix, (time.perf_counter() - start) * 1000.0)


def enhance_contrast(image: np.ndarray) -> np.ndarray:
    """CLAHE on the lightness channel: lifts faint print without blowing out the background."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    lab[..., 0] = clahe.apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def estimate_skew(image: np.ndarray, max_deg: float = 10.0) -> float:
    """The page's text skew in degrees (positive = counter-clockwise), by projection-profile search.

    Text rows give the sharpest horizontal ink profile when the page is level, so the angle that
    maximises the variance of row sums is the skew. Coarse-to-fine over [-max_deg, max_deg].
    """
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    scale = min(1.0, 1000.0 / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    _, ink = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    if ink.mean() < 0.5:  # blank page
        return 0.0

    def score(angle: float) -> float:
        h, w = ink.shape
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        rotated = cv2.warpAffine(ink, m, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
        return float(np.var(rotated.sum(axis=1, dtype=np.float64)))

    best, step = 0.0, 1.0
    candidates = np.arange(-max_deg, max_deg + 1e-6, step)
    for _ in range(3):
        best = max(candidates, key=score)
        step /= 5.0
        candidates = np.arange(best - 5 * step, best + 5 * step + 1e-6, step)
    return float(best)


def rotate(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate by ``angle`` degrees about the centre, growing the canvas so nothing is cut off."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    new_w, new_h = int(h * sin + w * cos + 0.5), int(h * cos + w * sin + 0.5)
    m[0, 2] += new_w / 2 - w / 2
    m[1, 2] += new_h / 2 - h / 2
    border = tuple(int(v) for v in np.median(image.reshape(-1, image.shape[-1]), axis=0)) if image.ndim == 3 else 255
    out = cv2.warpAffine(image, m, (new_w, new_h), flags=cv2.INTER_LINEAR, borderValue=border)
    return out, m
