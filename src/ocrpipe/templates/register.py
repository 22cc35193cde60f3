"""Register a scanned page onto a template's reference rendering (shift, scale, rotation of a few degrees).

The warp is found from pixels only: the reference centred on the scan at two scales as starting points,
then ECC (enhanced correlation coefficient) maximisation with an affine motion model on a blurred two-level
pyramid. The final correlation coefficient doubles as the layout-match score.

Convention: ``matrix`` (2×3) maps *reference* pixel coordinates to *scan* pixel coordinates, so a field
region defined on the reference is cut from the scan by ``cv2.warpAffine(scan, matrix, ref_size,
flags=WARP_INVERSE_MAP)`` and its box in the scan is ``matrix @ [x, y, 1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Registration:
    """The reference→scan affine and the ECC correlation it reached (−1 when registration failed)."""

    matrix: np.ndarray
    score: float

    @property
    def scale(self) -> float:
        """Mean linear scale of the reference→scan mapping."""
        return float(math.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    @property
    def angle(self) -> float:
        """Rotation in degrees (positive: the scan is rotated counter-clockwise)."""
        return float(math.degrees(math.atan2(-self.matrix[0, 1], self.matrix[0, 0])))

    def to_scan(self, points: np.ndarray) -> np.ndarray:
        """Map (N, 2) reference points to scan coordinates."""
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        return pts @ self.matrix[:, :2].T + self.matrix[:, 2]


def to_gray(image: np.ndarray) -> np.ndarray:
    """RGB/RGBA/grey uint8 → grey uint8."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def center_inits(reference: np.ndarray, scan: np.ndarray, shrink: tuple[float, ...] = (1.0, 0.94)) -> list[np.ndarray]:
    """Starting warps: the reference centred on the scan, fitted to it and slightly smaller."""
    rh, rw = reference.shape[:2]
    sh, sw = scan.shape[:2]
    fit = min(sw / rw, sh / rh)
    out = []
    for k in shrink:
        s = fit * k
        out.append(np.array([[s, 0, sw / 2 - s * rw / 2], [0, s, sh / 2 - s * rh / 2]], np.float64))
    return out


def plausible(reg: Registration, init: np.ndarray, max_angle: float = 10.0) -> bool:
    """Whether a warp stays near its start: scale within ±30 %, rotation below ``max_angle``, no shear."""
    s0 = math.sqrt(abs(np.linalg.det(init[:, :2])))
    a = reg.matrix[:, :2] / max(reg.scale, 1e-9)
    shear = abs(float(a[0, 0] - a[1, 1])) + abs(float(a[0, 1] + a[1, 0]))
    return 0.7 * s0 <= reg.scale <= 1.3 * s0 and abs(reg.angle) <= max_angle and shear < 0.1


def _level(gray: np.ndarray, factor: float, blur: float) -> np.ndarray:
    small = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small.astype(np.float32), (0, 0), blur)


def _scaled(matrix: np.ndarray, ref_factor: float, scan_factor: float) -> np.ndarray:
    """The same warp expressed between a reference resized by ``ref_factor`` and a scan by ``scan_factor``."""
    m = matrix.copy()
    m[:, :2] *= scan_factor / ref_factor
    m[:, 2] *= scan_factor
    return m


def _ecc(ref: np.ndarray, scan: np.ndarray, init: np.ndarray, iters: int, eps: float) -> tuple[np.ndarray, float]:
    warp = init.astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iters, eps)
    score, warp = cv2.findTransformECC(ref, scan, warp, cv2.MOTION_AFFINE, criteria, None, 1)
    return warp.astype(np.float64), float(score)


def _pyramid(ref_g: np.ndarray, scan_g: np.ndarray, matrix: np.ndarray,
             levels: tuple[float, ...]) -> Registration:
    score = -1.0
    for factor in levels:
        blur = 1.5 if factor < 0.4 else 1.0
        ref_l, scan_l = _level(ref_g, factor, blur), _level(scan_g, factor, blur)
        try:
            m, score = _ecc(ref_l, scan_l, _scaled(matrix, factor, factor), 60, 1e-4)
        except cv2.error:
            return Registration(matrix, -1.0)
        matrix = _scaled(m, 1 / factor, 1 / factor)
    return Registration(matrix, score)


def register(reference: np.ndarray, scan: np.ndarray, *, levels: tuple[float, ...] = (0.125, 0.25),
             init: np.ndarray | None = None) -> Registration:
    """Register ``scan`` (grey or RGB) to ``reference`` (grey), coarse to fine over ``levels``.

    ``levels`` are resize factors applied to both images. Without ``init`` the first level is run from
    each of :func:`center_inits` and the best plausible result continues; the last level's correlation is
    the returned score (−1: no plausible registration).
    """
    ref_g, scan_g = to_gray(reference), to_gray(scan)
    starts = [init] if init is not None else center_inits(ref_g, scan_g)
    best: Registration | None = None
    for m0 in starts:
        reg = _pyramid(ref_g, scan_g, m0, levels[:1])
        if reg.score > -1 and plausible(reg, m0) and (best is None or reg.score > best.score):
            best = reg
    if best is None:
        return Registration(starts[0], -1.0)
    if len(levels) > 1:
        fine = _pyramid(ref_g, scan_g, best.matrix, levels[1:])
        if fine.score > -1 and plausible(fine, best.matrix):
            return fine
    return best


def warp_to_reference(scan: np.ndarray, reg: Registration, size: tuple[int, int]) -> np.ndarray:
    """Resample the scan into the reference frame (``size`` = (width, height))."""
    return cv2.warpAffine(scan, reg.matrix, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def tight_crop(crop: np.ndarray, margin: int = 6) -> np.ndarray:
    """The crop narrowed to its ink (Otsu) plus ``margin`` pixels; unchanged when it holds no ink."""
    gray = to_gray(crop)
    if gray.size == 0 or gray.std() < 8:
        return crop
    ink = cv2.threshold(cv2.GaussianBlur(gray, (3, 3), 0), 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)[1]
    ys, xs = np.nonzero(ink)
    if len(xs) == 0:
        return crop
    h, w = gray.shape
    x0, x1 = max(0, int(xs.min()) - margin), min(w, int(xs.max()) + margin + 1)
    y0, y1 = max(0, int(ys.min()) - margin), min(h, int(ys.max()) + margin + 1)
    return crop[y0:y1, x0:x1]
