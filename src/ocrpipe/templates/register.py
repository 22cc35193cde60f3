"""Register a scanned page onto a template's reference rendering (shift, scale, rotation of a few degrees).

The warp is found from pixels only: the reference centred on the scan at a few scales as starting points,
each probed briefly, then ECC (enhanced correlation coefficient) maximisation with an affine motion model
from the best start, coarse to fine on blurred pyramids (kept per page and per template, see
:class:`Pyramid`). The final correlation coefficient doubles as the layout-match score.

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


def located_inits(reference: Pyramid, scan: Pyramid, starts: list[np.ndarray], factor: float) -> list[np.ndarray]:
    """The same starting scales, each moved to where the scaled reference correlates best with the scan
    (normalised cross-correlation at pyramid level ``factor``): a printout lying off the scan's centre, or
    one with repeated rows (a table) that ECC would lock onto one row off, starts in its place."""
    scan_l = scan.level(factor)
    ref_l = reference.level(factor)  # already at the level and blurred: resized by the start's scale only
    out = []
    for m0 in starts:
        s = float(m0[0, 0])
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        small = cv2.resize(ref_l, None, fx=s, fy=s, interpolation=interp)
        if small.shape[0] > scan_l.shape[0] or small.shape[1] > scan_l.shape[1] or small.std() < 1:
            continue
        res = cv2.matchTemplate(scan_l, small, cv2.TM_CCOEFF_NORMED)
        _, _, _, (x, y) = cv2.minMaxLoc(res)
        m = m0.copy()
        m[:, 2] = (x / factor, y / factor)
        out.append(m)
    return out


def plausible(reg: Registration, init: np.ndarray, max_angle: float = 10.0) -> bool:
    """Whether a warp stays near its start: scale within ±30 %, rotation below ``max_angle``, no shear."""
    s0 = math.sqrt(abs(np.linalg.det(init[:, :2])))
    a = reg.matrix[:, :2] / max(reg.scale, 1e-9)
    shear = abs(float(a[0, 0] - a[1, 1])) + abs(float(a[0, 1] + a[1, 0]))
    return 0.7 * s0 <= reg.scale <= 1.3 * s0 and abs(reg.angle) <= max_angle and shear < 0.1


class Pyramid:
    """A grey image and its blurred float32 copies at the resize factors ECC works on.

    Levels are built on first use and kept, so a page is resized once however many templates it is tried
    against, and a template's reference once for the life of the engine. Safe to share between threads (a
    race builds a level twice, harmlessly).
    """

    def __init__(self, image: np.ndarray, mask: np.ndarray | None = None) -> None:
        self.gray = to_gray(image)
        self.mask = mask
        """Optional uint8 mask (non-zero: compared) restricting which reference pixels ECC correlates."""
        self._levels: dict[float, np.ndarray] = {}
        self._masks: dict[float, np.ndarray] = {}

    def mask_level(self, factor: float) -> np.ndarray | None:
        """The mask at the size of :meth:`level` ``(factor)``, None without a mask."""
        if self.mask is None:
            return None
        out = self._masks.get(factor)
        if out is None:
            h, w = self.level(factor).shape
            out = self._masks[factor] = cv2.resize(self.mask, (w, h), interpolation=cv2.INTER_NEAREST)
        return out

    def level(self, factor: float) -> np.ndarray:
        """The image resized by ``factor`` (area interpolation) and blurred (more at the coarse levels)."""
        out = self._levels.get(factor)
        if out is None:
            small = cv2.resize(self.gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
            blur = 1.5 if factor < 0.4 else 1.0
            out = self._levels[factor] = cv2.GaussianBlur(small.astype(np.float32), (0, 0), blur)
        return out


def as_pyramid(image: np.ndarray | Pyramid) -> Pyramid:
    """``image`` itself when it is already a :class:`Pyramid`, else a new one."""
    return image if isinstance(image, Pyramid) else Pyramid(image)


def _scaled(matrix: np.ndarray, ref_factor: float, scan_factor: float) -> np.ndarray:
    """The same warp expressed between a reference resized by ``ref_factor`` and a scan by ``scan_factor``."""
    m = matrix.copy()
    m[:, :2] *= scan_factor / ref_factor
    m[:, 2] *= scan_factor
    return m


def _ecc(ref: Pyramid, scan: Pyramid, matrix: np.ndarray, factor: float, iters: int) -> Registration:
    """ECC at one pyramid level from ``matrix`` (full-resolution reference→scan); score −1 when it diverged."""
    warp = _scaled(matrix, factor, factor).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iters, 1e-4)
    mask = ref.mask_level(factor)
    try:
        if mask is None:
            score, warp = cv2.findTransformECC(ref.level(factor), scan.level(factor), warp, cv2.MOTION_AFFINE,
                                               criteria, None, 1)  # type: ignore[call-overload]
        else:  # only the reference pixels the template compares (a header block, no example values)
            score, warp = cv2.findTransformECCWithMask(ref.level(factor), scan.level(factor), mask, None, warp,  # type: ignore[call-overload]
                                                       cv2.MOTION_AFFINE, criteria, 1)
    except cv2.error:
        return Registration(matrix, -1.0)
    return Registration(_scaled(warp.astype(np.float64), 1 / factor, 1 / factor), float(score))


PROBE_ITERS = 5
"""ECC iterations a starting warp gets before the best start is chosen. Measured on generated printouts at
⅛ resolution: from a start near the truth the correlation is at least 0.7 after four iterations (median
0.98), while a wrong template's median stays near 0.3."""


def register(reference: np.ndarray | Pyramid, scan: np.ndarray | Pyramid, *,
             levels: tuple[float, ...] = (0.125, 0.25), init: np.ndarray | None = None,
             shrink: tuple[float, ...] = (1.0, 0.94), give_up_below: float = -1.0,
             enough: float = 1.0, iters: int = 40) -> Registration:
    """Register ``scan`` to ``reference`` (grey/RGB arrays or pyramids), coarse to fine over ``levels``.

    ``levels`` are resize factors applied to both images. Without ``init`` every start of
    :func:`center_inits` (fitted to the scan, scaled by each ``shrink``) gets a short probe at the first
    level, until one reaches ``enough``, and only the best plausible one runs on. A best probe
    correlation under ``give_up_below`` ends the search there (the caller rejects the layout anyway): a
    wrong template costs a few iterations, not a full run. The last level's correlation is the returned
    score (−1: no plausible registration).
    """
    ref, img = as_pyramid(reference), as_pyramid(scan)
    first, rest = levels[0], levels[1:]
    if init is not None:
        best = _ecc(ref, img, init, first, iters)
        best = best if best.score > -1 and plausible(best, init) else Registration(init, -1.0)
    else:
        best = Registration(np.zeros((2, 3)), -1.0)
        starts = center_inits(ref.gray, img.gray, shrink)
        start = starts[0]
        for m0 in located_inits(ref, img, starts, first) + starts:
            probe = _ecc(ref, img, m0, first, PROBE_ITERS)
            if probe.score > best.score and plausible(probe, m0):
                best, start = probe, m0
                if best.score >= enough:
                    break
        if best.score <= -1:
            return Registration(starts[0], -1.0)
        if best.score < give_up_below:
            return best
        full = _ecc(ref, img, best.matrix, first, iters)
        if full.score > -1 and plausible(full, start):
            best = full
    for factor in rest:
        if best.score <= -1:
            break
        fine = _ecc(ref, img, best.matrix, factor, iters)
        if fine.score <= -1 or not plausible(fine, best.matrix):
            break
        best = fine
    return best


SIMILAR_SCALES = tuple(round(0.7 + 0.05 * i, 2) for i in range(13))
"""Scales (relative to the reference fitted to the scan) :func:`register_similar` tries: 0.7 to 1.3."""


def _resized(pyr: Pyramid, factor: float) -> tuple[np.ndarray, np.ndarray | None]:
    """The pyramid's grey image resized by ``factor`` and blurred, and its mask at that size."""
    small = cv2.resize(pyr.gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    level = cv2.GaussianBlur(small.astype(np.float32), (0, 0), 1.5 if factor < 0.4 else 1.0)
    mask = None if pyr.mask is None else cv2.resize(pyr.mask, (level.shape[1], level.shape[0]),
                                                    interpolation=cv2.INTER_NEAREST)
    return level, mask


def _euclidean(ref: Pyramid, scan: Pyramid, scale: float, warp: np.ndarray, factor: float,
               iters: int) -> Registration:
    """ECC with a rigid motion (rotation and shift) between the reference resized by ``scale`` and the scan,
    at pyramid level ``factor``; ``warp`` is the rigid start in level pixels. Returned as a full-resolution
    reference→scan similarity."""
    level, mask = _resized(ref, factor * scale)
    target = scan.level(factor)
    if level.shape[0] < 8 or level.shape[1] < 8 or level.std() < 1:
        return Registration(warp, -1.0)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iters, 1e-4)
    try:
        score, w = cv2.findTransformECCWithMask(level, target, mask, None, warp.astype(np.float32),  # type: ignore[call-overload]
                                                cv2.MOTION_EUCLIDEAN, criteria, 1)
    except cv2.error:
        return Registration(warp, -1.0)
    out = w.astype(np.float64)
    out[:, :2] *= scale
    out[:, 2] /= factor
    return Registration(out, float(score))


def register_similar(reference: Pyramid, scan: Pyramid, scales: tuple[float, ...] = SIMILAR_SCALES,
                     factor: float = 0.125, fine: float = 0.25, iters: int = 30) -> Registration:
    """Register by a similarity (one scale, rotation, shift) instead of an affine warp.

    For each scale the reference is placed where it correlates best and ECC finds rotation and shift
    alone; the best is refined at ``fine`` with the scale ±2.5 %. A layout whose columns move with the
    font leaves little that fixes the horizontal scale (full-width rules, a column of row labels): an
    affine warp then drifts into a squeeze that matches rows one off, where one scale for both axes holds.
    Score −1 when nothing converged."""
    fit = min(scan.gray.shape[1] / reference.gray.shape[1], scan.gray.shape[0] / reference.gray.shape[0])
    target = scan.level(factor)
    best, best_scale = Registration(np.zeros((2, 3)), -1.0), 1.0
    for rel in scales:
        s = fit * rel
        level, _ = _resized(reference, factor * s)
        if level.shape[0] > target.shape[0] or level.shape[1] > target.shape[1] or level.std() < 1:
            continue
        _, _, _, (x, y) = cv2.minMaxLoc(cv2.matchTemplate(target, level, cv2.TM_CCOEFF_NORMED))
        reg = _euclidean(reference, scan, s, np.array([[1, 0, x], [0, 1, y]], np.float64), factor, iters)
        if reg.score > best.score:
            best, best_scale = reg, s
    if best.score <= -1:
        return best
    rigid = best.matrix.copy()
    rigid[:, :2] /= best_scale
    rigid[:, 2] *= fine
    refined = [_euclidean(reference, scan, s, rigid, fine, iters)
               for s in (best_scale * 0.975, best_scale, best_scale * 1.025)]
    return max(refined, key=lambda r: r.score) if any(r.score > -1 for r in refined) else best


def warp_to_reference(scan: np.ndarray, reg: Registration, size: tuple[int, int]) -> np.ndarray:
    """Resample the scan into the reference frame (``size`` = (width, height))."""
    return cv2.warpAffine(scan, reg.matrix, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def warp_region(scan: np.ndarray, reg: Registration, box: tuple[int, int, int, int]) -> np.ndarray:
    """Only the reference-frame box (x0, y0, x1, y1) of the registered scan: the same pixels as slicing
    :func:`warp_to_reference`'s output, without resampling the rest of the page."""
    x0, y0, x1, y1 = box
    m = reg.matrix.copy()
    m[:, 2] += reg.matrix[:, :2] @ np.array([x0, y0], np.float64)
    return cv2.warpAffine(scan, m, (max(1, x1 - x0), max(1, y1 - y0)),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


INK_CONTRAST = 60
"""Grey levels below the paper (its 90th percentile) from which a crop is taken to hold ink at all."""


def has_ink(gray: np.ndarray) -> bool:
    """Whether a grey crop shows any ink: its darkest pixel lies :data:`INK_CONTRAST` below the paper. (A
    standard deviation test misses one small glyph in a wide region: a lone ``1`` in a label's search
    window, a minus sign at a field's edge.)"""
    return gray.size > 0 and int(paper_level(gray)) - int(gray.min()) >= INK_CONTRAST


def paper_level(gray: np.ndarray) -> float:
    """``np.percentile(gray, 90)`` (linear interpolation, the same value), from a histogram for a uint8
    crop: this runs on every field, label candidate and strip of a page, where a sort costs more."""
    if gray.dtype != np.uint8 or gray.size == 0:
        return float(np.percentile(gray, 90))
    n = gray.size
    idx = (n - 1) * 0.9
    lo = int(idx)
    t = idx - lo
    cum = np.cumsum(np.bincount(gray.ravel(), minlength=256))
    a = float(np.searchsorted(cum, lo, side="right"))
    b = float(np.searchsorted(cum, min(lo + 1, n - 1), side="right"))
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t  # as numpy's lerp computes it


def tight_crop(crop: np.ndarray, margin: int = 6) -> np.ndarray:
    """The crop narrowed to its ink (Otsu) plus ``margin`` pixels; unchanged when it holds no ink."""
    gray = to_gray(crop)
    if not has_ink(gray):
        return crop
    ink = cv2.threshold(cv2.GaussianBlur(gray, (3, 3), 0), 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)[1]
    ys, xs = np.nonzero(ink)
    if len(xs) == 0:
        return crop
    h, w = gray.shape
    x0, x1 = max(0, int(xs.min()) - margin), min(w, int(xs.max()) + margin + 1)
    y0, y1 = max(0, int(ys.min()) - margin), min(h, int(ys.max()) + margin + 1)
    return crop[y0:y1, x0:x1]
